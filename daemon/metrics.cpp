#include "daemon/metrics.h"

#include <prometheus/check_names.h>
#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace alertrouter::daemon {
namespace {

using prometheus::ClientMetric;
using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Delivery spans a quick local POST (milliseconds) up to several retries with backoff (minutes).
const Histogram::BucketBoundaries& latency_buckets() {
  static const Histogram::BucketBoundaries b{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
  return b;
}

// A request handled on the io thread takes tens of microseconds; a slow one is a problem.
const Histogram::BucketBoundaries& http_buckets() {
  static const Histogram::BucketBoundaries b{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                             0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                             0.5,     1,      2.5,     5,      10};
  return b;
}

constexpr std::array<std::string_view, 5> kWebhookResults = {"accepted", "bad_request", "too_large",
                                                             "unauthorized", "unavailable"};
constexpr std::array<routing::ownership, 3> kOwnerships = {
    routing::ownership::owned, routing::ownership::user, routing::ownership::unowned};
constexpr std::array<routing::alert_status, 2> kStatuses = {routing::alert_status::firing,
                                                            routing::alert_status::resolved};
constexpr std::array<routing::notification_kind, 2> kKinds = {routing::notification_kind::page,
                                                              routing::notification_kind::resolve};
constexpr std::array<std::string_view, 4> kDeliveryResults = {"delivered", "rejected", "gave_up",
                                                              "dropped"};
constexpr std::array<config::target_type, 3> kTargetTypes = {
    config::target_type::schedule, config::target_type::receiver, config::target_type::project};

// Index of an enum value into a table sized for it; N (out of range) for a value no table holds,
// which the callers ignore rather than index past the end.
template <std::size_t N, typename E>
std::size_t index_of(E e) {
  const auto i = static_cast<std::size_t>(static_cast<std::underlying_type_t<E>>(e));
  return i < N ? i : N;
}

double seconds(std::chrono::nanoseconds d) {
  if (d.count() <= 0) return 0.0;
  return std::chrono::duration<double>(d).count();
}

std::string compiler_id() {
#if defined(__clang__)
  return "clang-" + std::to_string(__clang_major__) + "." + std::to_string(__clang_minor__) + "." +
         std::to_string(__clang_patchlevel__);
#elif defined(__GNUC__)
  return "gcc-" + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
         std::to_string(__GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

MetricFamily family_of(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

ClientMetric sample(double value, MetricType type, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return m;
}

MetricFamily single(std::string name, std::string help, MetricType type, double value) {
  MetricFamily f = family_of(std::move(name), std::move(help), type);
  f.metric.push_back(sample(value, type));
  return f;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

// --- http_handler_metrics -----------------------------------------------------------------------

void http_handler_metrics::observe(std::chrono::nanoseconds elapsed) const {
  if (histogram_ != nullptr) histogram_->Observe(seconds(elapsed));
}

// --- scrape-time families -----------------------------------------------------------------------

// Families whose values are read at each scrape rather than counted as events: who is on call
// now, the HTTP server's own counters, and add_scrape_value() entries. Reads the owning metrics'
// callbacks; same threading as metrics::render().
class metrics::scrape_collector : public prometheus::Collectable {
 public:
  explicit scrape_collector(const metrics& m) : m_(m) {}

  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> out;
    collect_oncall(out);
    collect_http(out);
    for (const scrape_value& v : m_.scrape_values_) {
      const MetricType type =
          v.type == value_type::counter ? MetricType::Counter : MetricType::Gauge;
      out.push_back(single(v.name, v.help, type, v.read()));
    }
    return out;
  }

 private:
  void collect_oncall(std::vector<MetricFamily>& out) const {
    std::vector<std::pair<std::string, std::string>> now;
    if (m_.oncall_) now = m_.oncall_();
    // An empty person means nobody; duplicates would be rejected by the scraper as a whole.
    std::erase_if(now, [](const auto& p) { return p.first.empty() || p.second.empty(); });
    std::sort(now.begin(), now.end());
    now.erase(std::unique(now.begin(), now.end()), now.end());

    MetricFamily oncall = family_of(
        "alertrouter_oncall", "1 for each person on call now in each schedule (at scrape time).",
        MetricType::Gauge);
    for (const auto& [schedule, person] : now) {
      oncall.metric.push_back(
          sample(1, MetricType::Gauge, {{"person", person}, {"schedule", schedule}}));
    }
    out.push_back(std::move(oncall));

    MetricFamily empty =
        family_of("alertrouter_schedules_nobody_on_call",
                  "1 if nobody is on call now in the configured schedule, else 0 (at scrape time).",
                  MetricType::Gauge);
    for (const std::string& schedule : m_.schedules_) {
      const auto it =
          std::lower_bound(now.begin(), now.end(), schedule,
                           [](const auto& p, const std::string& s) { return p.first < s; });
      const bool staffed = it != now.end() && it->first == schedule;
      empty.metric.push_back(sample(staffed ? 0 : 1, MetricType::Gauge, {{"schedule", schedule}}));
    }
    out.push_back(std::move(empty));
  }

  void collect_http(std::vector<MetricFamily>& out) const {
    if (!m_.http_stats_) return;
    const http_server_stats s = m_.http_stats_();
    const auto d = [](std::uint64_t v) { return static_cast<double>(v); };
    out.push_back(single("alertrouter_http_connections_open", "HTTP connections open now.",
                         MetricType::Gauge, d(s.connections_open)));
    out.push_back(single("alertrouter_http_connections_accepted_total",
                         "HTTP connections accepted and served.", MetricType::Counter,
                         d(s.connections_accepted)));
    out.push_back(single("alertrouter_http_connections_rejected_total",
                         "HTTP connections closed at accept because max_connections were open, "
                         "none of them idle.",
                         MetricType::Counter, d(s.connections_rejected)));
    out.push_back(single("alertrouter_http_connections_evicted_total",
                         "Idle HTTP connections closed to admit a new one at max_connections.",
                         MetricType::Counter, d(s.connections_evicted)));
    MetricFamily responses =
        family_of("alertrouter_http_responses_total", "HTTP responses sent, by status class.",
                  MetricType::Counter);
    for (std::size_t c = 1; c < s.responses_by_class.size(); ++c) {
      responses.metric.push_back(sample(d(s.responses_by_class[c]), MetricType::Counter,
                                        {{"code", std::to_string(c) + "xx"}}));
    }
    out.push_back(std::move(responses));
    out.push_back(single("alertrouter_http_read_timeouts_total",
                         "HTTP requests not complete within the read timeout (connection closed).",
                         MetricType::Counter, d(s.read_timeouts)));
    out.push_back(single("alertrouter_http_idle_timeouts_total",
                         "Keep-alive HTTP connections closed for idleness.", MetricType::Counter,
                         d(s.idle_timeouts)));
    out.push_back(single("alertrouter_http_write_timeouts_total",
                         "HTTP responses not written within the write timeout.",
                         MetricType::Counter, d(s.write_timeouts)));
    out.push_back(single("alertrouter_http_handler_errors_total",
                         "HTTP handlers that threw (answered 500).", MetricType::Counter,
                         d(s.handler_errors)));
    out.push_back(single("alertrouter_http_warnings_suppressed_total",
                         "HTTP server warn lines not written: over limits.warnings_per_second.",
                         MetricType::Counter, d(s.warnings_suppressed)));
    out.push_back(single("alertrouter_http_accept_errors_total",
                         "Failed accept() calls on the listening socket.", MetricType::Counter,
                         d(s.accept_errors)));
    out.push_back(single("alertrouter_http_bodies_too_large_total",
                         "HTTP requests refused with 413 (body over limits.max_body).",
                         MetricType::Counter, d(s.bodies_too_large)));
    out.push_back(single("alertrouter_http_headers_too_large_total",
                         "HTTP requests refused with 431 (header too large).", MetricType::Counter,
                         d(s.headers_too_large)));
    out.push_back(single("alertrouter_http_bodies_deferred_total",
                         "HTTP requests answered 503 before their body was read: the bodies "
                         "being read at once were at their limit.",
                         MetricType::Counter, d(s.bodies_deferred)));
    out.push_back(
        single("alertrouter_http_malformed_requests_total",
               "Malformed HTTP requests refused by the server: 400, or 501 for a transfer coding "
               "other than chunked.",
               MetricType::Counter, d(s.malformed_requests)));
  }

  const metrics& m_;
};

// --- metrics ------------------------------------------------------------------------------------

struct metrics::channel_series {
  Counter* notifications[kKinds.size()][kDeliveryResults.size()] = {};
  Counter* attempts = nullptr;
  Counter* retries = nullptr;
  Histogram* latency = nullptr;
};

metrics::metrics(std::string_view version)
    : registry_(std::make_unique<prometheus::Registry>()),
      collector_(std::make_unique<scrape_collector>(*this)) {
  const auto counters = [this](const std::string& name,
                               const std::string& help) -> Family<Counter>& {
    reserve_name(name);
    return prometheus::BuildCounter().Name(name).Help(help).Register(*registry_);
  };
  const auto gauges = [this](const std::string& name, const std::string& help) -> Family<Gauge>& {
    reserve_name(name);
    return prometheus::BuildGauge().Name(name).Help(help).Register(*registry_);
  };
  const auto histograms = [this](const std::string& name,
                                 const std::string& help) -> Family<Histogram>& {
    reserve_name(name);
    for (const char* suffix : {"_bucket", "_sum", "_count"}) reserve_name(name + suffix);
    return prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_);
  };
  const auto counter = [&](const std::string& name, const std::string& help) {
    return &counters(name, help).Add({});
  };

  gauges("alertrouter_build_info", "Always 1; the labels describe this build.")
      .Add({{"version", std::string(version)}, {"compiler", compiler_id()}})
      .Set(1);

  auto& webhooks = counters("alertrouter_webhooks_received_total",
                            "Alertmanager webhook requests, by how they ended.");
  for (std::size_t i = 0; i < kWebhookResults.size(); ++i) {
    webhooks_by_result_[i] = &webhooks.Add({{"result", std::string(kWebhookResults[i])}});
  }

  auto& alerts = counters("alertrouter_alerts_received_total",
                          "Alerts received in accepted webhooks, by ownership and status.");
  for (const routing::ownership o : kOwnerships) {
    for (const routing::alert_status s : kStatuses) {
      alerts_by_ownership_status_[index_of<3>(o)][index_of<2>(s)] = &alerts.Add(
          {{"ownership", std::string(to_string(o))}, {"status", std::string(to_string(s))}});
    }
  }

  duplicates_ = counter("alertrouter_alerts_duplicate_total",
                        "Alerts that repeated an incident's known state (group resends, cluster "
                        "peers).");
  stale_ = counter("alertrouter_alerts_stale_total",
                   "Out-of-order alerts that changed nothing (older than the incident, or a "
                   "resolve for an unknown fingerprint).");
  unrouted_ = counter("alertrouter_alerts_unrouted_total", "New incidents that matched no route.");
  incidents_opened_ =
      counter("alertrouter_incidents_opened_total", "Incidents opened (including reopened ones).");
  incidents_reopened_ = counter("alertrouter_incidents_reopened_total",
                                "Open incidents replaced by a newer occurrence (their resolve was "
                                "lost).");
  incidents_resolved_ = counter("alertrouter_incidents_resolved_total", "Incidents resolved.");
  incidents_open_ = &gauges("alertrouter_incidents_open", "Incidents open now.").Add({});
  evictions_ = counter("alertrouter_incident_evictions_total",
                       "Incidents evicted because the incident table was full.");
  webhook_warnings_suppressed_ =
      counter("alertrouter_webhook_warnings_suppressed_total",
              "\"webhook refused\" and \"reload refused\" warn lines not written: over 10 per "
              "second (each webhook refusal is "
              "still counted in alertrouter_webhooks_received_total).");

  auto& indexed =
      counters("alertrouter_webhook_bodies_indexed_total",
               "Webhook bodies the decoder read, by how it found their structure: first_stage "
               "(parsed afresh), same (the same bytes as their group's last body), derived (from "
               "their group's last body, strings differing).");
  bodies_first_stage_ = &indexed.Add({{"how", "first_stage"}});
  bodies_derived_ = &indexed.Add({{"how", "derived"}});
  bodies_same_ = &indexed.Add({{"how", "same"}});
  bodies_replayed_ = counter("alertrouter_webhook_bodies_replayed_total",
                             "Of the bodies indexed from their group's last body (same or "
                             "derived), those decoded from what the decoder had read of it "
                             "(only the dedup state asked again).");

  nobody_family_ = &counters("alertrouter_nobody_on_call_total",
                             "Notifications for a schedule target in which nobody was on call.");
  blocked_family_ = &counters(
      "alertrouter_blocked_pages_total",
      "Schedule targets refused because the alert belongs to a user project (never paged).");
  auto& no_contact_family = counters("alertrouter_no_contact_total",
                                     "Resolved targets with no contact to send to, by type.");
  for (const config::target_type t : kTargetTypes) {
    no_contact_by_type_[index_of<3>(t)] =
        &no_contact_family.Add({{"target_type", std::string(config::to_string(t))}});
  }

  notifications_family_ = &counters("alertrouter_notifications_total",
                                    "Notifications finished, by channel, kind and outcome.");
  attempts_family_ = &counters("alertrouter_delivery_attempts_total",
                               "Delivery attempts (first tries and retries), by channel.");
  retries_family_ =
      &counters("alertrouter_delivery_retries_total", "Delivery attempts that were retries.");
  latency_family_ = &histograms("alertrouter_delivery_latency_seconds",
                                "Time from receiving the webhook to the notification's delivery.");
  channel("webhook");

  state_commits_ = counter("alertrouter_state_commits_total",
                           "State store transactions committed (each one fsync).");
  state_sets_ = counter("alertrouter_state_committed_webhooks_total",
                        "Webhook bodies whose changes were committed to the state store.");
  state_commit_duration_ =
      &histograms("alertrouter_state_commit_duration_seconds",
                  "Time to commit one state store transaction, fsync included.")
           .Add({}, Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5});

  reload_successful_ = &gauges("alertrouter_config_last_reload_successful",
                               "1 if the last configuration (re)load succeeded, else 0.")
                            .Add({});
  reload_timestamp_ = &gauges("alertrouter_config_last_reload_success_timestamp_seconds",
                              "Unix time of the last successful configuration (re)load.")
                           .Add({});
  auto& reloads =
      counters("alertrouter_config_reloads_total", "Configuration (re)loads, by result.");
  reloads_success_ = &reloads.Add({{"result", "success"}});
  reloads_failure_ = &reloads.Add({{"result", "failure"}});

  http_duration_family_ = &histograms("alertrouter_http_request_duration_seconds",
                                      "Time to handle an HTTP request, by handler.");

  // Scrape-time families (scrape_collector).
  for (const char* name :
       {"alertrouter_oncall", "alertrouter_schedules_nobody_on_call",
        "alertrouter_http_connections_open", "alertrouter_http_connections_accepted_total",
        "alertrouter_http_connections_rejected_total", "alertrouter_http_connections_evicted_total",
        "alertrouter_http_responses_total", "alertrouter_http_read_timeouts_total",
        "alertrouter_http_idle_timeouts_total", "alertrouter_http_write_timeouts_total",
        "alertrouter_http_handler_errors_total", "alertrouter_http_accept_errors_total",
        "alertrouter_http_bodies_too_large_total", "alertrouter_http_headers_too_large_total",
        "alertrouter_http_malformed_requests_total", "alertrouter_http_bodies_deferred_total",
        "alertrouter_http_warnings_suppressed_total"}) {
    reserve_name(name);
  }
}

metrics::~metrics() = default;

void metrics::reserve_name(const std::string& name) {
  if (!names_.insert(name).second) {
    throw std::invalid_argument("metric name already in use: " + name);
  }
}

// --- ingest -------------------------------------------------------------------------------------

void metrics::webhook_received(webhook_result r) {
  const std::size_t i = index_of<kWebhookResults.size()>(r);
  if (i < kWebhookResults.size()) webhooks_by_result_[i]->Increment();
}

void metrics::alert_received(routing::ownership o, routing::alert_status s) {
  const std::size_t oi = index_of<3>(o);
  const std::size_t si = index_of<2>(s);
  if (oi < 3 && si < 2) alerts_by_ownership_status_[oi][si]->Increment();
}

void metrics::alerts_duplicate(std::uint64_t n) { duplicates_->Increment(static_cast<double>(n)); }
void metrics::alerts_stale(std::uint64_t n) { stale_->Increment(static_cast<double>(n)); }
void metrics::alerts_unrouted(std::uint64_t n) { unrouted_->Increment(static_cast<double>(n)); }

// --- incidents ----------------------------------------------------------------------------------

void metrics::incidents_opened(std::uint64_t n) {
  incidents_opened_->Increment(static_cast<double>(n));
}
void metrics::incidents_reopened(std::uint64_t n) {
  incidents_reopened_->Increment(static_cast<double>(n));
}
void metrics::incidents_resolved(std::uint64_t n) {
  incidents_resolved_->Increment(static_cast<double>(n));
}
void metrics::webhook_warnings_suppressed(std::uint64_t n) {
  webhook_warnings_suppressed_->Increment(static_cast<double>(n));
}
void metrics::webhook_bodies_indexed(const routing::index_counts& added) {
  const auto add = [](prometheus::Counter* c, std::uint64_t n) {
    if (n > 0) c->Increment(static_cast<double>(n));
  };
  add(bodies_first_stage_, added.first_stage);
  add(bodies_derived_, added.derived);
  add(bodies_same_, added.reused);
  add(bodies_replayed_, added.replayed);
}
void metrics::set_incidents_open(std::size_t n) { incidents_open_->Set(static_cast<double>(n)); }

void metrics::set_incident_evictions(std::uint64_t total) {
  // A smaller total is a new source counting from 0, so all of it is new.
  const std::uint64_t added = total >= evictions_seen_ ? total - evictions_seen_ : total;
  evictions_seen_ = total;
  if (added > 0) evictions_->Increment(static_cast<double>(added));
}

void metrics::record_plan(const routing::plan& p) {
  const routing::plan_counts& c = p.counts;
  if (c.duplicates > 0) alerts_duplicate(c.duplicates);
  if (c.stale > 0) alerts_stale(c.stale);
  if (c.unrouted > 0) alerts_unrouted(c.unrouted);
  if (c.opened > 0) incidents_opened(c.opened);
  if (c.reopened > 0) incidents_reopened(c.reopened);
  if (c.closed > 0) incidents_resolved(c.closed);
  for (const routing::nobody_on_call& n : p.nobody) nobody_on_call(n.schedule);
  for (const routing::blocked_target& b : p.blocked) blocked_page(b.schedule);
  for (const routing::no_contact& n : p.no_contacts) no_contact(n.target.type);
}

// --- routing outcomes ---------------------------------------------------------------------------

Counter& metrics::cached(Family<Counter>& family, counter_cache& cache, std::string_view label,
                         std::string_view value) {
  if (const auto it = cache.find(value); it != cache.end()) return *it->second;
  Counter& c = family.Add({{std::string(label), std::string(value)}});
  cache.emplace(std::string(value), &c);
  return c;
}

void metrics::set_schedules(const std::vector<std::string>& names) {
  schedules_ = names;
  std::sort(schedules_.begin(), schedules_.end());
  schedules_.erase(std::unique(schedules_.begin(), schedules_.end()), schedules_.end());
  for (const std::string& s : schedules_) {
    cached(*nobody_family_, nobody_by_schedule_, "schedule", s);
    cached(*blocked_family_, blocked_by_schedule_, "schedule", s);
  }
}

void metrics::nobody_on_call(std::string_view schedule) {
  cached(*nobody_family_, nobody_by_schedule_, "schedule", schedule).Increment();
}

void metrics::blocked_page(std::string_view schedule) {
  cached(*blocked_family_, blocked_by_schedule_, "schedule", schedule).Increment();
}

void metrics::no_contact(config::target_type t) {
  const std::size_t i = index_of<3>(t);
  if (i < 3) no_contact_by_type_[i]->Increment();
}

// --- delivery -----------------------------------------------------------------------------------

metrics::channel_series& metrics::channel(std::string_view name) {
  if (const auto it = channels_.find(name); it != channels_.end()) return *it->second;
  auto series = std::make_unique<channel_series>();
  const std::string ch(name);
  for (std::size_t k = 0; k < kKinds.size(); ++k) {
    for (std::size_t r = 0; r < kDeliveryResults.size(); ++r) {
      series->notifications[k][r] =
          &notifications_family_->Add({{"channel", ch},
                                       {"kind", std::string(routing::to_string(kKinds[k]))},
                                       {"result", std::string(kDeliveryResults[r])}});
    }
  }
  series->attempts = &attempts_family_->Add({{"channel", ch}});
  series->retries = &retries_family_->Add({{"channel", ch}});
  series->latency = &latency_family_->Add({{"channel", ch}}, latency_buckets());
  return *channels_.emplace(ch, std::move(series)).first->second;
}

void metrics::notification(std::string_view ch, routing::notification_kind kind,
                           delivery_result r) {
  const std::size_t k = index_of<kKinds.size()>(kind);
  const std::size_t i = index_of<kDeliveryResults.size()>(r);
  if (k < kKinds.size() && i < kDeliveryResults.size()) {
    channel(ch).notifications[k][i]->Increment();
  }
}

void metrics::delivery_attempt(std::string_view ch) { channel(ch).attempts->Increment(); }
void metrics::delivery_retry(std::string_view ch) { channel(ch).retries->Increment(); }
void metrics::delivery_latency(std::string_view ch, std::chrono::nanoseconds elapsed) {
  channel(ch).latency->Observe(seconds(elapsed));
}

// --- configuration ------------------------------------------------------------------------------

void metrics::state_commit(std::size_t sets, std::chrono::nanoseconds took) {
  state_commits_->Increment();
  state_sets_->Increment(static_cast<double>(sets));
  state_commit_duration_->Observe(std::chrono::duration<double>(took).count());
}

void metrics::config_reloaded(bool success, std::chrono::system_clock::time_point at) {
  if (success) {
    reload_successful_->Set(1);
    reload_timestamp_->Set(std::chrono::duration<double>(at.time_since_epoch()).count());
    reloads_success_->Increment();
  } else {
    reload_successful_->Set(0);
    reloads_failure_->Increment();
  }
}

// --- HTTP and scrape time -----------------------------------------------------------------------

http_handler_metrics metrics::register_handler(std::string_view path) {
  return http_handler_metrics(
      &http_duration_family_->Add({{"handler", std::string(path)}}, http_buckets()));
}

void metrics::set_http_stats_source(http_stats_source source) { http_stats_ = std::move(source); }

void metrics::set_oncall_source(oncall_source source) { oncall_ = std::move(source); }

void metrics::add_scrape_value(value_type type, std::string name, std::string help,
                               std::function<double()> read) {
  if (!prometheus::CheckMetricName(name)) {
    throw std::invalid_argument("invalid metric name: " + name);
  }
  if (help.empty()) throw std::invalid_argument("metric " + name + " needs a help text");
  if (!read) throw std::invalid_argument("metric " + name + " needs a value callback");
  const bool total = ends_with(name, "_total");
  if (type == value_type::counter && !total) {
    throw std::invalid_argument("counter name must end in _total: " + name);
  }
  if (type == value_type::gauge && total) {
    throw std::invalid_argument("gauge name must not end in _total: " + name);
  }
  for (const std::string_view reserved : {"_bucket", "_count", "_sum"}) {
    if (ends_with(name, reserved)) {
      throw std::invalid_argument("name suffix reserved for histograms: " + name);
    }
  }
  reserve_name(name);
  scrape_values_.push_back({type, std::move(name), std::move(help), std::move(read)});
}

std::string metrics::render() const {
  std::vector<MetricFamily> families = registry_->Collect();
  std::vector<MetricFamily> scraped = collector_->Collect();
  families.insert(families.end(), std::make_move_iterator(scraped.begin()),
                  std::make_move_iterator(scraped.end()));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace alertrouter::daemon
