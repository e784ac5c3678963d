#include "daemon/notification_json.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "routing/alert.h"
#include "routing/time.h"
#include "routing/webhook.h"

namespace alertrouter::daemon {
namespace {

using namespace std::chrono_literals;
using config::target_type;
using routing::alert;
using routing::alert_status;
using routing::label_set;
using routing::notification;
using routing::notification_kind;
using routing::timestamp;

timestamp utc(int y, unsigned mo, unsigned d, int h = 0, int min = 0) {
  return timestamp{date::sys_days{date::year{y} / date::month{mo} / date::day{d}}} +
         std::chrono::hours(h) + std::chrono::minutes(min);
}

// An alert from CephClusterInError in wmcs-alert-rules.yaml as Prometheus would fire it, after
// the classifier has annotated `ownership`.
alert ceph_error(std::string instance, alert_status status = alert_status::firing) {
  alert a;
  a.status = status;
  a.labels = label_set{{"alertname", "CephClusterInError"},
                       {"severity", "page"},
                       {"team", "wmcs"},
                       {"service", "ceph,cloudvps"},
                       {"site", "eqiad"},
                       {"instance", std::move(instance)},
                       {"ownership", "owned"}};
  a.annotations = label_set{
      {"summary", "#page Ceph cluster in eqiad is in error status"},
      {"description", "eqiad Ceph cluster is unable to serve traffic, all VMs could be unusable."},
      {"runbook",
       "https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/CephClusterInError"}};
  a.starts_at = utc(2026, 1, 7, 15, 55) + 123456us;
  if (status == alert_status::resolved) a.ends_at = utc(2026, 1, 7, 16, 20);
  a.generator_url = "https://prometheus-eqiad.wikimedia.org/cloud/graph?g0.expr=ceph_health";
  a.fp = routing::compute_fingerprint(a.labels);
  return a;
}

// A minimal alert with the given name and labels (fingerprint computed).
alert named(std::string name, std::vector<label_set::label> extra = {}) {
  alert a;
  extra.emplace_back("alertname", std::move(name));
  a.labels = label_set(std::move(extra));
  a.starts_at = utc(2026, 3, 1, 12);
  a.fp = routing::compute_fingerprint(a.labels);
  return a;
}

notification make(notification_kind kind, routing::paged_target target, std::vector<alert> alerts,
                  std::vector<std::string> routes = {"wmcs-page"}) {
  notification n;
  n.kind = kind;
  n.target = std::move(target);
  n.reach.webhook = "http://hooks.example/alice";
  n.routes = std::move(routes);
  for (std::size_t i = 0; i < alerts.size(); ++i) n.incident_ids.push_back(100 + i);
  n.alerts = std::move(alerts);
  return n;
}

routing::paged_target oncall() { return {target_type::schedule, "wmcs-primary", "alice"}; }

notification_context context() {
  notification_context ctx;
  ctx.id = "page-100-0123456789abcdef";
  ctx.group_key = "{}/{team=\"wmcs\"}:{alertname=\"CephClusterInError\"}";
  ctx.external_url = "https://alerts.wikimedia.org";
  return ctx;
}

boost::json::object parse(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);  // also rejects invalid UTF-8
  EXPECT_FALSE(ec) << ec.message() << " in " << body;
  EXPECT_TRUE(v.is_object()) << body;
  return v.is_object() ? v.as_object() : boost::json::object{};
}

std::string str(const boost::json::value& v) {
  EXPECT_TRUE(v.is_string()) << boost::json::serialize(v);
  return v.is_string() ? std::string(v.as_string()) : std::string();
}

std::set<std::string> keys(const boost::json::object& o) {
  std::set<std::string> out;
  for (const auto& kv : o) out.emplace(kv.key());
  return out;
}

std::map<std::string, std::string> as_map(const boost::json::value& v) {
  std::map<std::string, std::string> out;
  for (const auto& kv : v.as_object()) out.emplace(kv.key(), str(kv.value()));
  return out;
}

std::map<std::string, std::string> as_map(const label_set& labels) {
  return {labels.begin(), labels.end()};
}

std::string summary_of(const notification& n, const notification_context& ctx = context()) {
  return str(parse(encode_notification(n, ctx)).at("summary"));
}

TEST(NotificationJson, RealisticPageCarriesEveryField) {
  const notification n =
      make(notification_kind::page, oncall(),
           {ceph_error("cloudcephmon1001:9283"), ceph_error("cloudcephmon1002:9283")},
           {"wmcs-page", "wmcs-primary-copy"});
  const notification_context ctx = context();
  const boost::json::object o = parse(encode_notification(n, ctx));

  EXPECT_EQ(keys(o), (std::set<std::string>{"version", "id", "kind", "route", "routes", "target",
                                            "ownership", "severity", "summary", "group_key",
                                            "external_url", "alerts"}));
  EXPECT_EQ(str(o.at("version")), "1");
  EXPECT_EQ(str(o.at("id")), ctx.id);
  EXPECT_EQ(str(o.at("kind")), "page");
  EXPECT_EQ(str(o.at("route")), "wmcs-page");
  ASSERT_TRUE(o.at("routes").is_array());
  ASSERT_EQ(o.at("routes").as_array().size(), 2u);
  EXPECT_EQ(str(o.at("routes").as_array()[0]), "wmcs-page");
  EXPECT_EQ(str(o.at("routes").as_array()[1]), "wmcs-primary-copy");
  EXPECT_EQ(as_map(o.at("target")),
            (std::map<std::string, std::string>{
                {"type", "schedule"}, {"name", "wmcs-primary"}, {"person", "alice"}}));
  EXPECT_EQ(str(o.at("ownership")), "owned");
  EXPECT_EQ(str(o.at("severity")), "page");
  EXPECT_EQ(str(o.at("summary")), "[PAGE] CephClusterInError (2 alerts)");
  EXPECT_EQ(str(o.at("group_key")), ctx.group_key);
  EXPECT_EQ(str(o.at("external_url")), ctx.external_url);

  const boost::json::array& alerts = o.at("alerts").as_array();
  ASSERT_EQ(alerts.size(), n.alerts.size());
  for (std::size_t i = 0; i < alerts.size(); ++i) {
    SCOPED_TRACE(i);
    const boost::json::object& a = alerts[i].as_object();
    EXPECT_EQ(keys(a), (std::set<std::string>{"status", "labels", "annotations", "startsAt",
                                              "endsAt", "generatorURL", "fingerprint"}));
    EXPECT_EQ(str(a.at("status")), "firing");
    EXPECT_EQ(as_map(a.at("labels")), as_map(n.alerts[i].labels));
    EXPECT_EQ(as_map(a.at("annotations")), as_map(n.alerts[i].annotations));
    EXPECT_EQ(str(a.at("startsAt")), "2026-01-07T15:55:00.123456Z");
    EXPECT_EQ(routing::parse_rfc3339(str(a.at("startsAt"))), n.alerts[i].starts_at);
    EXPECT_EQ(str(a.at("endsAt")), "0001-01-01T00:00:00Z");  // firing: unset
    EXPECT_EQ(str(a.at("generatorURL")), n.alerts[i].generator_url);
    EXPECT_EQ(str(a.at("fingerprint")), routing::to_hex(n.alerts[i].fp));
    EXPECT_EQ(routing::parse_fingerprint(str(a.at("fingerprint"))),
              routing::compute_fingerprint(n.alerts[i].labels));
  }
  // Alerts stay in notification order (parallel to incident ids).
  EXPECT_EQ(str(alerts[0].at("labels").at("instance")), "cloudcephmon1001:9283");
  EXPECT_EQ(str(alerts[1].at("labels").at("instance")), "cloudcephmon1002:9283");
}

// The fields come in the documented order (the README's example), which receivers reading the
// body as a stream, and people reading it, see; a set of keys would not notice a reordering.
TEST(NotificationJson, FieldsInTheDocumentedOrder) {
  notification_context ctx = context();
  ctx.sent_at = routing::timestamp{std::chrono::seconds(1'767'801'600)};
  const notification n =
      make(notification_kind::page, oncall(), {ceph_error("cloudcephmon1001:9283")});
  const boost::json::object o = parse(encode_notification(n, ctx));
  std::vector<std::string> order;
  for (const auto& kv : o) order.emplace_back(kv.key());
  EXPECT_EQ(order, (std::vector<std::string>{"version", "id", "kind", "route", "routes", "target",
                                             "ownership", "severity", "summary", "group_key",
                                             "external_url", "sent_at", "alerts"}));
  std::vector<std::string> alert_order;
  for (const auto& kv : o.at("alerts").as_array().at(0).as_object()) {
    alert_order.emplace_back(kv.key());
  }
  EXPECT_EQ(alert_order, (std::vector<std::string>{"status", "labels", "annotations", "startsAt",
                                                   "endsAt", "generatorURL", "fingerprint"}));
  std::vector<std::string> target_order;
  for (const auto& kv : o.at("target").as_object()) target_order.emplace_back(kv.key());
  EXPECT_EQ(target_order, (std::vector<std::string>{"type", "name", "person"}));
}

TEST(NotificationJson, ResolveKind) {
  const notification n = make(notification_kind::resolve, oncall(),
                              {ceph_error("cloudcephmon1001:9283", alert_status::resolved)});
  const boost::json::object o = parse(encode_notification(n, context()));
  EXPECT_EQ(str(o.at("kind")), "resolve");
  EXPECT_EQ(str(o.at("summary")), "[RESOLVED] #page Ceph cluster in eqiad is in error status");
  const boost::json::object& a = o.at("alerts").as_array().at(0).as_object();
  EXPECT_EQ(str(a.at("status")), "resolved");
  EXPECT_EQ(str(a.at("endsAt")), "2026-01-07T16:20:00Z");
  // A resolve still goes to the person who was paged.
  EXPECT_EQ(str(o.at("target").at("person")), "alice");
}

TEST(NotificationJson, PersonOnlyForScheduleTargets) {
  struct row {
    routing::paged_target target;
    std::string type;
    bool has_person;
  };
  const std::vector<row> rows = {
      {{target_type::schedule, "wmcs-primary", "bob"}, "schedule", true},
      // A stray person on a non-schedule target is not sent.
      {{target_type::receiver, "wmcs-irc", "bob"}, "receiver", false},
      {{target_type::receiver, "wmcs-irc", ""}, "receiver", false},
      {{target_type::project, "tools", ""}, "project", false},
  };
  for (const row& r : rows) {
    SCOPED_TRACE(r.type + "/" + r.target.name);
    const boost::json::object o = parse(
        encode_notification(make(notification_kind::page, r.target, {named("A")}), context()));
    const boost::json::object& t = o.at("target").as_object();
    EXPECT_EQ(str(t.at("type")), r.type);
    EXPECT_EQ(str(t.at("name")), r.target.name);
    EXPECT_EQ(t.contains("person"), r.has_person);
    if (r.has_person) {
      EXPECT_EQ(str(t.at("person")), r.target.person);
    }
  }
}

TEST(NotificationJson, SeverityIsTheHighestAmongAlerts) {
  struct row {
    std::vector<std::string> severities;  // "" means no severity label
    std::string expected;
  };
  const std::vector<row> rows = {
      {{"warning", "page", "critical"}, "page"},
      {{"critical", "warning"}, "critical"},
      {{"task", "warning", "info"}, "warning"},
      {{"info", "task"}, "task"},
      {{"", "info"}, "info"},
      {{"bogus", "info"}, "info"},
      {{"", "bogus"}, "bogus"},
      {{"odd", "bogus"}, "odd"},         // equal rank: the first alert's
      {{"Page", "warning"}, "warning"},  // case-sensitive: "Page" is just some other value
      {{"", ""}, ""},
      {{}, ""},
  };
  for (const row& r : rows) {
    std::vector<alert> alerts;
    for (std::size_t i = 0; i < r.severities.size(); ++i) {
      std::vector<label_set::label> extra = {{"instance", std::to_string(i)}};
      if (!r.severities[i].empty()) extra.emplace_back("severity", r.severities[i]);
      alerts.push_back(named("A", extra));
    }
    SCOPED_TRACE(r.expected);
    const boost::json::object o =
        parse(encode_notification(make(notification_kind::page, oncall(), alerts), context()));
    EXPECT_EQ(str(o.at("severity")), r.expected);
  }
}

TEST(NotificationJson, OwnershipIsTheFirstAlertsWhenMixed) {
  const boost::json::object mixed = parse(encode_notification(
      make(notification_kind::page, oncall(),
           {named("A", {{"ownership", "user"}}), named("B", {{"ownership", "owned"}})}),
      context()));
  EXPECT_EQ(str(mixed.at("ownership")), "user");
  const boost::json::object absent =
      parse(encode_notification(make(notification_kind::page, oncall(), {named("A")}), context()));
  EXPECT_EQ(str(absent.at("ownership")), "");
}

TEST(NotificationJson, SummaryRules) {
  alert with_summary = named("ToolsNFSDown", {{"project", "tools"}});
  with_summary.annotations = label_set{{"summary", "NFS on tools is down"}};
  alert nameless;
  nameless.labels = label_set{{"job", "node"}};
  nameless.fp = routing::compute_fingerprint(nameless.labels);

  struct row {
    std::string what;
    notification_kind kind;
    std::vector<alert> alerts;
    std::string expected;
  };
  const std::vector<row> rows = {
      {"one alert uses its summary annotation",
       notification_kind::page,
       {with_summary},
       "[PAGE] NFS on tools is down tools"},
      {"one alert without summary uses alertname",
       notification_kind::page,
       {named("CephClusterInError")},
       "[PAGE] CephClusterInError"},
      {"one alert without either uses the fingerprint",
       notification_kind::resolve,
       {nameless},
       "[RESOLVED] alert " + routing::to_hex(nameless.fp)},
      {"same name, shared project",
       notification_kind::page,
       {named("CephClusterInError", {{"project", "tools"}, {"instance", "a"}}),
        named("CephClusterInError", {{"project", "tools"}, {"instance", "b"}})},
       "[PAGE] CephClusterInError (2 alerts) tools"},
      {"several alerts ignore summary annotations",
       notification_kind::page,
       {with_summary, named("ToolsNFSDown", {{"project", "tools"}, {"instance", "b"}})},
       "[PAGE] ToolsNFSDown (2 alerts) tools"},
      {"projects differ: no scope",
       notification_kind::page,
       {named("A", {{"project", "tools"}}), named("A", {{"project", "admin"}})},
       "[PAGE] A (2 alerts)"},
      {"one alert lacks the project: no scope",
       notification_kind::page,
       {named("A", {{"project", "tools"}}), named("A")},
       "[PAGE] A (2 alerts)"},
      {"distinct names in first-seen order",
       notification_kind::resolve,
       {named("B"), named("A"), named("B", {{"instance", "2"}})},
       "[RESOLVED] B, A (3 alerts)"},
      {"more than three names",
       notification_kind::page,
       {named("A"), named("B"), named("C"), named("D"), named("E"), named("A", {{"i", "2"}})},
       "[PAGE] A, B, C +2 more (6 alerts)"},
      {"no alerts", notification_kind::page, {}, "[PAGE] (no alerts)"},
  };
  for (const row& r : rows) {
    SCOPED_TRACE(r.what);
    EXPECT_EQ(summary_of(make(r.kind, oncall(), r.alerts)), r.expected);
  }
}

TEST(NotificationJson, SummaryProjectLabelComesFromContext) {
  const notification n = make(notification_kind::page, oncall(),
                              {named("A", {{"tenant", "deployment-prep"}, {"project", "tools"}})});
  notification_context ctx = context();
  ctx.project_label = "tenant";
  EXPECT_EQ(summary_of(n, ctx), "[PAGE] A deployment-prep");
  ctx.project_label = "";
  EXPECT_EQ(summary_of(n, ctx), "[PAGE] A");
}

TEST(NotificationJson, SummaryIsOneLine) {
  alert a = named("A", {{"project", "to\nols"}});
  a.annotations = label_set{{"summary", "  Ceph\r\n\tcluster   down\x01 \x7f now \n"}};
  EXPECT_EQ(summary_of(make(notification_kind::page, oncall(), {a})),
            "[PAGE] Ceph cluster down now to ols");
}

TEST(NotificationJson, LongSummaryIsCutAtACodePointBoundary) {
  // 3-byte code points (U+20AC) after one ASCII byte: byte 197 is mid-sequence.
  std::string long_text = "x";
  for (int i = 0; i < 100; ++i) long_text += "\xE2\x82\xAC";
  alert a = named("A");
  a.annotations = label_set{{"summary", long_text}};
  const std::string s = summary_of(make(notification_kind::page, oncall(), {a}));
  const std::string prefix = "[PAGE] ";
  ASSERT_EQ(s.substr(0, prefix.size()), prefix);
  const std::string title = s.substr(prefix.size());
  EXPECT_LE(title.size(), 200u);
  const std::string ellipsis = "\xE2\x80\xA6";
  ASSERT_GE(title.size(), ellipsis.size());
  EXPECT_EQ(title.substr(title.size() - ellipsis.size()), ellipsis);
  // Everything before the ellipsis is a prefix of the original made of whole code points.
  const std::string kept = title.substr(0, title.size() - ellipsis.size());
  EXPECT_EQ(long_text.substr(0, kept.size()), kept);
  EXPECT_EQ((kept.size() - 1) % 3, 0u);
  EXPECT_GT(kept.size(), 190u);  // cut near the limit, not far before it
  // parse() inside summary_of already rejected invalid UTF-8; a short one is not cut.
  a.annotations = label_set{{"summary", long_text.substr(0, 1 + 3 * 50)}};
  EXPECT_EQ(summary_of(make(notification_kind::page, oncall(), {a})),
            prefix + long_text.substr(0, 1 + 3 * 50));
}

TEST(NotificationJson, SpecialCharactersRoundTrip) {
  const std::vector<std::string> values = {
      "say \"hi\"",
      "back\\slash",
      "line1\nline2\r\n",
      "tab\there",
      std::string("nul\0byte", 8),
      "ctl \x01\x1f\x7f",
      "unicode: Zürich — 東京 🚨",
      "separators \xE2\x80\xA8\xE2\x80\xA9",
      "</script><script>alert(1)</script>",
      "",
  };
  std::vector<label_set::label> labels;
  std::vector<label_set::label> annotations;
  for (std::size_t i = 0; i < values.size(); ++i) {
    labels.emplace_back("l" + std::to_string(i), values[i]);
    annotations.emplace_back("a\"" + std::to_string(i) + "\n", values[i]);  // odd names too
  }
  alert a = named("Weird \"name\"\n", labels);
  a.annotations = label_set(annotations);
  a.generator_url = "http://prom/graph?g0.expr=up{job=\"x\"}&x=\xC3\xA9";

  notification n = make(notification_kind::page, {target_type::schedule, "sch \"1\"", "Zoë\n"}, {a},
                        {"r\"oute\\"});
  notification_context ctx = context();
  ctx.id = "page-1-\"quoted\"";
  ctx.group_key = "{}:{alertname=\"Weird \\\"name\\\"\\n\"}";
  ctx.external_url = "http://am/#/alerts?receiver=\xE2\x9C\x93";

  const boost::json::object o = parse(encode_notification(n, ctx));
  EXPECT_EQ(str(o.at("id")), ctx.id);
  EXPECT_EQ(str(o.at("group_key")), ctx.group_key);
  EXPECT_EQ(str(o.at("external_url")), ctx.external_url);
  EXPECT_EQ(str(o.at("route")), "r\"oute\\");
  EXPECT_EQ(str(o.at("target").at("name")), "sch \"1\"");
  EXPECT_EQ(str(o.at("target").at("person")), "Zoë\n");
  const boost::json::object& out = o.at("alerts").as_array().at(0).as_object();
  EXPECT_EQ(as_map(out.at("labels")), as_map(a.labels));
  EXPECT_EQ(as_map(out.at("annotations")), as_map(a.annotations));
  EXPECT_EQ(str(out.at("generatorURL")), a.generator_url);
}

TEST(NotificationJson, SentAtOnlyWhenSet) {
  const notification n = make(notification_kind::page, oncall(), {named("A")});
  notification_context ctx = context();
  EXPECT_FALSE(parse(encode_notification(n, ctx)).contains("sent_at"));
  ctx.sent_at = utc(2026, 1, 7, 16) + 500ms;
  EXPECT_EQ(str(parse(encode_notification(n, ctx)).at("sent_at")), "2026-01-07T16:00:00.500000Z");
}

TEST(NotificationJson, ZeroEndsAtFromAlertmanagerPassesThrough) {
  // As Alertmanager posts a firing alert: endsAt is Go's zero time.
  const std::string body = R"({"version":"4","status":"firing","alerts":[{"status":"firing",
      "labels":{"alertname":"CephClusterInError","severity":"page","team":"wmcs"},
      "annotations":{},"startsAt":"2026-01-07T15:55:00.987654321+01:00",
      "endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/x",
      "fingerprint":"00000000000000ab"}]})";
  auto decoded = routing::decode_webhook(body);
  ASSERT_TRUE(std::holds_alternative<routing::webhook>(decoded));
  const routing::webhook& hook = std::get<routing::webhook>(decoded);
  const boost::json::object o =
      parse(encode_notification(make(notification_kind::page, oncall(), hook.alerts), context()));
  const boost::json::object& a = o.at("alerts").as_array().at(0).as_object();
  EXPECT_EQ(str(a.at("endsAt")), "0001-01-01T00:00:00Z");
  EXPECT_EQ(str(a.at("startsAt")), "2026-01-07T14:55:00.987654Z");
  EXPECT_EQ(str(a.at("fingerprint")), "00000000000000ab");
}

TEST(NotificationJson, LargeNotificationCarriesEveryAlert) {
  std::vector<alert> alerts;
  for (int i = 0; i < 300; ++i) {
    alert a = ceph_error("cloudcephosd" + std::to_string(1000 + i) + ":9100");
    alerts.push_back(std::move(a));
  }
  const notification n = make(notification_kind::page, oncall(), alerts);
  const boost::json::object o = parse(encode_notification(n, context()));
  const boost::json::array& out = o.at("alerts").as_array();
  ASSERT_EQ(out.size(), 300u);
  for (std::size_t i = 0; i < out.size(); ++i) {
    ASSERT_EQ(as_map(out[i].at("labels")), as_map(n.alerts[i].labels)) << i;
  }
  EXPECT_EQ(str(o.at("summary")), "[PAGE] CephClusterInError (300 alerts)");
}

TEST(NotificationId, DeterministicAndShaped) {
  const notification n =
      make(notification_kind::page, oncall(), {ceph_error("a"), ceph_error("b")});
  const std::string id = make_notification_id(n);
  EXPECT_EQ(id, make_notification_id(n));
  const notification copy = n;  // e.g. re-read from an outbox for a retry
  EXPECT_EQ(make_notification_id(copy), id);

  const std::string prefix = "page-100-";
  ASSERT_EQ(id.size(), prefix.size() + 16);
  EXPECT_EQ(id.substr(0, prefix.size()), prefix);
  EXPECT_TRUE(routing::parse_fingerprint(id.substr(prefix.size())).has_value()) << id;
  EXPECT_EQ(id.substr(prefix.size()).find_first_not_of("0123456789abcdef"), std::string::npos);

  notification resolve = n;
  resolve.kind = notification_kind::resolve;
  EXPECT_EQ(make_notification_id(resolve).substr(0, 12), "resolve-100-");

  notification empty = n;
  empty.incident_ids.clear();
  empty.alerts.clear();
  EXPECT_EQ(make_notification_id(empty).substr(0, 7), "page-0-");
}

TEST(NotificationId, DiffersWhenIdentityDiffers) {
  const notification base =
      make(notification_kind::page, oncall(), {ceph_error("a"), ceph_error("b")});
  struct row {
    std::string what;
    void (*change)(notification&);
  };
  const std::vector<row> rows = {
      {"kind", [](notification& n) { n.kind = notification_kind::resolve; }},
      {"target type", [](notification& n) { n.target.type = target_type::receiver; }},
      {"target name", [](notification& n) { n.target.name = "wmcs-secondary"; }},
      {"person", [](notification& n) { n.target.person = "bob"; }},
      {"name/person boundary",
       [](notification& n) {
         n.target.name = "wmcs-primarya";
         n.target.person = "lice";
       }},
      {"first incident id", [](notification& n) { n.incident_ids[0] = 7; }},
      {"second incident id", [](notification& n) { n.incident_ids[1] = 7; }},
      {"incident order",
       [](notification& n) {
         std::swap(n.incident_ids[0], n.incident_ids[1]);
         std::swap(n.alerts[0], n.alerts[1]);
       }},
      {"one incident fewer",
       [](notification& n) {
         n.incident_ids.pop_back();
         n.alerts.pop_back();
       }},
      // Same incident id after a restart, but a different alert.
      {"fingerprint", [](notification& n) { n.alerts[0].fp = routing::fingerprint{42}; }},
      {"startsAt (a re-fire)", [](notification& n) { n.alerts[1].starts_at += 1s; }},
  };
  const std::string base_id = make_notification_id(base);
  std::set<std::string> seen = {base_id};
  for (const row& r : rows) {
    SCOPED_TRACE(r.what);
    notification n = base;
    r.change(n);
    const std::string id = make_notification_id(n);
    EXPECT_NE(id, base_id);
    EXPECT_TRUE(seen.insert(id).second) << "collides with another variant: " << id;
  }
}

TEST(NotificationId, IgnoresWhatDoesNotIdentifyTheMessage) {
  const notification base = make(notification_kind::page, oncall(), {ceph_error("a")});
  const std::string base_id = make_notification_id(base);
  notification n = base;
  n.routes = {"other-route"};
  n.reach.webhook = "http://elsewhere/";
  n.alerts[0].annotations = label_set{{"summary", "edited"}};
  n.alerts[0].ends_at = utc(2026, 1, 8);
  n.alerts[0].status = alert_status::resolved;
  EXPECT_EQ(make_notification_id(n), base_id);
}

}  // namespace
}  // namespace alertrouter::daemon
