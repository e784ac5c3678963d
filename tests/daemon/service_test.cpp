#include "daemon/service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "daemon/delivery.h"
#include "daemon/metrics.h"
#include "routing/incident.h"
#include "routing/planner.h"
#include "routing/time.h"
#include "store/group_commit.h"
#include "store/state_store.h"

namespace alertrouter::daemon {
namespace {

using namespace std::chrono_literals;
using routing::notification_kind;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::SizeIs;
namespace json = boost::json;

// A small WMCS-like configuration. `oncall` has a single-member layer (alice, from its start on)
// and one override (bob, 2026-03-10 UTC), so who is on call at any instant is known exactly. The
// routes are those of config/examples/wmcs.yaml for one schedule. cloud-admin-ml has only an
// e-mail address, which the daemon cannot deliver to yet.
constexpr std::string_view kConfig = R"(listen: 127.0.0.1:9595
timezone: UTC
ownership:
  label: project
  owned: [tools, admin]
  infrastructure: ['team="wmcs"']
people:
  alice: {webhook: "http://127.0.0.1:9000/alice", email: alice@example.org}
  bob: {webhook: "http://127.0.0.1:9000/bob", email: bob@example.org}
schedules:
  oncall:
    timezone: UTC
    layers:
      - name: primary
        members: [alice]
        start: 2026-01-07T16:00
        shift: 1w
    overrides:
      - {person: bob, from: 2026-03-10T00:00, to: 2026-03-11T00:00}
receivers:
  cloud-feed: {webhook: "http://127.0.0.1:9000/cloud-feed"}
  cloud-admin-ml: {email: cloud-admin@example.org}
projects:
  deployment-prep: {webhook: "http://127.0.0.1:9000/deployment-prep"}
routes:
  - name: owned-page
    match: ['ownership="owned"', 'severity="page"']
    notify: [schedule:oncall, receiver:cloud-feed]
  - name: owned-warning-task
    match: ['ownership="owned"', 'severity=~"warning|task"']
    notify: [receiver:cloud-feed]
  - name: user-projects
    match: ['ownership="user"']
    notify: [project]
  - name: unowned
    match: ['ownership="unowned"']
    notify: [receiver:cloud-feed]
  - name: fallback
    notify: [receiver:cloud-feed, receiver:cloud-admin-ml]
limits:
  max_pending: 10
)";

constexpr std::string_view kAliceUrl = "http://127.0.0.1:9000/alice";
constexpr std::string_view kBobUrl = "http://127.0.0.1:9000/bob";
constexpr std::string_view kFeedUrl = "http://127.0.0.1:9000/cloud-feed";
constexpr std::string_view kProjectUrl = "http://127.0.0.1:9000/deployment-prep";

// The pinned wall clock: a Wednesday, alice on call (layer `primary`) since the layer started.
constexpr std::string_view kNow = "2026-03-04T12:00:00Z";

std::chrono::system_clock::time_point instant(std::string_view rfc3339) {
  const auto t = routing::parse_rfc3339(rfc3339);
  if (!t) throw std::invalid_argument("bad time in test: " + std::string(rfc3339));
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(*t);
}

// Replaces the one occurrence of `from` in `text` (fails the test if there is none).
std::string replaced(std::string_view text, std::string_view from, std::string_view to) {
  std::string out(text);
  const std::size_t at = out.find(from);
  if (at == std::string::npos) throw std::invalid_argument("not in text: " + std::string(from));
  out.replace(at, from.size(), to);
  return out;
}

std::size_t line_count(std::string_view text) {
  std::size_t n = 0;
  for (const char c : text) n += c == '\n' ? 1 : 0;
  return n;
}

// A delivery that only records: what was submitted, and a pending() the test sets.
class recording_delivery final : public delivery {
 public:
  void submit(delivery_request req) override { submitted.push_back(std::move(req)); }
  std::size_t pending() const override { return pending_count; }
  void stop(std::chrono::milliseconds grace, std::function<void()> on_stopped) override {
    (void)grace;
    if (on_stopped) on_stopped();
  }

  std::vector<delivery_request> submitted;
  std::size_t pending_count = 0;
};

// One alert of a webhook body. Resolved when `ends_at` is set.
struct test_alert {
  std::map<std::string, std::string> labels;
  std::string starts_at = "2026-03-04T11:55:00Z";
  std::string ends_at;
  std::string fingerprint;  // empty: computed by the decoder
};

// An Alertmanager (version 4) webhook body for `alerts`.
std::string webhook_body(const std::vector<test_alert>& alerts,
                         std::string_view group_key = "{}:{alertname=\"test\"}") {
  json::array list;
  bool any_firing = false;
  for (const test_alert& a : alerts) {
    json::object labels;
    for (const auto& [k, v] : a.labels) labels.emplace(k, v);
    json::object o{{"status", a.ends_at.empty() ? "firing" : "resolved"},
                   {"labels", std::move(labels)},
                   {"annotations", json::object{{"summary", "something is wrong"}}},
                   {"startsAt", a.starts_at},
                   {"endsAt", a.ends_at.empty() ? "0001-01-01T00:00:00Z" : a.ends_at},
                   {"generatorURL", "https://prometheus.example/graph"}};
    if (!a.fingerprint.empty()) o.emplace("fingerprint", a.fingerprint);
    any_firing = any_firing || a.ends_at.empty();
    list.push_back(std::move(o));
  }
  return json::serialize(json::object{{"version", "4"},
                                      {"groupKey", group_key},
                                      {"status", any_firing ? "firing" : "resolved"},
                                      {"receiver", "alertrouter"},
                                      {"groupLabels", json::object{}},
                                      {"commonLabels", json::object{}},
                                      {"commonAnnotations", json::object{}},
                                      {"externalURL", "https://alertmanager.example"},
                                      {"alerts", std::move(list)}});
}

// A page for the team's own project `tools`, with a fixed fingerprint.
test_alert tools_page() {
  return {{{"alertname", "ToolsDBReplicationLag"}, {"project", "tools"}, {"severity", "page"}},
          "2026-03-04T11:55:00Z",
          "",
          "00000000000000aa"};
}

test_alert resolved(test_alert a, std::string ends_at = "2026-03-04T12:30:00Z") {
  a.ends_at = std::move(ends_at);
  return a;
}

// A warning for the team's own project `tools`: the feed only.
test_alert tools_warning() {
  return {{{"alertname", "ToolsNFSFull"}, {"project", "tools"}, {"severity", "warning"}},
          "2026-03-04T11:58:00Z",
          "",
          "00000000000000cc"};
}

// A page for the user project deployment-prep.
test_alert user_page() {
  return {{{"alertname", "InstanceDown"}, {"project", "deployment-prep"}, {"severity", "page"}},
          "2026-03-04T11:50:00Z",
          "",
          "00000000000000bb"};
}

http_request post(std::string body) {
  http_request r;
  r.method = "POST";
  r.path = "/webhook/alertmanager";
  r.body = std::move(body);
  r.remote = "127.0.0.1:40000";
  return r;
}

http_request get(std::string path, std::string query = {}) {
  http_request r;
  r.method = "GET";
  r.path = std::move(path);
  r.query = std::move(query);
  r.remote = "127.0.0.1:40000";
  return r;
}

json::value parsed(const http_response& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec) throw std::runtime_error("response is not JSON: " + r.body);
  return v;
}

std::string header_of(const http_response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

// Passes if `text` (a metrics exposition) holds `line` exactly; on failure shows the lines that
// start like it.
::testing::AssertionResult has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  std::string similar;
  const std::string name = line.substr(0, line.find_first_of("{ "));
  for (std::string l; std::getline(in, l);) {
    if (l == line) return ::testing::AssertionSuccess();
    if (l.rfind(name, 0) == 0) similar += l + "\n";
  }
  return ::testing::AssertionFailure() << "no line `" << line << "`; lines of that metric:\n"
                                       << similar;
}

std::string summary(std::size_t received, std::size_t opened, std::size_t duplicates,
                    std::size_t resolved_n, std::size_t stale, std::size_t notifications) {
  return json::serialize(json::object{{"received", received},
                                      {"new", opened},
                                      {"duplicates", duplicates},
                                      {"resolved", resolved_n},
                                      {"stale", stale},
                                      {"notifications", notifications}}) +
         "\n";
}

class service_test : public ::testing::Test {
 protected:
  service_test() = default;
  // With an incident table that holds at most `max_incidents` (dedup.max_incidents).
  explicit service_test(std::size_t max_incidents)
      : incidents_(std::chrono::hours(24), max_incidents) {}

  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "alertrouter-service-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    config_path_ = (dir_ / "alertrouter.yaml").string();
    write_config(kConfig);
  }
  void TearDown() override {
    svc_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string write(const std::string& name, std::string_view text) {
    const std::filesystem::path path = dir_ / name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path.string());
    return path.string();
  }
  void write_config(std::string_view text) { write("alertrouter.yaml", text); }

  // The service over the configuration file as it is now (loaded once, on first use).
  service& svc() {
    if (!svc_) {
      auto loaded = load_config(config_path_);
      if (auto* errors = std::get_if<std::vector<std::string>>(&loaded)) {
        std::string all;
        for (const std::string& e : *errors) all += e + "\n";
        throw std::runtime_error("config refused:\n" + all);
      }
      svc_ = std::make_unique<service>(
          config_path_, std::get<loaded_config>(std::move(loaded)), incidents_, stats_, out_,
          [this](log_level level, std::string_view m) {
            logs_.emplace_back(level, std::string(m));
          },
          [this] { return now_; });
    }
    return *svc_;
  }

  http_response send(std::string body,
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
    http_request r = post(std::move(body));
    r.headers = std::move(headers);
    return svc().webhook(r);
  }
  http_response oncall(std::string query = {}) {
    http_request r = get("/api/v1/oncall", std::move(query));
    return svc().oncall(r);
  }
  std::string metrics_text() {
    http_request r = get("/metrics");
    return svc().metrics_page(r).body;
  }
  std::size_t warnings() const {
    std::size_t n = 0;
    for (const auto& [level, m] : logs_) n += level == log_level::warn ? 1 : 0;
    return n;
  }

  std::filesystem::path dir_;
  std::string config_path_;
  routing::memory_incident_table incidents_{std::chrono::hours(24), 1000};
  metrics stats_{"test"};
  recording_delivery out_;
  std::vector<std::pair<log_level, std::string>> logs_;
  std::chrono::system_clock::time_point now_ = instant(kNow);
  std::unique_ptr<service> svc_;
};

// --- webhook: the happy path -----------------------------------------------------------------

TEST_F(service_test, owned_page_goes_to_the_person_on_call_and_the_receiver) {
  const http_response r = send(webhook_body({tools_page()}));
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, summary(1, 1, 0, 0, 0, 2));

  ASSERT_THAT(out_.submitted, SizeIs(2));
  std::map<std::string, const delivery_request*> by_url;
  for (const delivery_request& d : out_.submitted) by_url[d.url] = &d;
  ASSERT_EQ(by_url.count(std::string(kAliceUrl)), 1u);
  ASSERT_EQ(by_url.count(std::string(kFeedUrl)), 1u);

  const delivery_request& alice = *by_url[std::string(kAliceUrl)];
  const delivery_request& feed = *by_url[std::string(kFeedUrl)];
  for (const delivery_request* d : {&alice, &feed}) {
    EXPECT_EQ(d->kind, notification_kind::page);
    EXPECT_EQ(d->channel, "webhook");
    const json::value body = json::parse(d->body);
    // The idempotency key is the id the body carries.
    EXPECT_EQ(d->id, json::value_to<std::string>(body.at("id")));
    EXPECT_THAT(d->id, MatchesRegex("page-1-[0-9a-f]{16}"));
    EXPECT_EQ(body.at("kind"), "page");
    EXPECT_EQ(body.at("route"), "owned-page");
    EXPECT_EQ(body.at("ownership"), "owned");
    EXPECT_EQ(body.at("group_key"), "{}:{alertname=\"test\"}");
    EXPECT_EQ(body.at("external_url"), "https://alertmanager.example");
    ASSERT_EQ(body.at("alerts").as_array().size(), 1u);
    EXPECT_EQ(body.at("alerts").at(0).at("fingerprint"), "00000000000000aa");
    EXPECT_EQ(body.at("alerts").at(0).at("labels").at("alertname"), "ToolsDBReplicationLag");
  }
  EXPECT_NE(alice.id, feed.id);
  const json::value alice_body = json::parse(alice.body);
  EXPECT_EQ(alice_body.at("target"),
            (json::object{{"type", "schedule"}, {"name", "oncall"}, {"person", "alice"}}));
  EXPECT_EQ(json::parse(feed.body).at("target"),
            (json::object{{"type", "receiver"}, {"name", "cloud-feed"}}));

  const std::string m = metrics_text();
  EXPECT_TRUE(has_line(m, R"(alertrouter_webhooks_received_total{result="accepted"} 1)"));
  EXPECT_TRUE(
      has_line(m, R"(alertrouter_alerts_received_total{ownership="owned",status="firing"} 1)"));
  EXPECT_TRUE(has_line(m, "alertrouter_incidents_opened_total 1"));
  EXPECT_TRUE(has_line(m, "alertrouter_incidents_open 1"));
}

// A resend of the same bytes is decoded from its first reading; one whose annotation changed,
// from the first's index (routing/json_index_cache.h); the counters say which.
TEST_F(service_test, resends_are_decoded_from_their_groups_last_body) {
  // A group key of its own: the decoder's memory of bodies is per thread, shared across tests.
  const std::string body = webhook_body({tools_page()}, "{}:{alertname=\"resend-metrics\"}");
  std::string changed = body;
  const std::string summary_text = "something is wrong";
  changed.replace(changed.find(summary_text), summary_text.size(), "something is still wrong");
  ASSERT_NE(changed, body);

  ASSERT_EQ(send(body).status, 200u);
  std::string m = metrics_text();
  EXPECT_TRUE(has_line(m, R"(alertrouter_webhook_bodies_indexed_total{how="first_stage"} 1)"));
  EXPECT_TRUE(has_line(m, R"(alertrouter_webhook_bodies_indexed_total{how="same"} 0)"));

  const http_response r = send(body);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, summary(1, 0, 1, 0, 0, 0));
  m = metrics_text();
  EXPECT_TRUE(has_line(m, R"(alertrouter_webhook_bodies_indexed_total{how="same"} 1)"));
  EXPECT_TRUE(has_line(m, "alertrouter_webhook_bodies_replayed_total 1"));

  const http_response r2 = send(changed);
  ASSERT_EQ(r2.status, 200u) << r2.body;
  EXPECT_EQ(r2.body, summary(1, 0, 1, 0, 0, 0));
  m = metrics_text();
  EXPECT_TRUE(has_line(m, R"(alertrouter_webhook_bodies_indexed_total{how="derived"} 1)"));
  EXPECT_TRUE(has_line(m, R"(alertrouter_webhook_bodies_indexed_total{how="first_stage"} 1)"));
  EXPECT_TRUE(has_line(m, "alertrouter_alerts_duplicate_total 2"));
}

TEST_F(service_test, resend_is_a_duplicate_and_sends_nothing) {
  const std::string body = webhook_body({tools_page()});
  ASSERT_EQ(send(body).status, 200u);
  out_.submitted.clear();

  const http_response r = send(body);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, summary(1, 0, 1, 0, 0, 0));
  EXPECT_THAT(out_.submitted, IsEmpty());
  EXPECT_EQ(incidents_.open_count(), 1u);
  EXPECT_TRUE(has_line(metrics_text(), "alertrouter_alerts_duplicate_total 1"));
}

TEST_F(service_test, resolve_goes_once_to_each_paged_target) {
  ASSERT_EQ(send(webhook_body({tools_page()})).status, 200u);
  out_.submitted.clear();

  const http_response r = send(webhook_body({resolved(tools_page())}));
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, summary(1, 0, 0, 1, 0, 2));
  ASSERT_THAT(out_.submitted, SizeIs(2));
  std::multiset<std::string> urls;
  for (const delivery_request& d : out_.submitted) {
    urls.insert(d.url);
    EXPECT_EQ(d.kind, notification_kind::resolve);
    EXPECT_EQ(d.channel, "webhook");
    const json::value body = json::parse(d.body);
    EXPECT_EQ(d.id, json::value_to<std::string>(body.at("id")));
    EXPECT_THAT(d.id, MatchesRegex("resolve-1-[0-9a-f]{16}"));
    EXPECT_EQ(body.at("kind"), "resolve");
    EXPECT_EQ(body.at("alerts").at(0).at("status"), "resolved");
  }
  EXPECT_EQ(urls, (std::multiset<std::string>{std::string(kAliceUrl), std::string(kFeedUrl)}));
  EXPECT_EQ(incidents_.open_count(), 0u);

  // The same resolve again changes nothing and sends nothing.
  out_.submitted.clear();
  EXPECT_EQ(send(webhook_body({resolved(tools_page())})).body, summary(1, 0, 1, 0, 0, 0));
  EXPECT_THAT(out_.submitted, IsEmpty());
}

TEST_F(service_test, user_project_page_goes_to_the_project_only) {
  const http_response r = send(webhook_body({user_page()}));
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, summary(1, 1, 0, 0, 0, 1));
  ASSERT_THAT(out_.submitted, SizeIs(1));
  const delivery_request& d = out_.submitted[0];
  EXPECT_EQ(d.url, kProjectUrl);
  EXPECT_EQ(d.kind, notification_kind::page);
  const json::value body = json::parse(d.body);
  EXPECT_EQ(body.at("target"), (json::object{{"type", "project"}, {"name", "deployment-prep"}}));
  EXPECT_EQ(body.at("ownership"), "user");
  EXPECT_EQ(d.id, json::value_to<std::string>(body.at("id")));

  // Its resolve goes to the project too, and still never to alice.
  out_.submitted.clear();
  ASSERT_EQ(send(webhook_body({resolved(user_page())})).body, summary(1, 0, 0, 1, 0, 1));
  ASSERT_THAT(out_.submitted, SizeIs(1));
  EXPECT_EQ(out_.submitted[0].url, kProjectUrl);
  EXPECT_EQ(out_.submitted[0].kind, notification_kind::resolve);
}

TEST_F(service_test, a_project_label_cannot_forge_a_log_line) {
  // A user project is named by the alert's own label, and its target is logged (here: no
  // contact for it): quoted, on one line, whatever the label holds.
  test_alert a;
  a.labels = {{"alertname", "Odd"},
              {"project", "nocontacts\nlevel=error msg=\"FORGED line\"\r"},
              {"severity", "page"}};
  const http_response r = send(webhook_body({a}));
  ASSERT_EQ(r.status, 200u) << r.body;
  bool mentioned = false;
  for (const auto& [level, msg] : logs_) {
    EXPECT_EQ(msg.find_first_of("\r\n"), std::string::npos) << msg;
    if (msg.find("FORGED") != std::string::npos) {
      mentioned = true;
      EXPECT_NE(msg.find("target=\"project:nocontacts level=error msg=\\\"FORGED line\\\" \""),
                std::string::npos)
          << msg;
    }
  }
  EXPECT_TRUE(mentioned) << "the project target was not logged at all";
}

TEST_F(service_test, an_email_only_receiver_is_counted_as_dropped_and_the_rest_is_sent) {
  // An owned alert with an unexpected severity falls through to `fallback`: the feed (webhook)
  // and cloud-admin-ml (e-mail only, not deliverable yet).
  test_alert a;
  a.labels = {{"alertname", "Odd"}, {"project", "admin"}, {"severity", "unusual"}};
  const http_response r = send(webhook_body({a}));
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, summary(1, 1, 0, 0, 0, 2));
  ASSERT_THAT(out_.submitted, SizeIs(1));
  EXPECT_EQ(out_.submitted[0].url, kFeedUrl);
  const std::string m = metrics_text();
  EXPECT_TRUE(has_line(
      m, R"(alertrouter_notifications_total{channel="email",kind="page",result="dropped"} 1)"));
  bool logged_error = false;
  for (const auto& [level, msg] : logs_) logged_error = logged_error || level == log_level::error;
  EXPECT_TRUE(logged_error);
}

TEST_F(service_test, a_target_without_any_contact_is_counted_as_no_contact) {
  // Allowed with a warning by the loader: a receiver nobody can be notified at.
  write_config(
      replaced(kConfig, "cloud-admin-ml: {email: cloud-admin@example.org}", "cloud-admin-ml: {}"));
  test_alert a;
  a.labels = {{"alertname", "Odd"}, {"project", "admin"}, {"severity", "unusual"}};
  const http_response r = send(webhook_body({a}));
  ASSERT_EQ(r.status, 200u) << r.body;
  ASSERT_THAT(out_.submitted, SizeIs(1));
  EXPECT_EQ(out_.submitted[0].url, kFeedUrl);
  const std::string m = metrics_text();
  EXPECT_TRUE(has_line(m, R"(alertrouter_no_contact_total{target_type="receiver"} 1)"));
  // Not mistaken for an IRC (or e-mail) notification.
  EXPECT_THAT(m, Not(HasSubstr("channel=\"irc\"")));
  EXPECT_THAT(m, Not(HasSubstr("channel=\"email\"")));
}

TEST_F(service_test, a_body_without_alerts_is_accepted_and_does_nothing) {
  const http_response r = send(R"({"version":"4","alerts":[]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, summary(0, 0, 0, 0, 0, 0));
  EXPECT_THAT(out_.submitted, IsEmpty());
}

// --- webhook: refused bodies -----------------------------------------------------------------

TEST_F(service_test, malformed_json_is_400_and_changes_nothing) {
  const std::string good = webhook_body({tools_page()});
  ASSERT_EQ(send(good).status, 200u);
  out_.submitted.clear();
  const std::size_t warned = warnings();

  // Truncated JSON: the first alert of a new incident, cut off.
  const std::string other = webhook_body({user_page()});
  const http_response r = send(other.substr(0, other.size() - 3));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.content_type, "application/json");
  const json::value body = parsed(r);
  ASSERT_TRUE(body.as_object().contains("error")) << r.body;
  EXPECT_FALSE(json::value_to<std::string>(body.at("error")).empty());

  EXPECT_THAT(out_.submitted, IsEmpty());
  EXPECT_EQ(incidents_.open_count(), 1u);
  EXPECT_EQ(incidents_.size(), 1u);
  EXPECT_GT(warnings(), warned);
  // The table still knows the first incident: a resend is a duplicate.
  EXPECT_EQ(send(good).body, summary(1, 0, 1, 0, 0, 0));
  EXPECT_THAT(out_.submitted, IsEmpty());

  EXPECT_TRUE(
      has_line(metrics_text(), R"(alertrouter_webhooks_received_total{result="bad_request"} 1)"));
}

TEST_F(service_test, a_wrong_type_is_400_naming_the_field_and_changes_nothing) {
  // A valid new alert first, then one whose severity is a number: nothing of it may be applied.
  const std::string body =
      R"({"version":"4","alerts":[)"
      R"({"status":"firing","labels":{"alertname":"A","project":"tools","severity":"page"},)"
      R"("startsAt":"2026-03-04T11:00:00Z"},)"
      R"({"status":"firing","labels":{"alertname":"B","severity":5},)"
      R"("startsAt":"2026-03-04T11:00:00Z"}]})";
  const http_response r = send(body);
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(parsed(r), (json::object{{"error", "alerts[1].labels.severity: expected a string"}}));
  EXPECT_THAT(out_.submitted, IsEmpty());
  EXPECT_EQ(incidents_.open_count(), 0u);
  EXPECT_EQ(incidents_.size(), 0u);

  const http_response missing = send(R"({"version":"4"})");
  EXPECT_EQ(missing.status, 400u);
  EXPECT_THAT(json::value_to<std::string>(parsed(missing).at("error")), HasSubstr("alerts"));

  const http_response version = send(R"({"version":"3","alerts":[]})");
  EXPECT_EQ(version.status, 400u);
  EXPECT_THAT(json::value_to<std::string>(parsed(version).at("error")), HasSubstr("version"));

  EXPECT_TRUE(
      has_line(metrics_text(), R"(alertrouter_webhooks_received_total{result="bad_request"} 3)"));
}

TEST_F(service_test, hostile_bodies_are_refused_without_crashing) {
  const std::vector<std::string> bodies = {
      "",
      "null",
      "[]",
      std::string("{\"alerts\":[\0]}", 13),
      "{\"alerts\":[{\"status\":\"firing\",\"labels\":{\"a\":\"\xff\"},"
      "\"startsAt\":\"2026-03-04T11:00:00Z\"}]}",
      std::string(100, '['),
      R"({"alerts":[{"status":"firing","labels":{},"startsAt":"2026-03-04T11:00:00Z","fingerprint":"xyz"}]})",
  };
  for (const std::string& b : bodies) {
    const http_response r = send(b);
    EXPECT_EQ(r.status, 400u) << b;
    EXPECT_NO_THROW(parsed(r)) << b;
  }
  EXPECT_THAT(out_.submitted, IsEmpty());
  EXPECT_EQ(incidents_.size(), 0u);
}

// --- webhook: authentication ------------------------------------------------------------------

class service_auth_test : public service_test {
 protected:
  void SetUp() override {
    service_test::SetUp();
    token_path_ = write("token", "s3cret-token\n");
    write_config(std::string(kConfig) + "auth:\n  bearer_token_file: " + token_path_ + "\n");
  }
  std::string token_path_;
};

TEST_F(service_auth_test, missing_header_is_401_with_www_authenticate) {
  const http_response r = send(webhook_body({tools_page()}));
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(header_of(r, "WWW-Authenticate"), "Bearer");
  EXPECT_EQ(parsed(r), (json::object{{"error", "missing or wrong bearer token"}}));
  EXPECT_THAT(out_.submitted, IsEmpty());
  EXPECT_EQ(incidents_.size(), 0u);
  EXPECT_TRUE(
      has_line(metrics_text(), R"(alertrouter_webhooks_received_total{result="unauthorized"} 1)"));
}

TEST_F(service_auth_test, wrong_tokens_and_schemes_are_401) {
  for (const std::string value :
       {"Bearer wrong", "Bearer s3cret-toke", "Bearer s3cret-token2", "Bearer S3CRET-TOKEN",
        "Basic s3cret-token", "Bearer", "Bearer ", "s3cret-token", "Bearers3cret-token", ""}) {
    const http_response r = send(webhook_body({tools_page()}), {{"Authorization", value}});
    EXPECT_EQ(r.status, 401u) << "Authorization: " << value;
    EXPECT_EQ(header_of(r, "WWW-Authenticate"), "Bearer") << value;
  }
  EXPECT_THAT(out_.submitted, IsEmpty());
  EXPECT_EQ(incidents_.size(), 0u);
  EXPECT_TRUE(
      has_line(metrics_text(), R"(alertrouter_webhooks_received_total{result="unauthorized"} 10)"));
}

// A client can cause a "webhook refused" line per request: past a burst they are counted, not
// written; every refusal is still counted as such.
TEST_F(service_auth_test, a_flood_of_refusals_writes_a_burst_of_warn_lines_and_counts_the_rest) {
  constexpr int kRequests = 150;
  const auto began = std::chrono::steady_clock::now();
  for (int i = 0; i < kRequests; ++i) ASSERT_EQ(send(webhook_body({tools_page()})).status, 401u);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  const std::size_t written = warnings();
  EXPECT_GE(written, 100u);  // the burst: 10 per second, 10 seconds' worth
  EXPECT_LE(static_cast<double>(written), 100 + 10 * seconds + 1);
  const std::string text = metrics_text();
  EXPECT_TRUE(has_line(text, "alertrouter_webhook_warnings_suppressed_total " +
                                 std::to_string(kRequests - static_cast<int>(written))))
      << text;
  EXPECT_TRUE(has_line(text, R"(alertrouter_webhooks_received_total{result="unauthorized"} 150)"));
}

TEST_F(service_auth_test, right_token_is_200_and_the_scheme_is_case_insensitive) {
  // The token file's trailing newline is not part of the token.
  const http_response r =
      send(webhook_body({tools_page()}), {{"Authorization", "Bearer s3cret-token"}});
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body, summary(1, 1, 0, 0, 0, 2));

  for (const char* scheme : {"bearer", "BEARER", "bEaReR"}) {
    const http_response again = send(webhook_body({tools_page()}),
                                     {{"authorization", std::string(scheme) + " s3cret-token"}});
    EXPECT_EQ(again.status, 200u) << scheme;
    EXPECT_EQ(again.body, summary(1, 0, 1, 0, 0, 0)) << scheme;
  }
}

TEST_F(service_auth_test, a_reload_takes_the_new_token) {
  ASSERT_EQ(send(webhook_body({tools_page()}), {{"Authorization", "Bearer s3cret-token"}}).status,
            200u);
  write("token", "  other-token \n");
  ASSERT_TRUE(svc().reload().ok);
  EXPECT_EQ(send(webhook_body({tools_page()}), {{"Authorization", "Bearer s3cret-token"}}).status,
            401u);
  EXPECT_EQ(send(webhook_body({tools_page()}), {{"Authorization", "Bearer other-token"}}).status,
            200u);
}

// POST /-/reload rereads the configuration: with a token configured it needs it too, and a
// refused reload rereads nothing.
TEST_F(service_auth_test, reload_endpoint_needs_the_token) {
  svc();
  write_config(replaced(kConfig, "members: [alice]", "members: [bob]") +
               "auth:\n  bearer_token_file: " + token_path_ + "\n");
  http_request req = get("/-/reload");
  req.method = "POST";
  for (const std::string value : {"", "Bearer wrong", "Basic s3cret-token"}) {
    req.headers = {{"Authorization", value}};
    const http_response r = svc().reload_endpoint(req);
    EXPECT_EQ(r.status, 401u) << value;
    EXPECT_EQ(header_of(r, "WWW-Authenticate"), "Bearer");
    EXPECT_EQ(parsed(r), (json::object{{"error", "missing or wrong bearer token"}}));
  }
  // Nothing was reread: no reload counted.
  EXPECT_TRUE(has_line(metrics_text(), R"(alertrouter_config_reloads_total{result="success"} 0)"))
      << metrics_text();
  // Not a webhook: not counted as one.
  EXPECT_TRUE(
      has_line(metrics_text(), R"(alertrouter_webhooks_received_total{result="unauthorized"} 0)"));

  req.headers = {{"Authorization", "Bearer s3cret-token"}};
  const http_response ok = svc().reload_endpoint(req);
  EXPECT_EQ(ok.status, 200u) << ok.body;
  EXPECT_TRUE(has_line(metrics_text(), R"(alertrouter_config_reloads_total{result="success"} 1)"));
}

// The check the daemon runs on a webhook's header, before its body is read: the same verdict as
// the handler's, and a refusal counted as an unauthorized webhook.
TEST_F(service_auth_test, the_header_check_refuses_and_counts_before_the_body) {
  http_request head = get("/webhook/alertmanager");
  head.method = "POST";
  const std::optional<http_response> refused = svc().check_webhook_header(head);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 401u);
  EXPECT_EQ(header_of(*refused, "WWW-Authenticate"), "Bearer");
  EXPECT_TRUE(
      has_line(metrics_text(), R"(alertrouter_webhooks_received_total{result="unauthorized"} 1)"));
  head.headers = {{"Authorization", "Bearer s3cret-token"}};
  EXPECT_FALSE(svc().check_webhook_header(head).has_value());
  EXPECT_FALSE(svc().check_token(head).has_value());
  EXPECT_TRUE(
      has_line(metrics_text(), R"(alertrouter_webhooks_received_total{result="unauthorized"} 1)"));
}

TEST_F(service_auth_test, an_empty_token_file_refuses_the_configuration) {
  for (const std::string_view contents : {"", " \n\t\r\n"}) {
    write("token", contents);
    const auto loaded = load_config(config_path_);
    ASSERT_TRUE(std::holds_alternative<std::vector<std::string>>(loaded));
    EXPECT_THAT(
        std::get<std::vector<std::string>>(loaded),
        ElementsAre(config_path_ + ": auth.bearer_token_file: " + token_path_ + " is empty"));
  }
}

TEST_F(service_auth_test, a_missing_token_file_refuses_the_configuration) {
  std::filesystem::remove(token_path_);
  const auto loaded = load_config(config_path_);
  ASSERT_TRUE(std::holds_alternative<std::vector<std::string>>(loaded));
  EXPECT_THAT(std::get<std::vector<std::string>>(loaded),
              ElementsAre(config_path_ + ": auth.bearer_token_file: cannot read " + token_path_ +
                          ": No such file or directory"));
}

TEST_F(service_test, without_auth_no_header_is_needed) {
  EXPECT_EQ(send(webhook_body({tools_page()})).status, 200u);
  http_request req = get("/-/reload");
  req.method = "POST";
  EXPECT_FALSE(svc().check_token(req).has_value());
  EXPECT_FALSE(svc().check_webhook_header(req).has_value());
  EXPECT_EQ(svc().reload_endpoint(req).status, 200u);
}

// --- webhook: backpressure and shutdown -------------------------------------------------------

TEST_F(service_test, a_full_delivery_queue_is_503_with_retry_after_and_nothing_is_applied) {
  out_.pending_count = 10;  // limits.max_pending
  const http_response r = send(webhook_body({tools_page()}));
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(header_of(r, "Retry-After"), "5");
  EXPECT_EQ(parsed(r), (json::object{{"error",
                                      "delivery backlog full (10 notifications pending); retry "
                                      "later"}}));
  EXPECT_THAT(out_.submitted, IsEmpty());
  EXPECT_EQ(incidents_.size(), 0u);

  out_.pending_count = 11;
  EXPECT_EQ(send(webhook_body({tools_page()})).status, 503u);
  EXPECT_TRUE(
      has_line(metrics_text(), R"(alertrouter_webhooks_received_total{result="unavailable"} 2)"));

  // One below the limit: taken, and the incident is new (the refused bodies left no trace).
  out_.pending_count = 9;
  const http_response ok = send(webhook_body({tools_page()}));
  EXPECT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.body, summary(1, 1, 0, 0, 0, 2));
}

TEST_F(service_test, shutdown_refuses_webhooks_and_readiness_but_stays_healthy) {
  http_request h = get("/-/healthy");
  http_request rd = get("/-/ready");
  EXPECT_EQ(svc().ready(rd).status, 200u);
  EXPECT_EQ(svc().ready(rd).body, "OK\n");

  svc().begin_shutdown();
  const http_response r = send(webhook_body({tools_page()}));
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(header_of(r, "Retry-After"), "5");
  EXPECT_EQ(parsed(r), (json::object{{"error", "shutting down"}}));
  EXPECT_THAT(out_.submitted, IsEmpty());
  EXPECT_EQ(incidents_.size(), 0u);

  EXPECT_EQ(svc().ready(rd).status, 503u);
  const http_response healthy = svc().healthy(h);
  EXPECT_EQ(healthy.status, 200u);
  EXPECT_EQ(healthy.body, "OK\n");
}

// --- /api/v1/oncall ---------------------------------------------------------------------------

json::object on_call_row(std::string_view person, json::value layer, bool is_override,
                         json::value since, json::value until) {
  return json::object{{"schedule", "oncall"},
                      {"person", person.empty() ? json::value(nullptr) : json::value(person)},
                      {"layer", std::move(layer)},
                      {"override", is_override},
                      {"since", std::move(since)},
                      {"until", std::move(until)}};
}

TEST_F(service_test, oncall_defaults_to_now) {
  const http_response r = oncall();
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(parsed(r),
            (json::object{{"at", kNow},
                          {"schedules", json::array{on_call_row("alice", "primary", false,
                                                                "2026-01-07T16:00:00Z",
                                                                "2026-03-10T00:00:00Z")}}}));
  // Other parameters are ignored.
  EXPECT_EQ(parsed(oncall("schedule=x&y")), parsed(r));
}

TEST_F(service_test, oncall_at_a_utc_time) {
  const http_response r = oncall("at=2026-03-10T12:00:00Z");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(parsed(r),
            (json::object{
                {"at", "2026-03-10T12:00:00Z"},
                {"schedules", json::array{on_call_row("bob", nullptr, true, "2026-03-10T00:00:00Z",
                                                      "2026-03-11T00:00:00Z")}}}));
  // Before the layer starts nobody is on call, since more than a year back.
  EXPECT_EQ(parsed(oncall("x=1&at=2026-01-01T00:00:00Z")),
            (json::object{{"at", "2026-01-01T00:00:00Z"},
                          {"schedules", json::array{on_call_row("", nullptr, false, nullptr,
                                                                "2026-01-07T16:00:00Z")}}}));
}

TEST_F(service_test, oncall_at_a_time_with_a_percent_encoded_offset) {
  // 00:30+01:00 is 23:30 UTC the day before: alice, not bob (who starts at 00:00 UTC).
  const http_response r = oncall("at=2026-03-10T00%3A30%3A00%2B01%3A00");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(parsed(r),
            (json::object{{"at", "2026-03-09T23:30:00Z"},
                          {"schedules", json::array{on_call_row("alice", "primary", false,
                                                                "2026-01-07T16:00:00Z",
                                                                "2026-03-10T00:00:00Z")}}}));
  EXPECT_EQ(parsed(oncall("at=2026-03-10T00:30:00%2B01:00")), parsed(r));
}

TEST_F(service_test, oncall_with_a_bad_time_is_400) {
  const json::value want =
      json::object{{"error", "at: expected an RFC 3339 time, e.g. 2026-12-02T16:00:00Z"}};
  // A raw '+' in a query means a space, so an unencoded offset is not a time either.
  for (const char* q :
       {"at=yesterday", "at=", "at", "at=2026-03-10", "at=2026-13-01T00:00:00Z",
        "at=2026-03-10T00:30:00+01:00", "at=%", "at=%2", "at=%ZZ", "at=2026-03-10T12%3G00:00Z"}) {
    const http_response r = oncall(q);
    EXPECT_EQ(r.status, 400u) << q << " -> " << r.body;
    EXPECT_EQ(parsed(r), want) << q;
  }
}

TEST_F(service_test, oncall_far_from_now_answers_without_bounds) {
  // Nobody before the layer starts, alice ever after; both hold beyond the year searched.
  for (const char* at : {"0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z"}) {
    const http_response r = oncall(std::string("at=") + at);
    ASSERT_EQ(r.status, 200u) << at;
    EXPECT_EQ(parsed(r),
              (json::object{
                  {"at", at},
                  {"schedules", json::array{on_call_row("", nullptr, false, nullptr, nullptr)}}}))
        << at;
  }
  for (const char* at : {"2200-01-01T00:00:00Z", "9999-12-31T23:59:59Z"}) {
    const http_response r = oncall(std::string("at=") + at);
    ASSERT_EQ(r.status, 200u) << at;
    EXPECT_EQ(
        parsed(r),
        (json::object{
            {"at", at},
            {"schedules", json::array{on_call_row("alice", "primary", false, nullptr, nullptr)}}}))
        << at;
  }
}

// --- /api/v1/incidents ------------------------------------------------------------------------

TEST_F(service_test, incidents_lists_the_open_incident_with_its_pages) {
  http_request req = get("/api/v1/incidents");
  EXPECT_EQ(parsed(svc().incidents(req)),
            (json::object{{"open", 0}, {"incidents", json::array{}}}));

  ASSERT_EQ(send(webhook_body({tools_page()})).status, 200u);
  const http_response r = svc().incidents(req);
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "application/json");
  const json::value v = parsed(r);
  EXPECT_EQ(v.at("open"), 1);
  ASSERT_EQ(v.at("incidents").as_array().size(), 1u);
  const json::value& inc = v.at("incidents").at(0);
  EXPECT_EQ(inc.at("id"), 1);
  EXPECT_EQ(inc.at("fingerprint"), "00000000000000aa");
  EXPECT_EQ(inc.at("alertname"), "ToolsDBReplicationLag");
  EXPECT_EQ(inc.at("ownership"), "owned");
  EXPECT_EQ(inc.at("starts_at"), "2026-03-04T11:55:00Z");
  EXPECT_EQ(inc.at("opened_at"), json::value(kNow));
  EXPECT_EQ(inc.at("labels").at("project"), "tools");
  EXPECT_EQ(inc.at("labels").at("ownership"), "owned");
  EXPECT_EQ(inc.at("annotations"), (json::object{{"summary", "something is wrong"}}));
  EXPECT_EQ(inc.at("routes"), (json::array{"owned-page"}));
  EXPECT_EQ(
      inc.at("paged"),
      (json::array{json::object{{"type", "schedule"}, {"name", "oncall"}, {"person", "alice"}},
                   json::object{{"type", "receiver"}, {"name", "cloud-feed"}}}));

  ASSERT_EQ(send(webhook_body({resolved(tools_page())})).status, 200u);
  EXPECT_EQ(parsed(svc().incidents(req)),
            (json::object{{"open", 0}, {"incidents", json::array{}}}));
}

// --- reload -----------------------------------------------------------------------------------

TEST_F(service_test, reload_takes_a_changed_configuration_for_the_next_webhook) {
  ASSERT_EQ(send(webhook_body({tools_page()})).status, 200u);  // pages alice
  EXPECT_TRUE(
      has_line(metrics_text(), R"(alertrouter_oncall{person="alice",schedule="oncall"} 1)"));

  write_config(replaced(kConfig, "members: [alice]", "members: [bob]"));
  const reload_outcome o = svc().reload();
  EXPECT_TRUE(o.ok);
  EXPECT_THAT(o.errors, IsEmpty());

  const json::value who = parsed(oncall());
  EXPECT_EQ(who.at("schedules").at(0).at("person"), "bob");
  EXPECT_TRUE(has_line(metrics_text(), R"(alertrouter_oncall{person="bob",schedule="oncall"} 1)"));
  EXPECT_TRUE(has_line(metrics_text(), "alertrouter_config_last_reload_successful 1"));
  EXPECT_TRUE(has_line(metrics_text(), R"(alertrouter_config_reloads_total{result="success"} 1)"));

  // A new page goes to bob now...
  out_.submitted.clear();
  test_alert other = tools_page();
  other.labels["alertname"] = "ToolsNfsDown";
  other.fingerprint = "00000000000000cc";
  ASSERT_EQ(send(webhook_body({other})).body, summary(1, 1, 0, 0, 0, 2));
  std::multiset<std::string> urls;
  for (const delivery_request& d : out_.submitted) urls.insert(d.url);
  EXPECT_EQ(urls, (std::multiset<std::string>{std::string(kBobUrl), std::string(kFeedUrl)}));

  // ...while the first incident's resolve still goes to alice, who was paged for it.
  out_.submitted.clear();
  ASSERT_EQ(send(webhook_body({resolved(tools_page())})).body, summary(1, 0, 0, 1, 0, 2));
  urls.clear();
  for (const delivery_request& d : out_.submitted) urls.insert(d.url);
  EXPECT_EQ(urls, (std::multiset<std::string>{std::string(kAliceUrl), std::string(kFeedUrl)}));
}

TEST_F(service_test, reload_of_an_unknown_key_keeps_the_running_configuration) {
  svc();
  const std::string bad = std::string(kConfig) + "colour: red\n";
  write_config(bad);
  const reload_outcome o = svc().reload();
  EXPECT_FALSE(o.ok);
  ASSERT_THAT(o.errors, SizeIs(1));
  EXPECT_THAT(o.errors[0], HasSubstr(config_path_ + ":" + std::to_string(line_count(bad)) +
                                     ":1: unknown key 'colour'"));

  // The old configuration still routes.
  const http_response r = send(webhook_body({tools_page()}));
  ASSERT_EQ(r.status, 200u);
  std::multiset<std::string> urls;
  for (const delivery_request& d : out_.submitted) urls.insert(d.url);
  EXPECT_EQ(urls, (std::multiset<std::string>{std::string(kAliceUrl), std::string(kFeedUrl)}));

  const std::string m = metrics_text();
  EXPECT_TRUE(has_line(m, "alertrouter_config_last_reload_successful 0"));
  EXPECT_TRUE(has_line(m, R"(alertrouter_config_reloads_total{result="failure"} 1)"));

  // The endpoint says the same, with the errors.
  http_request req = get("/-/reload");
  req.method = "POST";
  const http_response e = svc().reload_endpoint(req);
  EXPECT_EQ(e.status, 400u);
  EXPECT_EQ(e.content_type, "application/json");
  const json::value v = parsed(e);
  EXPECT_EQ(v.at("status"), "failure");
  EXPECT_EQ(v.at("error"), "the new configuration was refused; the running one is kept");
  ASSERT_EQ(v.at("errors").as_array().size(), 1u);
  EXPECT_EQ(v.at("errors").at(0), json::value(o.errors[0]));
  EXPECT_TRUE(has_line(metrics_text(), R"(alertrouter_config_reloads_total{result="failure"} 2)"));

  // Fixed again: the endpoint takes it.
  write_config(kConfig);
  const http_response fixed = svc().reload_endpoint(req);
  EXPECT_EQ(fixed.status, 200u);
  EXPECT_EQ(parsed(fixed), (json::object{{"status", "success"}}));
  EXPECT_TRUE(has_line(metrics_text(), "alertrouter_config_last_reload_successful 1"));
}

TEST_F(service_test, reload_of_broken_yaml_keeps_the_running_configuration) {
  svc();
  write_config(replaced(kConfig, "members: [alice]", "members: [bob"));
  const reload_outcome o = svc().reload();
  EXPECT_FALSE(o.ok);
  ASSERT_THAT(o.errors, Not(IsEmpty()));
  for (const std::string& e : o.errors) {
    EXPECT_TRUE(e.rfind(config_path_ + ":", 0) == 0) << e;
    EXPECT_THAT(e.substr(config_path_.size()), MatchesRegex(":[0-9]+:[0-9]+: .+")) << e;
  }
  EXPECT_EQ(parsed(oncall()).at("schedules").at(0).at("person"), "alice");
  ASSERT_EQ(send(webhook_body({tools_page()})).status, 200u);
  ASSERT_THAT(out_.submitted, SizeIs(2));
  EXPECT_TRUE(has_line(metrics_text(), "alertrouter_config_last_reload_successful 0"));

  // A file that is gone is refused too.
  std::filesystem::remove(config_path_);
  const reload_outcome gone = svc().reload();
  EXPECT_FALSE(gone.ok);
  ASSERT_THAT(gone.errors, Not(IsEmpty()));
  EXPECT_THAT(gone.errors[0], HasSubstr(config_path_));
  EXPECT_EQ(parsed(oncall()).at("schedules").at(0).at("person"), "alice");
}

TEST_F(service_test, reload_keeps_the_backpressure_limit_until_restart) {
  // limits take effect at the next restart: the delivery queue was sized for the limit the
  // daemon started with, so a reload must not let more webhooks in.
  out_.pending_count = 10;
  ASSERT_EQ(send(webhook_body({tools_page()})).status, 503u);
  write_config(replaced(kConfig, "max_pending: 10", "max_pending: 1000"));
  const std::size_t warned = warnings();
  ASSERT_TRUE(svc().reload().ok);
  EXPECT_GT(warnings(), warned);  // "take effect only after a restart"
  EXPECT_EQ(send(webhook_body({tools_page()})).status, 503u);
  out_.pending_count = 9;
  EXPECT_EQ(send(webhook_body({tools_page()})).status, 200u);
}

// --- delivery observer ------------------------------------------------------------------------

TEST_F(service_test, delivery_outcomes_are_counted) {
  delivery_request req;
  req.id = "page-1-0123456789abcdef";
  req.url = std::string(kAliceUrl);
  req.channel = "webhook";
  req.kind = notification_kind::page;

  svc().on_attempt(req, 1);
  svc().on_retry(req, 1, "HTTP 503", 250ms);
  svc().on_attempt(req, 2);
  svc().on_done(req, delivery_result::delivered, 2, 1500ms, "HTTP 200", std::nullopt);

  delivery_request resolve = req;
  resolve.kind = notification_kind::resolve;
  svc().on_attempt(resolve, 1);
  svc().on_done(resolve, delivery_result::gave_up, 1, 20s, "connect: Connection refused",
                std::nullopt);

  const std::string m = metrics_text();
  EXPECT_TRUE(has_line(
      m, R"(alertrouter_notifications_total{channel="webhook",kind="page",result="delivered"} 1)"));
  EXPECT_TRUE(has_line(
      m,
      R"(alertrouter_notifications_total{channel="webhook",kind="resolve",result="gave_up"} 1)"));
  EXPECT_TRUE(has_line(
      m, R"(alertrouter_notifications_total{channel="webhook",kind="page",result="gave_up"} 0)"));
  EXPECT_TRUE(has_line(m, R"(alertrouter_delivery_attempts_total{channel="webhook"} 3)"));
  EXPECT_TRUE(has_line(m, R"(alertrouter_delivery_retries_total{channel="webhook"} 1)"));
  // Only the delivered one is a latency sample.
  EXPECT_TRUE(has_line(m, R"(alertrouter_delivery_latency_seconds_count{channel="webhook"} 1)"));
  EXPECT_TRUE(has_line(m, R"(alertrouter_delivery_latency_seconds_sum{channel="webhook"} 1.5)"));

  bool failure_logged = false;
  for (const auto& [level, msg] : logs_)
    failure_logged = failure_logged || level == log_level::error;
  EXPECT_TRUE(failure_logged);
}

// The fields of one logfmt line (key=value, the value bare, or double-quoted with only quotes
// and backslashes escaped), or nullopt when the line is not that: a stray quote, a value that
// runs into the next key, a repeated key.
std::optional<std::map<std::string, std::string>> logfmt_fields(std::string_view line) {
  std::map<std::string, std::string> out;
  std::size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ') {
      ++i;
      continue;
    }
    const std::size_t eq = line.find('=', i);
    if (eq == std::string_view::npos || eq == i) return std::nullopt;
    const std::string key(line.substr(i, eq - i));
    if (key.find_first_of(" \"") != std::string::npos) return std::nullopt;
    i = eq + 1;
    std::string value;
    if (i < line.size() && line[i] == '"') {
      for (++i;; ++i) {
        if (i >= line.size()) return std::nullopt;
        if (line[i] == '"') break;
        if (line[i] == '\\') {
          if (++i >= line.size() || (line[i] != '"' && line[i] != '\\')) return std::nullopt;
        }
        value += line[i];
      }
      ++i;
      if (i < line.size() && line[i] != ' ') return std::nullopt;
    } else {
      const std::size_t end = std::min(line.find(' ', i), line.size());
      value = std::string(line.substr(i, end - i));
      if (value.find_first_of("\"=") != std::string::npos) return std::nullopt;
      i = end;
    }
    if (!out.emplace(key, std::move(value)).second) return std::nullopt;
  }
  return out;
}

TEST(log_value, bare_tokens_stay_bare_and_everything_else_is_quoted_and_escaped) {
  EXPECT_EQ(log_value("webhook"), "webhook");
  EXPECT_EQ(log_value("127.0.0.1:9000"), "127.0.0.1:9000");
  EXPECT_EQ(log_value(""), R"("")");
  EXPECT_EQ(log_value("connect: Connection refused"), R"("connect: Connection refused")");
  EXPECT_EQ(log_value("a=b"), R"("a=b")");
  EXPECT_EQ(log_value(R"(detail="x" a\b)"), R"("detail=\"x\" a\\b")");
  EXPECT_EQ(log_value("two\nlines\t"), R"("two lines ")");
  EXPECT_EQ(log_value("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  const auto fields = logfmt_fields("msg=x detail=" + log_value(R"(id=1 detail="y \ z")"));
  ASSERT_TRUE(fields.has_value());
  EXPECT_EQ(fields->at("detail"), R"(id=1 detail="y \ z")");
}

// A failed delivery is one flat logfmt line per event, at warn (a retry) or error (given up),
// whatever the transport's error text holds.
TEST_F(service_test, delivery_log_lines_are_flat_logfmt) {
  delivery_request req;
  req.id = "page-1-0123456789abcdef";
  req.url = "not a url";
  req.channel = "webhook";
  req.kind = notification_kind::page;
  const std::string nested = R"(webhook delivery attempt failed id=x detail="connect: refused")";
  svc().on_retry(req, 1, nested, 250ms);
  svc().on_done(req, delivery_result::gave_up, 2, 20s, nested, std::nullopt);
  req.url = std::string(kAliceUrl);
  svc().on_done(req, delivery_result::delivered, 3, 1s, "HTTP 200", std::nullopt);

  ASSERT_THAT(logs_, SizeIs(3));
  EXPECT_EQ(logs_[0].first, log_level::warn);
  EXPECT_EQ(logs_[1].first, log_level::error);
  EXPECT_EQ(logs_[2].first, log_level::info);
  for (const auto& [level, line] : logs_) {
    const auto fields = logfmt_fields(line);
    ASSERT_TRUE(fields.has_value()) << line;
    EXPECT_EQ(fields->at("id"), req.id) << line;
  }
  const auto retry = *logfmt_fields(logs_[0].second);
  EXPECT_EQ(retry.at("reason"), nested);
  EXPECT_EQ(retry.at("attempts"), "1");
  EXPECT_EQ(retry.at("destination"), "(unusable URL)");
  const auto failed = *logfmt_fields(logs_[1].second);
  EXPECT_EQ(failed.at("detail"), nested);
  EXPECT_EQ(failed.at("result"), "gave_up");
  EXPECT_EQ(logfmt_fields(logs_[2].second)->at("destination"), "127.0.0.1:9000");
}

// --- /metrics ---------------------------------------------------------------------------------

TEST_F(service_test, metrics_page_has_the_prometheus_text_content_type) {
  http_request req = get("/metrics");
  const http_response r = svc().metrics_page(req);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_TRUE(has_line(r.body, R"(alertrouter_oncall{person="alice",schedule="oncall"} 1)"));
  EXPECT_TRUE(has_line(r.body, R"(alertrouter_schedules_nobody_on_call{schedule="oncall"} 0)"));
  EXPECT_TRUE(has_line(r.body, "alertrouter_incidents_open 0"));
}

TEST_F(service_test, metrics_follow_the_pinned_clock) {
  now_ = instant("2026-03-10T06:00:00Z");  // bob's override
  EXPECT_TRUE(has_line(metrics_text(), R"(alertrouter_oncall{person="bob",schedule="oncall"} 1)"));
  now_ = instant("2026-01-01T00:00:00Z");  // before the layer starts
  EXPECT_TRUE(
      has_line(metrics_text(), R"(alertrouter_schedules_nobody_on_call{schedule="oncall"} 1)"));
}

TEST_F(service_test, metrics_outliving_the_service_do_not_call_into_it) {
  svc();
  svc_.reset();
  // The service registered a scrape-time source on the metrics; it must be gone with it.
  const std::string m = stats_.render();
  EXPECT_THAT(m, Not(HasSubstr("alertrouter_oncall{")));
}

// --- durable mode: a real SQLite store behind a real group committer ---------------------------
//
// The test thread plays the io thread: the committer's done callbacks and the service's posted
// tasks are queued, and run() runs them there, as main.cpp posts them to the io_context.
class durable_service_test : public service_test {
 protected:
  durable_service_test() = default;
  explicit durable_service_test(std::size_t max_incidents) : service_test(max_incidents) {}

  void SetUp() override {
    service_test::SetUp();
    state_dir_ = dir_ / "state";
    start_committer();
    svc().enable_durability(durable_state{
        committer_.get(), [this](std::function<void()> task) { queue(std::move(task)); },
        [this](std::function<void()> task) { queue(std::move(task)); }});
  }
  void TearDown() override {
    if (committer_) committer_->stop();
    service_test::TearDown();
  }

  void start_committer() {
    store::group_committer::options o;
    o.hold_after_failure = true;
    committer_ = std::make_unique<store::group_committer>(
        store::open_sqlite_store(state_dir_),
        [this](std::uint64_t ticket, std::exception_ptr error) {
          queue([this, ticket, error] { svc().committed(ticket, error); });
        },
        o);
  }

  void queue(std::function<void()> task) {
    const std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
    cv_.notify_all();
  }

  // Runs queued tasks until `done` holds (checked between tasks); false after 5 s without it.
  bool run_until(const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (!done()) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        if (!cv_.wait_until(lock, until, [this] { return !tasks_.empty(); })) return false;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
    return true;
  }

  // Sends a webhook in durable mode; the answer lands in the returned slot when it comes.
  std::shared_ptr<std::optional<http_response>> send_async(std::string body) {
    auto slot = std::make_shared<std::optional<http_response>>();
    http_request r = post(std::move(body));
    svc().webhook(r, [slot](http_response res) { *slot = std::move(res); });
    return slot;
  }

  store::recovered_state stored() {
    committer_->stop();
    committer_.reset();
    auto st = store::open_sqlite_store(state_dir_);
    return st->load();
  }

  // The stored incident of fingerprint `hex`, or nullptr.
  static const routing::incident* stored_incident(const store::recovered_state& st,
                                                  std::string_view hex) {
    for (const routing::incident& inc : st.incidents) {
      if (routing::to_hex(inc.fp) == hex) return &inc;
    }
    return nullptr;
  }

  // The incident table a restart builds from `st`, as main.cpp does, holding `max_incidents`.
  static std::unique_ptr<routing::memory_incident_table> restarted(const store::recovered_state& st,
                                                                   std::size_t max_incidents) {
    auto table =
        std::make_unique<routing::memory_incident_table>(std::chrono::hours(24), max_incidents);
    table->reserve_ids(st.next_incident_id);
    for (const routing::incident& inc : st.incidents) table->restore(inc);
    return table;
  }

  std::filesystem::path state_dir_;
  std::unique_ptr<store::group_committer> committer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
};

TEST_F(durable_service_test, the_answer_and_the_delivery_wait_for_the_commit) {
  const auto answer = send_async(webhook_body({tools_page()}));
  EXPECT_FALSE(answer->has_value());  // not before the change is on disk
  EXPECT_THAT(out_.submitted, IsEmpty());
  ASSERT_TRUE(run_until([&] { return answer->has_value(); }));
  EXPECT_EQ((*answer)->status, 200u);
  EXPECT_EQ((*answer)->body, summary(1, 1, 0, 0, 0, 2));
  ASSERT_THAT(out_.submitted, SizeIs(2));

  // What the 200 promised is in the store: the incident, and both notifications, pending.
  const store::recovered_state st = stored();
  ASSERT_EQ(st.incidents.size(), 1u);
  EXPECT_EQ(routing::to_hex(st.incidents[0].fp), "00000000000000aa");
  ASSERT_EQ(st.incidents[0].paged.size(), 2u);
  ASSERT_EQ(st.pending.size(), 2u);
  std::set<std::string> stored_ids{st.pending[0].id, st.pending[1].id};
  EXPECT_EQ(stored_ids, (std::set<std::string>{out_.submitted[0].id, out_.submitted[1].id}));
  EXPECT_EQ(st.pending[0].body, out_.submitted[0].body);
}

// Notifications waiting for their commit are not in the delivery yet, but count against
// limits.max_pending all the same: commits in flight must not let the backlog grow past it.
TEST_F(durable_service_test, notifications_waiting_for_their_commit_count_against_max_pending) {
  out_.pending_count = 8;                                       // of max_pending 10
  const auto first = send_async(webhook_body({tools_page()}));  // 2 notifications, committing
  ASSERT_FALSE(first->has_value());
  const auto second = send_async(webhook_body({user_page()}));
  ASSERT_TRUE(second->has_value());  // refused at once
  EXPECT_EQ((*second)->status, 503u);
  EXPECT_NE((*second)->body.find("delivery backlog full (10 notifications pending)"),
            std::string::npos)
      << (*second)->body;

  // Once committed, the two are the delivery's to count (here: still 8, a fake).
  ASSERT_TRUE(run_until([&] { return first->has_value(); }));
  EXPECT_EQ((*first)->status, 200u);
  ASSERT_THAT(out_.submitted, SizeIs(2));
  const auto third = send_async(webhook_body({user_page()}));
  ASSERT_TRUE(run_until([&] { return third->has_value(); }));
  EXPECT_EQ((*third)->status, 200u);
}

TEST_F(durable_service_test, a_repeat_waits_only_for_the_commit_it_rests_on_and_writes_nothing) {
  const auto other = send_async(webhook_body({user_page()}));
  ASSERT_TRUE(run_until([&] { return other->has_value(); }));

  const auto first = send_async(webhook_body({tools_page()}));
  const auto repeat = send_async(webhook_body({tools_page()}));
  EXPECT_FALSE(repeat->has_value());  // it rests on the first, not yet durable
  // A repeat of an incident already on disk does not wait for commits of other incidents.
  const auto unrelated = send_async(webhook_body({user_page()}));
  ASSERT_TRUE(unrelated->has_value());
  EXPECT_EQ((*unrelated)->body, summary(1, 0, 1, 0, 0, 0));
  // Nor does a body naming both wait for anything but the commit in flight.
  const auto both = send_async(webhook_body({user_page(), tools_page()}));
  EXPECT_FALSE(both->has_value());
  ASSERT_TRUE(run_until([&] { return first->has_value() && repeat->has_value(); }));
  EXPECT_EQ((*repeat)->body, summary(1, 0, 1, 0, 0, 0));
  ASSERT_TRUE(both->has_value());
  // Once it is durable, a repeat is answered at once.
  const auto later = send_async(webhook_body({tools_page()}));
  ASSERT_TRUE(later->has_value());
  EXPECT_EQ((*later)->status, 200u);
  EXPECT_EQ(committer_->stats().sets_committed, 2u);
}

TEST_F(durable_service_test, a_failed_commit_is_503_and_changes_nothing) {
  // Another connection holds the write lock: the commit fails (busy) as on an I/O error.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(store::sqlite_store_file(state_dir_).c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  const auto failed = send_async(webhook_body({tools_page()}));
  // A repeat sent before the commit's outcome rests on it: a duplicate only if the opening lasts.
  const auto repeat = send_async(webhook_body({tools_page()}));
  ASSERT_TRUE(run_until([&] { return failed->has_value() && repeat->has_value(); }));
  EXPECT_EQ((*failed)->status, 503u);
  EXPECT_EQ(header_of(**failed, "Retry-After"), "5");
  EXPECT_THAT((*failed)->body, HasSubstr("state store unavailable"));
  EXPECT_EQ((*repeat)->status, 503u);
  EXPECT_THAT(out_.submitted, IsEmpty());
  // The counters say what Alertmanager saw: two 503s, nothing accepted, opened or received.
  {
    const std::string m = metrics_text();
    EXPECT_TRUE(has_line(m, R"(alertrouter_webhooks_received_total{result="unavailable"} 2)"));
    EXPECT_TRUE(has_line(m, R"(alertrouter_webhooks_received_total{result="accepted"} 0)"));
    EXPECT_TRUE(
        has_line(m, R"(alertrouter_alerts_received_total{ownership="owned",status="firing"} 0)"));
    EXPECT_TRUE(has_line(m, "alertrouter_incidents_opened_total 0"));
    EXPECT_TRUE(has_line(m, "alertrouter_alerts_duplicate_total 0"));
  }

  // Until the table is rebuilt from the store, webhooks are refused...
  const auto meanwhile = send_async(webhook_body({user_page()}));
  ASSERT_TRUE(meanwhile->has_value());
  EXPECT_EQ((*meanwhile)->status, 503u);
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  // ...and after it the failed body's incident is gone: Alertmanager's retry opens it anew.
  ASSERT_TRUE(run_until([&] {
    for (const auto& [level, m] : logs_) {
      if (m.find("incident table rebuilt") != std::string::npos) return true;
    }
    return false;
  }));
  EXPECT_EQ(incidents_.size(), 0u);
  const auto retried = send_async(webhook_body({tools_page()}));
  ASSERT_TRUE(run_until([&] { return retried->has_value(); }));
  EXPECT_EQ((*retried)->status, 200u);
  EXPECT_EQ((*retried)->body, summary(1, 1, 0, 0, 0, 2));
  EXPECT_THAT(out_.submitted, SizeIs(2));
  // Alertmanager's retry is the one acceptance and the one opening: nothing counted twice.
  const std::string m = metrics_text();
  EXPECT_TRUE(has_line(m, R"(alertrouter_webhooks_received_total{result="unavailable"} 3)"));
  EXPECT_TRUE(has_line(m, R"(alertrouter_webhooks_received_total{result="accepted"} 1)"));
  EXPECT_TRUE(
      has_line(m, R"(alertrouter_alerts_received_total{ownership="owned",status="firing"} 1)"));
  EXPECT_TRUE(has_line(m, "alertrouter_incidents_opened_total 1"));
  EXPECT_TRUE(has_line(m, "alertrouter_alerts_duplicate_total 0"));
}

// --- durable mode with a full incident table (dedup.max_incidents) ------------------------------

class full_table_durable_service_test : public durable_service_test {
 protected:
  full_table_durable_service_test() : durable_service_test(2) {}
};

// Evictions made outside a webhook (restoring a store into a full table, as at start or after a
// failed commit) reach /metrics at the next scrape, not only with the next webhook.
TEST_F(full_table_durable_service_test, evictions_by_a_restore_show_at_the_next_scrape) {
  svc();
  for (std::uint64_t id = 1; id <= 3; ++id) {
    routing::incident inc;
    inc.id = id;
    inc.fp = routing::fingerprint{id};
    incidents_.restore(std::move(inc));
  }
  ASSERT_EQ(incidents_.evictions(), 1u);
  EXPECT_TRUE(has_line(metrics_text(), "alertrouter_incident_evictions_total 1"));
  EXPECT_TRUE(has_line(metrics_text(), "alertrouter_incidents_open 2"));
}

TEST_F(full_table_durable_service_test, a_close_evicted_by_a_later_alert_of_the_body_is_stored) {
  const auto opened = send_async(webhook_body({tools_page()}));
  ASSERT_TRUE(run_until([&] { return opened->has_value(); }));
  ASSERT_EQ((*opened)->status, 200u);

  // The resolve closes aa; bb fills the table; cc evicts aa, its one closed incident.
  const auto body =
      send_async(webhook_body({resolved(tools_page()), user_page(), tools_warning()}));
  ASSERT_TRUE(run_until([&] { return body->has_value(); }));
  EXPECT_EQ((*body)->status, 200u);
  EXPECT_EQ((*body)->body, summary(3, 2, 0, 1, 0, 4));
  EXPECT_EQ(incidents_.find(*routing::parse_fingerprint("aa")), nullptr);
  EXPECT_EQ(incidents_.open_count(), 2u);

  // The close reached the store: the incident is not kept open there...
  const store::recovered_state st = stored();
  const routing::incident* aa = stored_incident(st, "00000000000000aa");
  ASSERT_NE(aa, nullptr);
  ASSERT_FALSE(aa->open());
  EXPECT_EQ(
      *aa->closed_at,
      routing::timestamp(std::chrono::floor<std::chrono::microseconds>(now_.time_since_epoch())));
  EXPECT_EQ(aa->paged.size(), 2u);  // alice and the feed, who got the resolve
  // ...so a restart, even one with room for every stored incident, does not reopen it.
  const auto after = restarted(st, 1000);
  ASSERT_NE(after->find(aa->fp), nullptr);
  EXPECT_FALSE(after->find(aa->fp)->open());
  EXPECT_EQ(after->open_count(), 2u);
}

// Pins the choice made in service::webhook: an incident opened and evicted by the same body is
// stored open, with its pages, as one evicted by a later body stays stored; a restart with the
// same max_incidents evicts it again and restores exactly the table the daemon had.
TEST_F(full_table_durable_service_test, an_incident_opened_and_evicted_by_one_body_is_stored_open) {
  const auto body = send_async(webhook_body({tools_page(), user_page(), tools_warning()}));
  ASSERT_TRUE(run_until([&] { return body->has_value(); }));
  EXPECT_EQ((*body)->status, 200u);
  EXPECT_EQ((*body)->body, summary(3, 3, 0, 0, 0, 3));
  const routing::fingerprint aa_fp = *routing::parse_fingerprint("aa");
  EXPECT_EQ(incidents_.find(aa_fp), nullptr);  // cc evicted it, the oldest open one
  std::vector<std::uint64_t> open_in_memory;
  incidents_.for_each_open([&](const routing::incident& inc) { open_in_memory.push_back(inc.id); });

  const store::recovered_state st = stored();
  ASSERT_EQ(st.incidents.size(), 3u);
  const routing::incident* aa = stored_incident(st, "00000000000000aa");
  ASSERT_NE(aa, nullptr);
  EXPECT_TRUE(aa->open());
  EXPECT_EQ(aa->paged.size(), 2u);  // alice and the feed: its page is in the outbox
  EXPECT_THAT(aa->routes, ElementsAre("owned-page"));
  EXPECT_EQ(st.pending.size(), 3u);

  const auto after = restarted(st, 2);
  EXPECT_EQ(after->find(aa_fp), nullptr);
  std::vector<std::uint64_t> open_after;
  after->for_each_open([&](const routing::incident& inc) { open_after.push_back(inc.id); });
  EXPECT_EQ(open_after, open_in_memory);
}

TEST(split_listen, parses_host_and_port) {
  std::string host;
  std::uint16_t port = 0;
  EXPECT_TRUE(split_listen("127.0.0.1:9595", host, port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 9595);
  EXPECT_TRUE(split_listen("[::1]:0", host, port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  for (const char* bad :
       {"", ":80", "host", "host:", "host:65536", "host:-1", "host:8x", "[]:80"}) {
    EXPECT_FALSE(split_listen(bad, host, port)) << bad;
  }
}

}  // namespace
}  // namespace alertrouter::daemon
