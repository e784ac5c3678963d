#include "daemon/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "routing/planner.h"

namespace alertrouter::daemon {
namespace {

using namespace std::chrono_literals;
using config::target_type;
using routing::alert_status;
using routing::notification_kind;
using routing::ownership;
using ::testing::Contains;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using oncall_list = std::vector<std::pair<std::string, std::string>>;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The name a sample line starts with, up to its labels or value.
std::string_view metric_name(std::string_view line) {
  return line.substr(0, line.find_first_of("{ "));
}

// Passes if `text` holds `line` exactly; on failure shows the lines of the same metric.
::testing::AssertionResult has_line(const std::string& text, const std::string& line) {
  std::string same_metric;
  for (const std::string& l : lines_of(text)) {
    if (l == line) return ::testing::AssertionSuccess();
    if (!l.starts_with("#") && metric_name(l) == metric_name(line)) same_metric += l + "\n";
  }
  return ::testing::AssertionFailure() << "no line `" << line << "`; lines of that metric:\n"
                                       << same_metric;
}

// Lines of `text` naming `name` (samples only, no HELP/TYPE).
std::vector<std::string> samples_of(const std::string& text, std::string_view name) {
  std::vector<std::string> out;
  for (const std::string& l : lines_of(text)) {
    if (!l.starts_with("#") && metric_name(l) == name) out.push_back(l);
  }
  return out;
}

struct promtool_result {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `promtool check metrics` with `exposition` on its stdin.
promtool_result promtool_check(const std::string& exposition) {
  const std::string promtool = ALERTROUTER_PROMTOOL;
  if (promtool.empty()) {
    ADD_FAILURE() << "promtool was not found when configuring the build; run "
                     "scripts/install-deps.sh (Debian package `prometheus`) and re-run cmake";
    return {};
  }
  std::string path = ::testing::TempDir() + "metrics_test_XXXXXX";
  const int fd = ::mkstemp(path.data());
  if (fd < 0) {
    ADD_FAILURE() << "mkstemp failed in " << ::testing::TempDir();
    return {};
  }
  ::close(fd);
  std::ofstream(path, std::ios::binary) << exposition;
  const std::string command = "'" + promtool + "' check metrics < '" + path + "' 2>&1";
  promtool_result r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "popen failed: " << command;
    std::remove(path.c_str());
    return r;
  }
  std::array<char, 4096> buf{};
  for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;) {
    r.output.append(buf.data(), n);
  }
  const int status = ::pclose(pipe);
  std::remove(path.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(metrics_test, every_fixed_series_reads_zero_before_any_event) {
  metrics m("1.2.3");
  const std::string out = m.render();

  EXPECT_THAT(samples_of(out, "alertrouter_build_info"),
              ::testing::ElementsAre(MatchesRegex(
                  R"(alertrouter_build_info\{compiler="(gcc|clang)-[0-9]+\.[0-9]+\.[0-9]+",)"
                  R"(version="1\.2\.3"\} 1)")));
  for (const char* r : {"accepted", "bad_request", "too_large", "unauthorized", "unavailable"}) {
    EXPECT_TRUE(
        has_line(out, "alertrouter_webhooks_received_total{result=\"" + std::string(r) + "\"} 0"));
  }
  EXPECT_EQ(samples_of(out, "alertrouter_webhooks_received_total").size(), 5u);
  for (const char* o : {"owned", "user", "unowned"}) {
    for (const char* s : {"firing", "resolved"}) {
      EXPECT_TRUE(has_line(out, "alertrouter_alerts_received_total{ownership=\"" + std::string(o) +
                                    "\",status=\"" + s + "\"} 0"));
    }
  }
  EXPECT_EQ(samples_of(out, "alertrouter_alerts_received_total").size(), 6u);
  for (const char* t : {"schedule", "receiver", "project"}) {
    EXPECT_TRUE(
        has_line(out, "alertrouter_no_contact_total{target_type=\"" + std::string(t) + "\"} 0"));
  }
  for (const char* k : {"page", "resolve"}) {
    for (const char* r : {"delivered", "rejected", "gave_up", "dropped"}) {
      EXPECT_TRUE(has_line(out, "alertrouter_notifications_total{channel=\"webhook\",kind=\"" +
                                    std::string(k) + "\",result=\"" + r + "\"} 0"));
    }
  }
  EXPECT_EQ(samples_of(out, "alertrouter_notifications_total").size(), 8u);
  for (const char* line : {
           "alertrouter_alerts_duplicate_total 0",
           "alertrouter_alerts_stale_total 0",
           "alertrouter_alerts_unrouted_total 0",
           "alertrouter_incidents_opened_total 0",
           "alertrouter_incidents_reopened_total 0",
           "alertrouter_incidents_resolved_total 0",
           "alertrouter_incidents_open 0",
           "alertrouter_incident_evictions_total 0",
           "alertrouter_webhook_bodies_indexed_total{how=\"first_stage\"} 0",
           "alertrouter_webhook_bodies_indexed_total{how=\"derived\"} 0",
           "alertrouter_webhook_bodies_indexed_total{how=\"same\"} 0",
           "alertrouter_webhook_bodies_replayed_total 0",
           "alertrouter_delivery_attempts_total{channel=\"webhook\"} 0",
           "alertrouter_delivery_retries_total{channel=\"webhook\"} 0",
           "alertrouter_delivery_latency_seconds_count{channel=\"webhook\"} 0",
           "alertrouter_delivery_latency_seconds_bucket{channel=\"webhook\",le=\"+Inf\"} 0",
           "alertrouter_config_last_reload_successful 0",
           "alertrouter_config_last_reload_success_timestamp_seconds 0",
           "alertrouter_config_reloads_total{result=\"success\"} 0",
           "alertrouter_config_reloads_total{result=\"failure\"} 0",
       }) {
    EXPECT_TRUE(has_line(out, line));
  }
  // Scrape-time families without a source: on-call is present but empty, HTTP stats absent.
  EXPECT_THAT(lines_of(out), Contains("# TYPE alertrouter_oncall gauge"));
  EXPECT_THAT(samples_of(out, "alertrouter_oncall"), IsEmpty());
  EXPECT_THAT(lines_of(out), Not(Contains("# TYPE alertrouter_http_connections_open gauge")));
  // Every family has a help text.
  for (const std::string& l : lines_of(out)) {
    if (l.starts_with("# HELP ")) {
      EXPECT_GT(l.size(), std::string("# HELP ").size() + metric_name(l.substr(7)).size() + 1) << l;
    }
  }
}

TEST(metrics_test, webhook_results_count_separately) {
  metrics m("0");
  m.webhook_received(webhook_result::accepted);
  m.webhook_received(webhook_result::accepted);
  m.webhook_received(webhook_result::unauthorized);
  m.webhook_received(webhook_result::too_large);
  const std::string out = m.render();
  EXPECT_TRUE(has_line(out, R"(alertrouter_webhooks_received_total{result="accepted"} 2)"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_webhooks_received_total{result="unauthorized"} 1)"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_webhooks_received_total{result="too_large"} 1)"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_webhooks_received_total{result="bad_request"} 0)"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_webhooks_received_total{result="unavailable"} 0)"));
}

TEST(metrics_test, alerts_count_by_ownership_and_status) {
  metrics m("0");
  m.alert_received(ownership::owned, alert_status::firing);
  m.alert_received(ownership::owned, alert_status::firing);
  m.alert_received(ownership::owned, alert_status::resolved);
  m.alert_received(ownership::user, alert_status::firing);
  m.alert_received(ownership::unowned, alert_status::resolved);
  const std::string out = m.render();
  const std::string p = "alertrouter_alerts_received_total";
  EXPECT_TRUE(has_line(out, p + R"({ownership="owned",status="firing"} 2)"));
  EXPECT_TRUE(has_line(out, p + R"({ownership="owned",status="resolved"} 1)"));
  EXPECT_TRUE(has_line(out, p + R"({ownership="user",status="firing"} 1)"));
  EXPECT_TRUE(has_line(out, p + R"({ownership="user",status="resolved"} 0)"));
  EXPECT_TRUE(has_line(out, p + R"({ownership="unowned",status="firing"} 0)"));
  EXPECT_TRUE(has_line(out, p + R"({ownership="unowned",status="resolved"} 1)"));
}

TEST(metrics_test, record_plan_adds_counts_and_degraded_events) {
  metrics m("0");
  m.set_schedules({"primary", "clinic", "primary"});

  routing::plan p;
  p.counts.received = 9;
  p.counts.opened = 3;
  p.counts.reopened = 1;
  p.counts.duplicates = 4;
  p.counts.closed = 2;
  p.counts.stale = 5;
  p.counts.unrouted = 1;
  p.nobody.push_back({.schedule = "primary", .route = "r", .fp = {}});
  p.nobody.push_back({.schedule = "primary", .route = "r2", .fp = {}});
  p.blocked.push_back({.schedule = "clinic", .route = "r", .fp = {}});
  routing::no_contact nc;
  nc.target.type = target_type::project;
  nc.target.name = "deployment-prep";
  p.no_contacts.push_back(nc);
  m.record_plan(p);
  m.record_plan(p);
  // A schedule not given to set_schedules() still counts (series made on first use).
  m.nobody_on_call("weekend");

  const std::string out = m.render();
  for (const char* line : {
           "alertrouter_incidents_opened_total 6",
           "alertrouter_incidents_reopened_total 2",
           "alertrouter_alerts_duplicate_total 8",
           "alertrouter_incidents_resolved_total 4",
           "alertrouter_alerts_stale_total 10",
           "alertrouter_alerts_unrouted_total 2",
           "alertrouter_nobody_on_call_total{schedule=\"primary\"} 4",
           "alertrouter_nobody_on_call_total{schedule=\"clinic\"} 0",
           "alertrouter_nobody_on_call_total{schedule=\"weekend\"} 1",
           "alertrouter_blocked_pages_total{schedule=\"clinic\"} 2",
           "alertrouter_blocked_pages_total{schedule=\"primary\"} 0",
           "alertrouter_no_contact_total{target_type=\"project\"} 2",
           "alertrouter_no_contact_total{target_type=\"schedule\"} 0",
       }) {
    EXPECT_TRUE(has_line(out, line));
  }
  EXPECT_EQ(samples_of(out, "alertrouter_nobody_on_call_total").size(), 3u);
  EXPECT_EQ(samples_of(out, "alertrouter_blocked_pages_total").size(), 2u);
}

TEST(metrics_test, webhook_bodies_indexed_adds_each_way) {
  metrics m("0");
  m.webhook_bodies_indexed({.first_stage = 2, .reused = 5, .derived = 1, .replayed = 4});
  m.webhook_bodies_indexed({.first_stage = 0, .reused = 1, .derived = 0, .replayed = 1});
  const std::string out = m.render();
  EXPECT_TRUE(has_line(out, "alertrouter_webhook_bodies_indexed_total{how=\"first_stage\"} 2"));
  EXPECT_TRUE(has_line(out, "alertrouter_webhook_bodies_indexed_total{how=\"derived\"} 1"));
  EXPECT_TRUE(has_line(out, "alertrouter_webhook_bodies_indexed_total{how=\"same\"} 6"));
  EXPECT_TRUE(has_line(out, "alertrouter_webhook_bodies_replayed_total 5"));
}

TEST(metrics_test, incidents_open_gauge_and_evictions_follow_their_source) {
  metrics m("0");
  m.set_incidents_open(7);
  EXPECT_TRUE(has_line(m.render(), "alertrouter_incidents_open 7"));
  m.set_incidents_open(3);
  EXPECT_TRUE(has_line(m.render(), "alertrouter_incidents_open 3"));

  m.set_incident_evictions(5);
  EXPECT_TRUE(has_line(m.render(), "alertrouter_incident_evictions_total 5"));
  m.set_incident_evictions(5);
  EXPECT_TRUE(has_line(m.render(), "alertrouter_incident_evictions_total 5"));
  m.set_incident_evictions(8);
  EXPECT_TRUE(has_line(m.render(), "alertrouter_incident_evictions_total 8"));
  // The source restarted (a new table counting from 0): its 2 evictions are new ones.
  m.set_incident_evictions(2);
  EXPECT_TRUE(has_line(m.render(), "alertrouter_incident_evictions_total 10"));
  m.set_incident_evictions(3);
  EXPECT_TRUE(has_line(m.render(), "alertrouter_incident_evictions_total 11"));
}

TEST(metrics_test, notifications_count_by_channel_kind_result_and_new_channels_appear) {
  metrics m("0");
  m.notification("webhook", notification_kind::page, delivery_result::delivered);
  m.notification("webhook", notification_kind::page, delivery_result::delivered);
  m.notification("webhook", notification_kind::resolve, delivery_result::gave_up);
  m.delivery_attempt("webhook");
  m.delivery_attempt("webhook");
  m.delivery_attempt("webhook");
  m.delivery_retry("webhook");
  m.notification("email", notification_kind::resolve, delivery_result::dropped);
  m.delivery_attempt("email");

  const std::string out = m.render();
  const std::string n = "alertrouter_notifications_total";
  EXPECT_TRUE(has_line(out, n + R"({channel="webhook",kind="page",result="delivered"} 2)"));
  EXPECT_TRUE(has_line(out, n + R"({channel="webhook",kind="resolve",result="gave_up"} 1)"));
  EXPECT_TRUE(has_line(out, n + R"({channel="webhook",kind="resolve",result="delivered"} 0)"));
  EXPECT_TRUE(has_line(out, n + R"({channel="email",kind="resolve",result="dropped"} 1)"));
  EXPECT_TRUE(has_line(out, n + R"({channel="email",kind="page",result="rejected"} 0)"));
  EXPECT_EQ(samples_of(out, n).size(), 16u);  // 2 channels x 2 kinds x 4 results
  EXPECT_TRUE(has_line(out, R"(alertrouter_delivery_attempts_total{channel="webhook"} 3)"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_delivery_retries_total{channel="webhook"} 1)"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_delivery_attempts_total{channel="email"} 1)"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_delivery_retries_total{channel="email"} 0)"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_delivery_latency_seconds_count{channel="email"} 0)"));
}

TEST(metrics_test, delivery_latency_histogram_buckets_in_seconds) {
  metrics m("0");
  m.delivery_latency("webhook", 500ms);
  m.delivery_latency("webhook", 2s);
  m.delivery_latency("webhook", 10min);  // beyond the last bucket (300 s)
  m.delivery_latency("webhook", -1s);    // a clock step: counts as 0
  const std::string out = m.render();
  const std::string b = "alertrouter_delivery_latency_seconds_bucket{channel=\"webhook\",le=";
  EXPECT_TRUE(has_line(out, b + R"("0.001"} 1)"));
  EXPECT_TRUE(has_line(out, b + R"("0.25"} 1)"));
  EXPECT_TRUE(has_line(out, b + R"("0.5"} 2)"));
  EXPECT_TRUE(has_line(out, b + R"("1"} 2)"));
  EXPECT_TRUE(has_line(out, b + R"("2.5"} 3)"));
  EXPECT_TRUE(has_line(out, b + R"("300"} 3)"));
  EXPECT_TRUE(has_line(out, b + R"("+Inf"} 4)"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_delivery_latency_seconds_count{channel="webhook"} 4)"));
  EXPECT_TRUE(
      has_line(out, R"(alertrouter_delivery_latency_seconds_sum{channel="webhook"} 602.5)"));

  // Buckets run from 1 ms to 5 min, ascending.
  std::vector<std::string> les;
  for (const std::string& l : samples_of(out, "alertrouter_delivery_latency_seconds_bucket")) {
    const auto at = l.find("le=\"") + 4;
    les.push_back(l.substr(at, l.find('"', at) - at));
  }
  ASSERT_GE(les.size(), 3u);
  EXPECT_EQ(les.front(), "0.001");
  EXPECT_EQ(les[les.size() - 2], "300");
  EXPECT_EQ(les.back(), "+Inf");
  for (std::size_t i = 1; i + 1 < les.size(); ++i) {
    EXPECT_LT(std::stod(les[i - 1]), std::stod(les[i])) << les[i];
  }
}

TEST(metrics_test, http_request_duration_per_registered_handler) {
  metrics m("0");
  const http_handler_metrics webhook = m.register_handler("/webhook/alertmanager");
  const http_handler_metrics scrape = m.register_handler("/metrics");
  webhook.observe(30us);
  webhook.observe(3ms);
  scrape.observe(20s);
  // Registering a path again yields the same series.
  m.register_handler("/webhook/alertmanager").observe(30us);
  http_handler_metrics{}.observe(1s);  // a default handle records nothing

  const std::string out = m.render();
  const std::string h = "alertrouter_http_request_duration_seconds";
  EXPECT_TRUE(has_line(out, h + R"(_count{handler="/webhook/alertmanager"} 3)"));
  EXPECT_TRUE(has_line(out, h + R"(_bucket{handler="/webhook/alertmanager",le="5e-05"} 2)"));
  EXPECT_TRUE(has_line(out, h + R"(_bucket{handler="/webhook/alertmanager",le="0.0025"} 2)"));
  EXPECT_TRUE(has_line(out, h + R"(_bucket{handler="/webhook/alertmanager",le="0.005"} 3)"));
  EXPECT_TRUE(has_line(out, h + R"(_bucket{handler="/metrics",le="10"} 0)"));
  EXPECT_TRUE(has_line(out, h + R"(_bucket{handler="/metrics",le="+Inf"} 1)"));
  EXPECT_TRUE(has_line(out, h + R"(_sum{handler="/metrics"} 20)"));
  EXPECT_EQ(samples_of(out, h + "_count").size(), 2u);
  EXPECT_EQ(samples_of(out, h + "_bucket").size(), 2u * 18u);  // 17 bounds + Inf, 50 us .. 10 s
}

TEST(metrics_test, config_reload_success_failure_and_timestamp) {
  metrics m("0");
  const auto t0 = std::chrono::system_clock::time_point(1767225600s);  // 2026-01-01T00:00:00Z
  m.config_reloaded(true, t0);
  std::string out = m.render();
  EXPECT_TRUE(has_line(out, "alertrouter_config_last_reload_successful 1"));
  EXPECT_TRUE(has_line(out, "alertrouter_config_last_reload_success_timestamp_seconds 1767225600"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_config_reloads_total{result="success"} 1)"));

  m.config_reloaded(false, t0 + 1h);
  out = m.render();
  EXPECT_TRUE(has_line(out, "alertrouter_config_last_reload_successful 0"));
  EXPECT_TRUE(has_line(out, "alertrouter_config_last_reload_success_timestamp_seconds 1767225600"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_config_reloads_total{result="failure"} 1)"));

  m.config_reloaded(true, t0 + 2h + 500ms);
  out = m.render();
  EXPECT_TRUE(has_line(out, "alertrouter_config_last_reload_successful 1"));
  EXPECT_TRUE(
      has_line(out, "alertrouter_config_last_reload_success_timestamp_seconds 1767232800.5"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_config_reloads_total{result="success"} 2)"));
}

TEST(metrics_test, oncall_reflects_the_callback_at_each_render) {
  metrics m("0");
  oncall_list now = {{"primary", "alice"}, {"clinic", "bob"}};
  int calls = 0;
  m.set_oncall_source([&] {
    ++calls;
    return now;
  });
  m.set_schedules({"primary", "clinic", "weekend"});
  EXPECT_EQ(calls, 0);  // only at scrape time

  std::string out = m.render();
  EXPECT_EQ(calls, 1);
  EXPECT_THAT(
      samples_of(out, "alertrouter_oncall"),
      ::testing::UnorderedElementsAre(R"(alertrouter_oncall{person="alice",schedule="primary"} 1)",
                                      R"(alertrouter_oncall{person="bob",schedule="clinic"} 1)"));
  EXPECT_THAT(samples_of(out, "alertrouter_schedules_nobody_on_call"),
              ::testing::UnorderedElementsAre(
                  R"(alertrouter_schedules_nobody_on_call{schedule="clinic"} 0)",
                  R"(alertrouter_schedules_nobody_on_call{schedule="primary"} 0)",
                  R"(alertrouter_schedules_nobody_on_call{schedule="weekend"} 1)"));

  // A handoff, clinic empties; duplicates and empty names from the source are dropped.
  now = {{"primary", "carol"}, {"primary", "carol"}, {"clinic", ""}, {"", "dave"}};
  out = m.render();
  EXPECT_EQ(calls, 2);
  EXPECT_THAT(samples_of(out, "alertrouter_oncall"),
              ::testing::ElementsAre(R"(alertrouter_oncall{person="carol",schedule="primary"} 1)"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_schedules_nobody_on_call{schedule="clinic"} 1)"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_schedules_nobody_on_call{schedule="primary"} 0)"));
}

TEST(metrics_test, http_server_stats_are_read_at_scrape_time) {
  metrics m("0");
  http_server_stats stats;
  stats.connections_open = 3;
  stats.connections_accepted = 40;
  stats.connections_rejected = 2;
  stats.responses_by_class[2] = 30;
  stats.responses_by_class[4] = 7;
  stats.responses_by_class[5] = 1;
  stats.read_timeouts = 4;
  stats.idle_timeouts = 5;
  stats.write_timeouts = 6;
  stats.handler_errors = 1;
  stats.accept_errors = 9;
  stats.connections_evicted = 11;
  stats.bodies_deferred = 12;
  m.set_http_stats_source([&] { return stats; });

  std::string out = m.render();
  for (const char* line : {
           "alertrouter_http_connections_open 3",
           "alertrouter_http_connections_accepted_total 40",
           "alertrouter_http_connections_rejected_total 2",
           "alertrouter_http_connections_evicted_total 11",
           "alertrouter_http_bodies_deferred_total 12",
           "alertrouter_http_responses_total{code=\"1xx\"} 0",
           "alertrouter_http_responses_total{code=\"2xx\"} 30",
           "alertrouter_http_responses_total{code=\"3xx\"} 0",
           "alertrouter_http_responses_total{code=\"4xx\"} 7",
           "alertrouter_http_responses_total{code=\"5xx\"} 1",
           "alertrouter_http_read_timeouts_total 4",
           "alertrouter_http_idle_timeouts_total 5",
           "alertrouter_http_write_timeouts_total 6",
           "alertrouter_http_handler_errors_total 1",
           "alertrouter_http_accept_errors_total 9",
       }) {
    EXPECT_TRUE(has_line(out, line));
  }
  EXPECT_THAT(lines_of(out), Contains("# TYPE alertrouter_http_connections_open gauge"));
  EXPECT_THAT(lines_of(out), Contains("# TYPE alertrouter_http_responses_total counter"));

  stats.connections_open = 0;
  stats.responses_by_class[2] = 31;
  out = m.render();
  EXPECT_TRUE(has_line(out, "alertrouter_http_connections_open 0"));
  EXPECT_TRUE(has_line(out, "alertrouter_http_responses_total{code=\"2xx\"} 31"));
}

TEST(metrics_test, scrape_values_are_read_at_render_and_names_are_checked) {
  metrics m("0");
  double queue = 4;
  m.add_scrape_value(metrics::value_type::gauge, "alertrouter_outbox_length",
                     "Notifications waiting for delivery.", [&] { return queue; });
  m.add_scrape_value(metrics::value_type::counter, "alertrouter_outbox_spilled_total",
                     "Notifications written to disk.", [] { return 12.0; });
  std::string out = m.render();
  EXPECT_TRUE(has_line(out, "alertrouter_outbox_length 4"));
  EXPECT_TRUE(has_line(out, "alertrouter_outbox_spilled_total 12"));
  EXPECT_THAT(lines_of(out), Contains("# TYPE alertrouter_outbox_length gauge"));
  EXPECT_THAT(lines_of(out), Contains("# TYPE alertrouter_outbox_spilled_total counter"));
  queue = 0;
  EXPECT_TRUE(has_line(m.render(), "alertrouter_outbox_length 0"));

  const auto add = [&](metrics::value_type t, std::string name, std::string help = "help") {
    m.add_scrape_value(t, std::move(name), std::move(help), [] { return 1.0; });
  };
  using vt = metrics::value_type;
  EXPECT_THROW(add(vt::gauge, "alertrouter_outbox_length"), std::invalid_argument);  // taken
  EXPECT_THROW(add(vt::gauge, "alertrouter_incidents_open"), std::invalid_argument);
  EXPECT_THROW(add(vt::gauge, "alertrouter_oncall"), std::invalid_argument);
  EXPECT_THROW(add(vt::gauge, "alertrouter_delivery_latency_seconds_count"), std::invalid_argument);
  EXPECT_THROW(add(vt::gauge, "bad name"), std::invalid_argument);
  EXPECT_THROW(add(vt::gauge, "9lives"), std::invalid_argument);
  EXPECT_THROW(add(vt::counter, "alertrouter_things"), std::invalid_argument);
  EXPECT_THROW(add(vt::gauge, "alertrouter_things_total"), std::invalid_argument);
  EXPECT_THROW(add(vt::gauge, "alertrouter_things_sum"), std::invalid_argument);
  EXPECT_THROW(add(vt::gauge, "alertrouter_things", ""), std::invalid_argument);
  EXPECT_THROW(m.add_scrape_value(vt::gauge, "alertrouter_things", "help", {}),
               std::invalid_argument);
  // None of the refused ones was added.
  EXPECT_THAT(samples_of(m.render(), "alertrouter_things"), IsEmpty());
}

TEST(metrics_test, label_values_are_escaped) {
  metrics m("0");
  m.nobody_on_call("we\"ird\\name\nhere");
  m.set_oncall_source([] { return oncall_list{{"ünïcode", "zoë"}}; });
  const std::string out = m.render();
  EXPECT_TRUE(
      has_line(out, R"(alertrouter_nobody_on_call_total{schedule="we\"ird\\name\nhere"} 1)"));
  EXPECT_TRUE(has_line(out, R"(alertrouter_oncall{person="zoë",schedule="ünïcode"} 1)"));
}

// Everything populated, including awkward label values, as a scrape would see it.
TEST(metrics_test, render_passes_promtool_check_metrics) {
  metrics m("0.1.0");
  m.set_schedules({"primary", "clinic", "we\"ird\\name\nhere"});
  m.set_oncall_source([] {
    return oncall_list{{"primary", "alice"}, {"we\"ird\\name\nhere", "zoë"}};
  });
  http_server_stats stats;
  stats.responses_by_class[2] = 3;
  m.set_http_stats_source([&] { return stats; });
  m.add_scrape_value(metrics::value_type::gauge, "alertrouter_outbox_length", "Queued.",
                     [] { return 2.0; });
  m.webhook_received(webhook_result::accepted);
  m.alert_received(ownership::user, alert_status::firing);
  m.alerts_duplicate();
  m.alerts_stale();
  m.alerts_unrouted();
  m.incidents_opened();
  m.incidents_reopened();
  m.incidents_resolved();
  m.set_incidents_open(1);
  m.set_incident_evictions(1);
  m.nobody_on_call("clinic");
  m.blocked_page("primary");
  m.no_contact(target_type::receiver);
  m.notification("irc", notification_kind::page, delivery_result::rejected);
  m.delivery_attempt("webhook");
  m.delivery_retry("webhook");
  m.delivery_latency("webhook", 1500ms);
  m.config_reloaded(true, std::chrono::system_clock::now());
  m.register_handler("/webhook/alertmanager").observe(120us);
  m.register_handler("/metrics");

  const promtool_result r = promtool_check(m.render());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "");  // no lint problems
}

// The check above can fail: promtool flags a missing help text and a counter without _total.
TEST(metrics_test, promtool_check_reports_lint_problems) {
  const promtool_result r = promtool_check("# TYPE requests counter\nrequests 1\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, ::testing::HasSubstr("requests"));
}

}  // namespace
}  // namespace alertrouter::daemon
