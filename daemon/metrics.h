#pragma once

// The daemon's Prometheus metrics: one registry (prometheus-cpp core, no exposer) and typed
// methods for every event the daemon counts. main.cpp owns one `metrics`, passes it by reference
// to the components that count, and serves render() at GET /metrics from its own HTTP server.
//
// Every series a method touches is created once (at construction, or the first time a new label
// value such as a channel or schedule name is seen) and its handle cached, so the per-event cost
// is an atomic add, never a Family::Add (which locks and hashes).
//
// Label values come from bounded sets only: enums, config names (schedules), channel names the
// daemon defines. Never pass a value taken from an alert payload or a request: each distinct
// value is a new series kept for the life of the process.
//
// Exposed names (all prefixed `alertrouter_`; counters end in `_total`):
//   build_info{version,compiler}                      gauge 1
//   webhooks_received_total{result}                   accepted|bad_request|too_large|
//                                                     unauthorized|unavailable
//   webhook_warnings_suppressed_total                 "webhook refused" warn lines not written
//                                                     (rate limited; the refusals are counted
//                                                     above)
//   webhook_bodies_indexed_total{how}                 first_stage|derived|same: how the decoder
//                                                     indexed a body (routing::index_counts)
//   webhook_bodies_replayed_total                     of the same and derived, decoded from
//                                                     what the last body's scan read
//   alerts_received_total{ownership,status}           owned|user|unowned x firing|resolved
//   alerts_duplicate_total, alerts_stale_total, alerts_unrouted_total
//   incidents_opened_total, incidents_reopened_total, incidents_resolved_total,
//   incidents_open (gauge), incident_evictions_total
//   notifications_total{channel,kind,result}          kind page|resolve; result delivered|
//                                                     rejected|gave_up|dropped
//   delivery_attempts_total{channel}, delivery_retries_total{channel}
//   delivery_latency_seconds{channel}                 histogram, webhook received -> delivered,
//                                                     buckets 1 ms .. 300 s
//   nobody_on_call_total{schedule}, blocked_pages_total{schedule}, no_contact_total{target_type}
//   oncall{schedule,person}                           gauge 1 per person on call now (scrape time)
//   schedules_nobody_on_call{schedule}                gauge, scrape time, one per schedule given
//                                                     to set_schedules(): 1 when nobody is on
//                                                     call in it now, else 0
//   config_last_reload_successful, config_last_reload_success_timestamp_seconds (gauges),
//   config_reloads_total{result}                      success|failure
//   http_request_duration_seconds{handler}            histogram, buckets 50 us .. 10 s
//   http_connections_open (gauge), http_connections_accepted_total,
//   http_connections_rejected_total, http_responses_total{code} (1xx..5xx),
//   http_read_timeouts_total, http_idle_timeouts_total, http_write_timeouts_total,
//   http_handler_errors_total, http_accept_errors_total,
//   http_warnings_suppressed_total  (scrape time, from http_server_stats)
// plus whatever add_scrape_value() registers.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "daemon/delivery.h"  // delivery_result
#include "daemon/http_server.h"
#include "routing/alert.h"
#include "routing/ownership.h"
#include "routing/planner.h"
#include "routing/webhook.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace alertrouter::daemon {

// How a webhook request ended (alertrouter_webhooks_received_total{result}).
enum class webhook_result {
  accepted,      // decoded and taken into the plan
  bad_request,   // undecodable body, wrong version, ...
  too_large,     // body over the limit
  unauthorized,  // missing or wrong credentials
  unavailable,   // answered 503: backpressure, shutting down, or a failed state store commit
};

// Scrape-time source of who is on call now: (schedule, person) pairs; a schedule with nobody on
// call is absent. Called on the thread that calls render().
using oncall_source = std::function<std::vector<std::pair<std::string, std::string>>()>;

// Scrape-time source of the HTTP server's counters (typically `[&s] { return s.stats(); }`).
using http_stats_source = std::function<http_server_stats()>;

// The per-handler request-duration histogram, returned by metrics::register_handler(). A cheap
// copyable handle: keep it next to the handler and call observe() per request. Safe from any
// thread (the histogram locks itself). Valid while the metrics object that made it lives; a
// default-constructed handle ignores observations.
class http_handler_metrics {
 public:
  http_handler_metrics() = default;

  // Records one request that took `elapsed` (negative durations count as 0).
  void observe(std::chrono::nanoseconds elapsed) const;

 private:
  friend class metrics;
  explicit http_handler_metrics(prometheus::Histogram* h) : histogram_(h) {}
  prometheus::Histogram* histogram_ = nullptr;
};

// Owns the registry and every cached series handle. No globals: main.cpp makes one.
//
// Threading: the daemon calls every member function from its io thread (one thread at a time;
// the maps of channels, schedules and scrape callbacks are not locked). The prometheus-cpp series
// themselves stay thread-safe, so handles (http_handler_metrics) may be used from any thread.
// Failure: methods do not throw except where noted (std::bad_alloc aside); an exception thrown
// by a scrape-time callback propagates out of render().
class metrics {
 public:
  // Content-Type of render()'s output (Prometheus text format 0.0.4).
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  // Registers every family and pre-creates the series of every enum label value and of channel
  // "webhook", so they read 0 before the first event. `version` goes into build_info.
  explicit metrics(std::string_view version);
  ~metrics();
  metrics(const metrics&) = delete;
  metrics& operator=(const metrics&) = delete;

  // --- ingest -----------------------------------------------------------------------------------
  void webhook_received(webhook_result r);
  void webhook_warnings_suppressed(std::uint64_t n = 1);
  void alert_received(routing::ownership o, routing::alert_status s);
  void alerts_duplicate(std::uint64_t n = 1);
  void alerts_stale(std::uint64_t n = 1);  // stale and unknown resolves
  void alerts_unrouted(std::uint64_t n = 1);
  // Adds the decoder's counts for the bodies just decoded (a difference of
  // routing::thread_index_counts() taken around the decoding).
  void webhook_bodies_indexed(const routing::index_counts& added);

  // --- incidents --------------------------------------------------------------------------------
  void incidents_opened(std::uint64_t n = 1);    // including reopened ones
  void incidents_reopened(std::uint64_t n = 1);  // an open incident replaced (its resolve lost)
  void incidents_resolved(std::uint64_t n = 1);
  void set_incidents_open(std::size_t n);
  // `total` is the table's own monotonically increasing eviction count; the counter follows it
  // by the difference. A smaller value than last time means the source restarted (a new table):
  // `total` is then added whole, so the counter never goes down.
  void set_incident_evictions(std::uint64_t total);

  // Adds one plan's counts (duplicates, stale, unrouted, opened, reopened, resolved) and its
  // degraded events (nobody on call, blocked pages, no contact). alerts_received is not in a plan
  // (it needs each alert's ownership): call alert_received() per alert.
  void record_plan(const routing::plan& p);

  // --- routing outcomes -------------------------------------------------------------------------
  // Schedule names from the configuration: pre-creates nobody_on_call_total and
  // blocked_pages_total for each, and fixes the set reported by schedules_nobody_on_call. Call at
  // start and after each successful reload; series of schedules no longer configured keep their
  // last value (counters never disappear mid-process).
  void set_schedules(const std::vector<std::string>& names);
  void nobody_on_call(std::string_view schedule);
  void blocked_page(std::string_view schedule);  // a schedule target refused for a user project
  void no_contact(config::target_type t);

  // --- delivery ---------------------------------------------------------------------------------
  // `channel` names the delivery client ("webhook", later "email", "irc"). A name not seen before
  // creates its series once; later calls find them in a small map.
  void notification(std::string_view channel, routing::notification_kind kind, delivery_result r);
  void delivery_attempt(std::string_view channel);
  void delivery_retry(std::string_view channel);
  // Time from receiving the webhook to the receiver's acceptance of the notification.
  void delivery_latency(std::string_view channel, std::chrono::nanoseconds elapsed);

  // --- state store ------------------------------------------------------------------------------
  // One state store transaction committed `sets` webhook bodies' changes in `took` (fsync
  // included). The one method that may be called from another thread (the store's writer):
  // it touches only prometheus-cpp's thread-safe series.
  void state_commit(std::size_t sets, std::chrono::nanoseconds took);

  // --- configuration ----------------------------------------------------------------------------
  // A (re)load finished at `at`. Call it for the initial load too. Success sets
  // last_reload_successful to 1 and the success timestamp to `at`; failure sets the former to 0
  // and leaves the timestamp. Both count in config_reloads_total{result}.
  void config_reloaded(bool success, std::chrono::system_clock::time_point at);

  // --- HTTP -------------------------------------------------------------------------------------
  // The duration histogram of `path` (the handler's fixed path, e.g. "/webhook/alertmanager").
  // Call at startup, once per handler; registering a path again returns the same series.
  http_handler_metrics register_handler(std::string_view path);
  void set_http_stats_source(http_stats_source source);

  // --- scrape time ------------------------------------------------------------------------------
  void set_oncall_source(oncall_source source);

  enum class value_type { counter, gauge };
  // Adds a metric without labels whose value `read` returns at each render() (e.g. a queue
  // length). Call at startup. Throws std::invalid_argument if `name` is not a valid metric name,
  // is already taken, ends in "_bucket", "_count" or "_sum", a counter's name does not end in
  // "_total" (or a gauge's does), `help` is empty or `read` is empty. `read` must not call back
  // into this object.
  void add_scrape_value(value_type type, std::string name, std::string help,
                        std::function<double()> read);

  // Every family, in Prometheus text format (kContentType): registry families, then scrape-time
  // ones. Calls the scrape-time callbacks.
  std::string render() const;

 private:
  struct channel_series;
  struct scrape_value {
    value_type type;
    std::string name;
    std::string help;
    std::function<double()> read;
  };

  class scrape_collector;  // the scrape-time families, a prometheus::Collectable
  using counter_cache = std::map<std::string, prometheus::Counter*, std::less<>>;

  channel_series& channel(std::string_view name);
  static prometheus::Counter& cached(prometheus::Family<prometheus::Counter>& family,
                                     counter_cache& cache, std::string_view label,
                                     std::string_view value);
  void reserve_name(const std::string& name);

  std::unique_ptr<prometheus::Registry> registry_;

  prometheus::Counter* webhooks_by_result_[5] = {};
  prometheus::Counter* alerts_by_ownership_status_[3][2] = {};
  prometheus::Counter* duplicates_ = nullptr;
  prometheus::Counter* stale_ = nullptr;
  prometheus::Counter* unrouted_ = nullptr;
  prometheus::Counter* incidents_opened_ = nullptr;
  prometheus::Counter* incidents_reopened_ = nullptr;
  prometheus::Counter* incidents_resolved_ = nullptr;
  prometheus::Gauge* incidents_open_ = nullptr;
  prometheus::Counter* evictions_ = nullptr;
  prometheus::Counter* webhook_warnings_suppressed_ = nullptr;
  prometheus::Counter* bodies_first_stage_ = nullptr;
  prometheus::Counter* bodies_derived_ = nullptr;
  prometheus::Counter* bodies_same_ = nullptr;
  prometheus::Counter* bodies_replayed_ = nullptr;
  std::uint64_t evictions_seen_ = 0;

  prometheus::Family<prometheus::Counter>* nobody_family_ = nullptr;
  prometheus::Family<prometheus::Counter>* blocked_family_ = nullptr;
  counter_cache nobody_by_schedule_;
  counter_cache blocked_by_schedule_;
  std::vector<std::string> schedules_;  // sorted, unique
  prometheus::Counter* no_contact_by_type_[3] = {};

  prometheus::Family<prometheus::Counter>* notifications_family_ = nullptr;
  prometheus::Family<prometheus::Counter>* attempts_family_ = nullptr;
  prometheus::Family<prometheus::Counter>* retries_family_ = nullptr;
  prometheus::Family<prometheus::Histogram>* latency_family_ = nullptr;
  std::map<std::string, std::unique_ptr<channel_series>, std::less<>> channels_;

  prometheus::Counter* state_commits_ = nullptr;
  prometheus::Counter* state_sets_ = nullptr;
  prometheus::Histogram* state_commit_duration_ = nullptr;

  prometheus::Gauge* reload_successful_ = nullptr;
  prometheus::Gauge* reload_timestamp_ = nullptr;
  prometheus::Counter* reloads_success_ = nullptr;
  prometheus::Counter* reloads_failure_ = nullptr;

  prometheus::Family<prometheus::Histogram>* http_duration_family_ = nullptr;

  http_stats_source http_stats_;
  oncall_source oncall_;
  std::vector<scrape_value> scrape_values_;
  std::set<std::string, std::less<>> names_;  // every name exposed, to refuse duplicates
  std::unique_ptr<scrape_collector> collector_;
};

}  // namespace alertrouter::daemon
