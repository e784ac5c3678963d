#include "routing/planner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <initializer_list>
#include <string>
#include <vector>

namespace alertrouter::routing {
namespace {

using namespace std::chrono_literals;
using config::matcher_op;
using config::target_type;

config::matcher_spec m(std::string name, matcher_op op, std::string value) {
  return {std::move(name), op, std::move(value), {}};
}

timestamp utc(int y, unsigned mo, unsigned d, int h = 0, int min = 0) {
  return timestamp{date::sys_days{date::year{y} / date::month{mo} / date::day{d}}} +
         std::chrono::hours(h) + std::chrono::minutes(min);
}

config::route route(std::string name, std::vector<config::matcher_spec> match,
                    std::vector<config::target> notify, bool cont = false) {
  config::route r;
  r.name = std::move(name);
  r.match = std::move(match);
  r.notify = std::move(notify);
  r.continue_matching = cont;
  return r;
}

// The issue's example, cut down. `oncall` is a weekly UTC rotation (alice, bob) handing off on
// Wednesdays at 16:00 from 2026-01-07; `clinic` starts only in 2027 (nobody on call before).
config::config example() {
  config::config c;
  c.source = "test.yaml";
  c.ownership.label = "project";
  c.ownership.owned = {"tools", "admin"};
  c.ownership.infrastructure = {m("team", matcher_op::equal, "wmcs")};
  c.people = {
      {"alice", {"http://hooks/alice", "", ""}, {}},
      {"bob", {"http://hooks/bob", "", ""}, {}},
      {"carol", {"http://hooks/carol", "", ""}, {}},
  };
  config::schedule oncall;
  oncall.name = "oncall";
  oncall.timezone = "UTC";
  oncall.layers.push_back({"weekly",
                           {"alice", "bob"},
                           config::local_time{date::local_days{date::year{2026} / 1 / 7}} + 16h,
                           24h * 7,
                           {},
                           {}});
  config::schedule clinic;
  clinic.name = "clinic";
  clinic.timezone = "UTC";
  clinic.layers.push_back({"weekly",
                           {"carol"},
                           config::local_time{date::local_days{date::year{2027} / 1 / 1}},
                           24h * 7,
                           {},
                           {}});
  c.schedules = {oncall, clinic};
  c.receivers = {{"cloud-feed", {"http://hooks/feed", "", ""}, {}}};
  c.projects = {{"deployment-prep", {"http://hooks/dp", "", ""}, {}}};
  c.routes = {
      route("owned-page",
            {m("ownership", matcher_op::equal, "owned"), m("severity", matcher_op::equal, "page")},
            {{target_type::schedule, "oncall", {}}, {target_type::receiver, "cloud-feed", {}}}),
      route("owned-critical",
            {m("ownership", matcher_op::equal, "owned"),
             m("severity", matcher_op::equal, "critical")},
            {{target_type::schedule, "clinic", {}}, {target_type::receiver, "cloud-feed", {}}}),
      route("user-projects", {m("ownership", matcher_op::equal, "user")},
            {{target_type::project, "", {}}}),
      route("fallback", {}, {{target_type::receiver, "cloud-feed", {}}}),
  };
  return c;
}

std::shared_ptr<const routing_table> compile(config::config c) {
  auto r = routing_table::compile(std::move(c));
  if (auto* d = std::get_if<std::vector<config::diagnostic>>(&r)) {
    ADD_FAILURE() << "compile failed: " << (d->empty() ? "" : d->front().message);
    return nullptr;
  }
  return std::get<std::shared_ptr<const routing_table>>(r);
}

alert make_alert(alert_status status, std::initializer_list<label_set::label> labels,
                 timestamp starts_at) {
  alert a;
  a.status = status;
  a.labels = label_set(std::vector<label_set::label>(labels));
  a.starts_at = starts_at;
  a.fp = compute_fingerprint(a.labels);
  return a;
}

const timestamp started = utc(2026, 1, 8, 9);

alert page_alert(std::string instance, std::string project = "tools",
                 alert_status status = alert_status::firing) {
  return make_alert(status,
                    {{"alertname", "InstanceDown"},
                     {"instance", instance},
                     {"project", project},
                     {"severity", "page"}},
                    started);
}

webhook body(std::vector<alert> alerts) {
  webhook w;
  w.version = "4";
  w.alerts = std::move(alerts);
  return w;
}

// The first notification for (kind, type, name), or nullptr.
const notification* find(const plan& p, notification_kind kind, target_type type,
                         std::string_view name) {
  for (const notification& n : p.notifications) {
    if (n.kind == kind && n.target.type == type && n.target.name == name) return &n;
  }
  return nullptr;
}

class planner_test : public ::testing::Test {
 protected:
  std::shared_ptr<const routing_table> cfg_ = compile(example());
  memory_incident_table table_{24h, 1000};

  plan run(std::vector<alert> alerts, timestamp now) {
    webhook w = body(std::move(alerts));
    return make_plan(*cfg_, table_, w, now);
  }
};

TEST_F(planner_test, owned_page_alerts_page_the_person_on_call_and_the_receiver) {
  const alert infra = make_alert(
      alert_status::firing,
      {{"alertname", "CephDown"}, {"team", "wmcs"}, {"severity", "page"}, {"cluster", "eqiad"}},
      started);
  const plan p = run({page_alert("tools-db-1"), infra}, utc(2026, 1, 8, 10));

  EXPECT_EQ(p.counts.received, 2u);
  EXPECT_EQ(p.counts.opened, 2u);
  EXPECT_EQ(p.counts.duplicates, 0u);
  EXPECT_EQ(p.observations, (std::vector<observation>{observation::opened, observation::opened}));
  ASSERT_EQ(p.notifications.size(), 2u);

  const notification& person = p.notifications[0];  // first target of the first route
  EXPECT_EQ(person.kind, notification_kind::page);
  EXPECT_EQ(person.target, (paged_target{target_type::schedule, "oncall", "alice"}));
  EXPECT_EQ(person.reach.webhook, "http://hooks/alice");
  EXPECT_EQ(person.routes, std::vector<std::string>{"owned-page"});
  ASSERT_EQ(person.alerts.size(), 2u);
  ASSERT_EQ(person.incident_ids.size(), 2u);
  EXPECT_NE(person.incident_ids[0], person.incident_ids[1]);
  EXPECT_EQ(person.alerts[0].labels.get("instance"), "tools-db-1");
  EXPECT_EQ(person.alerts[0].labels.get("ownership"), "owned");  // annotated before routing
  EXPECT_EQ(person.alerts[1].labels.get("alertname"), "CephDown");

  const notification& feed = p.notifications[1];
  EXPECT_EQ(feed.target, (paged_target{target_type::receiver, "cloud-feed", ""}));
  EXPECT_EQ(feed.reach.webhook, "http://hooks/feed");
  EXPECT_EQ(feed.incident_ids, person.incident_ids);

  EXPECT_TRUE(p.nobody.empty());
  EXPECT_TRUE(p.no_contacts.empty());
  EXPECT_TRUE(p.blocked.empty());

  // The table remembers who was paged, for the resolve.
  const incident* inc = table_.find(page_alert("tools-db-1").fp);
  ASSERT_NE(inc, nullptr);
  EXPECT_EQ(inc->routes, std::vector<std::string>{"owned-page"});
  EXPECT_EQ(inc->paged, (std::vector<paged_target>{person.target, feed.target}));
}

TEST_F(planner_test, user_project_page_goes_only_to_the_project_contacts) {
  const plan p = run({page_alert("deployment-prep-db-1", "deployment-prep")}, started);
  ASSERT_EQ(p.notifications.size(), 1u);
  EXPECT_EQ(p.notifications[0].target, (paged_target{target_type::project, "deployment-prep", ""}));
  EXPECT_EQ(p.notifications[0].reach.webhook, "http://hooks/dp");
  EXPECT_EQ(p.notifications[0].alerts[0].labels.get("ownership"), "user");
  EXPECT_TRUE(p.blocked.empty());
}

TEST_F(planner_test, a_misconfigured_route_never_pages_the_team_for_a_user_project) {
  config::config c = example();
  // Pages on severity alone, forgetting ownership.
  c.routes.insert(c.routes.begin(), route("any-page", {m("severity", matcher_op::equal, "page")},
                                          {{target_type::schedule, "oncall", {}},
                                           {target_type::receiver, "cloud-feed", {}}}));
  cfg_ = compile(std::move(c));
  ASSERT_NE(cfg_, nullptr);

  const alert a = page_alert("deployment-prep-db-1", "deployment-prep");
  const plan p = run({a}, started);
  ASSERT_EQ(p.blocked.size(), 1u);
  EXPECT_EQ(p.blocked[0].schedule, "oncall");
  EXPECT_EQ(p.blocked[0].route, "any-page");
  EXPECT_EQ(p.blocked[0].fp, a.fp);
  ASSERT_EQ(p.notifications.size(), 1u);  // the route's other target still gets it
  EXPECT_EQ(p.notifications[0].target.type, target_type::receiver);
  for (const paged_target& t : table_.find(a.fp)->paged) {
    EXPECT_NE(t.type, target_type::schedule);
  }
}

TEST_F(planner_test, resending_the_same_body_sends_nothing) {
  const std::vector<alert> alerts = {page_alert("tools-db-1"), page_alert("tools-db-2")};
  const plan first = run(alerts, started);
  ASSERT_EQ(first.counts.opened, 2u);

  for (int resend = 1; resend <= 3; ++resend) {
    const plan again = run(alerts, started + resend * 5min);
    EXPECT_TRUE(again.notifications.empty());
    EXPECT_EQ(again.counts.received, 2u);
    EXPECT_EQ(again.counts.duplicates, 2u);
    EXPECT_EQ(again.counts.opened, 0u);
    EXPECT_EQ(again.observations,
              (std::vector<observation>{observation::duplicate, observation::duplicate}));
  }
}

TEST_F(planner_test, the_same_fingerprint_twice_in_one_body_pages_once) {
  const plan p = run({page_alert("tools-db-1"), page_alert("tools-db-1")}, started);
  EXPECT_EQ(p.counts.opened, 1u);
  EXPECT_EQ(p.counts.duplicates, 1u);
  ASSERT_EQ(p.notifications.size(), 2u);
  EXPECT_EQ(p.notifications[0].alerts.size(), 1u);
}

TEST_F(planner_test, resolve_after_a_handoff_goes_to_the_person_originally_paged) {
  // alice is on call until Wednesday 2026-01-14 16:00, bob after.
  const plan paged = run({page_alert("tools-db-1")}, utc(2026, 1, 14, 15));
  ASSERT_FALSE(paged.notifications.empty());
  EXPECT_EQ(paged.notifications[0].target.person, "alice");

  const plan resolved =
      run({page_alert("tools-db-1", "tools", alert_status::resolved)}, utc(2026, 1, 14, 17));
  EXPECT_EQ(resolved.counts.closed, 1u);
  EXPECT_EQ(resolved.observations, std::vector<observation>{observation::closed});
  ASSERT_EQ(resolved.notifications.size(), 2u);
  const notification& person = resolved.notifications[0];
  EXPECT_EQ(person.kind, notification_kind::resolve);
  EXPECT_EQ(person.target, (paged_target{target_type::schedule, "oncall", "alice"}));
  EXPECT_EQ(person.reach.webhook, "http://hooks/alice");
  EXPECT_EQ(person.incident_ids, paged.notifications[0].incident_ids);
  EXPECT_EQ(person.routes, std::vector<std::string>{"owned-page"});
  ASSERT_EQ(person.alerts.size(), 1u);
  EXPECT_EQ(person.alerts[0].status, alert_status::resolved);
  EXPECT_EQ(resolved.notifications[1].kind, notification_kind::resolve);
  EXPECT_EQ(resolved.notifications[1].target.name, "cloud-feed");

  // A new page now goes to bob.
  const plan later = run({page_alert("tools-db-2")}, utc(2026, 1, 14, 17));
  ASSERT_FALSE(later.notifications.empty());
  EXPECT_EQ(later.notifications[0].target.person, "bob");
}

TEST_F(planner_test, repeat_and_unknown_resolves_send_nothing) {
  run({page_alert("tools-db-1")}, started);
  run({page_alert("tools-db-1", "tools", alert_status::resolved)}, started + 1h);
  const plan p = run({page_alert("tools-db-1", "tools", alert_status::resolved),
                      page_alert("tools-db-9", "tools", alert_status::resolved)},
                     started + 2h);
  EXPECT_TRUE(p.notifications.empty());
  EXPECT_EQ(p.counts.duplicates, 1u);
  EXPECT_EQ(p.counts.stale, 1u);
  EXPECT_EQ(p.observations,
            (std::vector<observation>{observation::duplicate, observation::unknown_resolve}));
}

TEST_F(planner_test, stale_firing_after_resolve_is_counted_and_sends_nothing) {
  run({page_alert("tools-db-1")}, started);
  run({page_alert("tools-db-1", "tools", alert_status::resolved)}, started + 1h);
  const plan p = run({page_alert("tools-db-1")}, started + 2h);  // a late copy, same startsAt
  EXPECT_TRUE(p.notifications.empty());
  EXPECT_EQ(p.counts.stale, 1u);
  EXPECT_EQ(p.counts.opened, 0u);
}

TEST_F(planner_test, nobody_on_call_is_reported_and_the_receiver_still_notified) {
  alert critical = page_alert("tools-db-1");
  critical.labels.set("severity", "critical");
  critical.fp = compute_fingerprint(critical.labels);
  const plan p = run({critical}, started);  // clinic starts in 2027
  ASSERT_EQ(p.nobody.size(), 1u);
  EXPECT_EQ(p.nobody[0].schedule, "clinic");
  EXPECT_EQ(p.nobody[0].route, "owned-critical");
  EXPECT_EQ(p.nobody[0].fp, critical.fp);
  ASSERT_EQ(p.notifications.size(), 1u);
  EXPECT_EQ(p.notifications[0].target, (paged_target{target_type::receiver, "cloud-feed", ""}));
  // Only the receiver was paged, so only it gets the resolve.
  alert resolve = critical;
  resolve.status = alert_status::resolved;
  const plan r = run({resolve}, started + 1h);
  ASSERT_EQ(r.notifications.size(), 1u);
  EXPECT_EQ(r.notifications[0].target.name, "cloud-feed");
}

TEST_F(planner_test, new_incidents_for_one_target_are_grouped_into_one_notification) {
  const plan p =
      run({page_alert("tools-db-1"), page_alert("tools-db-2"), page_alert("tools-db-3")}, started);
  ASSERT_EQ(p.notifications.size(), 2u);  // alice and the feed, each once
  for (const notification& n : p.notifications) {
    ASSERT_EQ(n.alerts.size(), 3u);
    ASSERT_EQ(n.incident_ids.size(), 3u);
    EXPECT_LT(n.incident_ids[0], n.incident_ids[1]);
    EXPECT_LT(n.incident_ids[1], n.incident_ids[2]);
    EXPECT_EQ(n.alerts[0].labels.get("instance"), "tools-db-1");
    EXPECT_EQ(n.alerts[2].labels.get("instance"), "tools-db-3");
  }
  // And their resolves, in one body, too.
  const plan r = run({page_alert("tools-db-1", "tools", alert_status::resolved),
                      page_alert("tools-db-2", "tools", alert_status::resolved),
                      page_alert("tools-db-3", "tools", alert_status::resolved)},
                     started + 1h);
  ASSERT_EQ(r.notifications.size(), 2u);
  EXPECT_EQ(r.notifications[0].incident_ids, p.notifications[0].incident_ids);
  EXPECT_EQ(r.counts.closed, 3u);
}

TEST_F(planner_test, pages_come_before_resolves_in_order_of_first_appearance) {
  run({page_alert("tools-db-1")}, started);
  alert user_alert = page_alert("dp-1", "deployment-prep");
  const plan p = run({page_alert("tools-db-1", "tools", alert_status::resolved), user_alert,
                      page_alert("tools-db-2")},
                     started + 1h);
  ASSERT_EQ(p.notifications.size(), 5u);
  std::vector<std::pair<notification_kind, std::string>> got;
  for (const notification& n : p.notifications) got.emplace_back(n.kind, n.target.name);
  const std::vector<std::pair<notification_kind, std::string>> expected = {
      {notification_kind::page, "deployment-prep"}, {notification_kind::page, "oncall"},
      {notification_kind::page, "cloud-feed"},      {notification_kind::resolve, "oncall"},
      {notification_kind::resolve, "cloud-feed"},
  };
  EXPECT_EQ(got, expected);
}

TEST_F(planner_test, continue_routes_to_the_same_target_list_the_incident_once) {
  config::config c = example();
  c.routes.insert(c.routes.begin(), route("audit", {m("severity", matcher_op::equal, "page")},
                                          {{target_type::receiver, "cloud-feed", {}}}, true));
  cfg_ = compile(std::move(c));
  ASSERT_NE(cfg_, nullptr);
  const plan p = run({page_alert("tools-db-1")}, started);
  const notification* feed = find(p, notification_kind::page, target_type::receiver, "cloud-feed");
  ASSERT_NE(feed, nullptr);
  EXPECT_EQ(feed->routes, (std::vector<std::string>{"audit", "owned-page"}));
  EXPECT_EQ(feed->incident_ids.size(), 1u);
  EXPECT_EQ(p.notifications.size(), 2u);
  EXPECT_EQ(table_.find(page_alert("tools-db-1").fp)->paged.size(), 2u);
}

TEST_F(planner_test, targets_without_contacts_are_reported) {
  const alert a = page_alert("other-1", "no-contacts-project");  // a user project with no entry
  const plan p = run({a}, started);
  EXPECT_TRUE(p.notifications.empty());
  ASSERT_EQ(p.no_contacts.size(), 1u);
  EXPECT_EQ(p.no_contacts[0].target,
            (paged_target{target_type::project, "no-contacts-project", ""}));
  EXPECT_EQ(p.no_contacts[0].route, "user-projects");
  EXPECT_EQ(p.no_contacts[0].fp, a.fp);
}

TEST_F(planner_test, a_paged_target_removed_by_a_reload_is_reported_on_resolve) {
  const plan paged = run({page_alert("tools-db-1")}, started);
  ASSERT_EQ(paged.notifications.size(), 2u);

  config::config c = example();
  c.receivers.clear();
  for (config::route& r : c.routes) {
    std::erase_if(r.notify,
                  [](const config::target& t) { return t.type == target_type::receiver; });
  }
  cfg_ = compile(std::move(c));
  ASSERT_NE(cfg_, nullptr);

  const plan r = run({page_alert("tools-db-1", "tools", alert_status::resolved)}, started + 1h);
  ASSERT_EQ(r.notifications.size(), 1u);
  EXPECT_EQ(r.notifications[0].target.person, "alice");
  ASSERT_EQ(r.no_contacts.size(), 1u);
  EXPECT_EQ(r.no_contacts[0].target, (paged_target{target_type::receiver, "cloud-feed", ""}));
  EXPECT_EQ(r.no_contacts[0].route, "owned-page");
}

TEST_F(planner_test, alerts_matching_no_route_are_counted_unrouted) {
  config::config c = example();
  c.routes.pop_back();  // no fallback
  cfg_ = compile(std::move(c));
  ASSERT_NE(cfg_, nullptr);
  const alert a = make_alert(alert_status::firing, {{"alertname", "Stray"}}, started);
  const plan p = run({a}, started);
  EXPECT_EQ(p.counts.opened, 1u);
  EXPECT_EQ(p.counts.unrouted, 1u);
  EXPECT_TRUE(p.notifications.empty());
  // Resolving it sends nothing: nobody was paged.
  alert r = a;
  r.status = alert_status::resolved;
  const plan closed = run({r}, started + 1h);
  EXPECT_EQ(closed.counts.closed, 1u);
  EXPECT_TRUE(closed.notifications.empty());
}

TEST_F(planner_test, severity_warn_is_normalised_before_routing) {
  config::config c = example();
  c.routes.insert(c.routes.begin(), route("warnings", {m("severity", matcher_op::equal, "warning")},
                                          {{target_type::receiver, "cloud-feed", {}}}));
  cfg_ = compile(std::move(c));
  ASSERT_NE(cfg_, nullptr);
  alert a = page_alert("tools-db-1");
  a.labels.set("severity", "warn");
  const plan p = run({a}, started);
  ASSERT_EQ(p.notifications.size(), 1u);
  EXPECT_EQ(p.notifications[0].routes, std::vector<std::string>{"warnings"});
  EXPECT_EQ(p.notifications[0].alerts[0].labels.get("severity"), "warning");
}

TEST(notification_kind_names, both_kinds_have_names) {
  EXPECT_EQ(to_string(notification_kind::page), "page");
  EXPECT_EQ(to_string(notification_kind::resolve), "resolve");
}

}  // namespace
}  // namespace alertrouter::routing

namespace alertrouter::routing {
namespace {

TEST_F(planner_test, closed_incidents_are_forgotten_after_the_retention) {
  ASSERT_EQ(run({page_alert("tools-db-1")}, started).counts.opened, 1u);
  const timestamp closed_at = started + 1h;
  ASSERT_EQ(
      run({page_alert("tools-db-1", "tools", alert_status::resolved)}, closed_at).counts.closed,
      1u);

  // Within the 24h retention a repeat of the resolve is a duplicate...
  const plan within =
      run({page_alert("tools-db-1", "tools", alert_status::resolved)}, closed_at + 24h);
  EXPECT_EQ(within.observations, std::vector<observation>{observation::duplicate});
  EXPECT_EQ(table_.size(), 1u);

  // ...after it the incident is gone, and the same resolve is one for an unknown fingerprint.
  const plan after =
      run({page_alert("tools-db-1", "tools", alert_status::resolved)}, closed_at + 24h + 1s);
  EXPECT_EQ(after.observations, std::vector<observation>{observation::unknown_resolve});
  EXPECT_EQ(table_.size(), 0u);
  EXPECT_TRUE(after.notifications.empty());
}

}  // namespace
}  // namespace alertrouter::routing

namespace alertrouter::routing {
namespace {

TEST_F(planner_test, a_new_occurrence_after_a_lost_resolve_pages_again) {
  ASSERT_EQ(run({page_alert("tools-db-1")}, started).notifications.size(), 2u);
  alert again = page_alert("tools-db-1");
  again.starts_at = started + 24h;  // Alertmanager saw it resolve and fire again; we missed it
  const plan p = run({again}, started + 24h + 1min);
  EXPECT_EQ(p.counts.opened, 1u);
  EXPECT_EQ(p.counts.reopened, 1u);
  EXPECT_EQ(p.observations, std::vector<observation>{observation::reopened});
  const notification* person = find(p, notification_kind::page, target_type::schedule, "oncall");
  ASSERT_NE(person, nullptr);
  EXPECT_EQ(person->target.person, "alice");
}

}  // namespace
}  // namespace alertrouter::routing

namespace alertrouter::routing {
namespace {

TEST_F(planner_test, a_person_on_call_in_two_schedules_gets_one_page_per_incident) {
  config::config c = example();
  config::schedule secondary = c.schedules[0];  // same rotation: alice is on call in both
  secondary.name = "secondary";
  c.schedules.push_back(secondary);
  c.routes.insert(c.routes.begin(),
                  route("secondary-page", {m("severity", matcher_op::equal, "page")},
                        {{target_type::schedule, "secondary", {}}}, /*cont=*/true));
  cfg_ = compile(std::move(c));
  ASSERT_NE(cfg_, nullptr);

  const plan p = run({page_alert("tools-db-1")}, started);
  std::size_t pages_to_alice = 0;
  for (const notification& n : p.notifications) {
    if (n.target.person == "alice") ++pages_to_alice;
  }
  EXPECT_EQ(pages_to_alice, 1u);
  const notification* feed = find(p, notification_kind::page, target_type::receiver, "cloud-feed");
  ASSERT_NE(feed, nullptr);  // the route's other targets are unaffected
  EXPECT_EQ(table_.find(page_alert("tools-db-1").fp)->paged.size(), 2u);
}

// route_webhook: the daemon's path from a body to a plan, which skips copying annotations and
// generatorURL for repeats. It must plan exactly as decode_webhook + make_plan does.

// A webhook body with one alert per instance of the tools project, as Alertmanager sends it (with
// annotations, generatorURL and fingerprint), all firing or all resolved, started at `started`.
std::string json_body(const std::vector<std::string>& instances, alert_status status,
                      timestamp starts_at = started) {
  const std::string starts = format_rfc3339(starts_at);
  std::string out = R"({"version":"4","groupKey":"{}:{alertname=\"InstanceDown\"}","alerts":[)";
  for (std::size_t i = 0; i < instances.size(); ++i) {
    if (i > 0) out += ",";
    out += std::string(R"({"status":")") + std::string(to_string(status)) +
           R"(","labels":{"alertname":"InstanceDown","instance":")" + instances[i] +
           R"(","project":"tools","severity":"page"},"annotations":{"summary":"Instance )" +
           instances[i] + R"( is down","runbook":"https://wikitech.wikimedia.org/wiki/Runbook"},)" +
           R"("startsAt":")" + starts + R"(","endsAt":"0001-01-01T00:00:00Z",)" +
           R"("generatorURL":"http://prometheus/graph?instance=)" + instances[i] +
           R"(","fingerprint":")" + to_hex(page_alert(instances[i]).fp) + R"("})";
  }
  return out + "]}";
}

// Plans `body` both ways, on two tables that have seen the same bodies, and checks that the
// results agree. Returns route_webhook's result.
class route_webhook_test : public planner_test {
 protected:
  routed_webhook both(const std::string& body, timestamp now) {
    return both_on(table_, reference_, body, now);
  }

  routed_webhook both_on(incident_table& table, incident_table& reference, const std::string& body,
                         timestamp now) {
    auto routed = route_webhook(body, *cfg_, table, now);
    if (auto* e = std::get_if<decode_error>(&routed)) {
      ADD_FAILURE() << "route_webhook rejected the body: " << e->to_string();
      return {};
    }
    auto full = decode_webhook(body);
    webhook hook = std::get<webhook>(std::move(full));
    const plan expected = make_plan(*cfg_, reference, hook, now);
    routed_webhook out = std::get<routed_webhook>(std::move(routed));
    const plan& got = out.result;
    EXPECT_EQ(got.observations, expected.observations);
    EXPECT_EQ(got.ownerships, expected.ownerships);
    EXPECT_EQ(got.ownerships.size(), out.hook.alerts.size());
    EXPECT_EQ(got.counts.opened, expected.counts.opened);
    EXPECT_EQ(got.counts.duplicates, expected.counts.duplicates);
    EXPECT_EQ(got.counts.closed, expected.counts.closed);
    EXPECT_EQ(got.counts.stale, expected.counts.stale);
    EXPECT_EQ(got.notifications.size(), expected.notifications.size());
    for (std::size_t i = 0; i < std::min(got.notifications.size(), expected.notifications.size());
         ++i) {
      const notification& g = got.notifications[i];
      const notification& x = expected.notifications[i];
      EXPECT_EQ(g.kind, x.kind);
      EXPECT_EQ(g.target, x.target);
      EXPECT_EQ(g.incident_ids.size(), x.incident_ids.size());
      EXPECT_EQ(g.alerts.size(), x.alerts.size());
      for (std::size_t k = 0; k < std::min(g.alerts.size(), x.alerts.size()); ++k) {
        EXPECT_FALSE(g.alerts[k].details_omitted);
        EXPECT_EQ(g.alerts[k].annotations, x.alerts[k].annotations);
        EXPECT_EQ(g.alerts[k].generator_url, x.alerts[k].generator_url);
        EXPECT_EQ(g.alerts[k].labels, x.alerts[k].labels);
      }
    }
    return out;
  }

  memory_incident_table reference_{24h, 1000};
};

TEST_F(route_webhook_test, repeats_skip_details_and_plan_as_a_full_decode_does) {
  const std::string firing = json_body({"tools-db-1", "tools-db-2"}, alert_status::firing);
  const routed_webhook first = both(firing, started);
  EXPECT_EQ(first.result.counts.opened, 2u);
  const notification* page =
      find(first.result, notification_kind::page, target_type::schedule, "oncall");
  ASSERT_NE(page, nullptr);
  ASSERT_EQ(page->alerts.size(), 2u);
  EXPECT_EQ(page->alerts[0].annotations.get("summary"), "Instance tools-db-1 is down");
  EXPECT_EQ(page->alerts[0].generator_url, "http://prometheus/graph?instance=tools-db-1");

  // Alertmanager's resend: nothing to send, and nothing copied that nobody reads.
  const routed_webhook resend = both(firing, started + 5min);
  EXPECT_EQ(resend.result.counts.duplicates, 2u);
  EXPECT_TRUE(resend.result.notifications.empty());
  for (const alert& a : resend.hook.alerts) {
    EXPECT_TRUE(a.details_omitted);
    EXPECT_TRUE(a.labels_omitted);  // the incident knows its ownership
    EXPECT_TRUE(a.annotations.empty());
  }
  EXPECT_EQ(resend.result.ownerships, (std::vector<ownership>{ownership::owned, ownership::owned}));
  // The incident keeps the details it opened with.
  EXPECT_EQ(table_.find(page->alerts[0].fp)->last.annotations.get("summary"),
            "Instance tools-db-1 is down");

  // The resolve carries the details; a repeated resolve does not need them.
  const std::string resolved = json_body({"tools-db-1", "tools-db-2"}, alert_status::resolved);
  const routed_webhook closing = both(resolved, started + 10min);
  EXPECT_EQ(closing.result.counts.closed, 2u);
  for (const alert& a : closing.hook.alerts) EXPECT_FALSE(a.details_omitted);
  const routed_webhook again = both(resolved, started + 15min);
  EXPECT_EQ(again.result.counts.duplicates, 2u);
  for (const alert& a : again.hook.alerts) EXPECT_TRUE(a.details_omitted);

  // A delayed copy of the firing body is stale: no details; a new occurrence opens with them.
  const routed_webhook stale = both(firing, started + 20min);
  EXPECT_EQ(stale.result.counts.stale, 2u);
  const routed_webhook refire = both(
      json_body({"tools-db-1", "tools-db-2"}, alert_status::firing, started + 1h), started + 1h);
  EXPECT_EQ(refire.result.counts.opened, 2u);
  for (const alert& a : refire.hook.alerts) EXPECT_FALSE(a.details_omitted);
}

TEST_F(route_webhook_test, a_repeat_evicted_earlier_in_the_same_body_gets_its_details) {
  // Room for one incident: the new alert first in the body evicts the repeat that follows it,
  // which the decoder judged a duplicate before the body was applied.
  memory_incident_table small(24h, 1), small_reference(24h, 1);
  both_on(small, small_reference, json_body({"tools-db-1"}, alert_status::firing), started);
  const routed_webhook r =
      both_on(small, small_reference, json_body({"tools-db-2", "tools-db-1"}, alert_status::firing),
              started + 1min);
  EXPECT_EQ(small.evictions(), 2u);  // tools-db-1 by tools-db-2, then tools-db-2 by tools-db-1
  ASSERT_EQ(r.result.observations.size(), 2u);
  EXPECT_EQ(r.result.observations[1], observation::opened);
  ASSERT_FALSE(r.hook.alerts[1].details_omitted);
  EXPECT_EQ(r.hook.alerts[1].annotations.get("summary"), "Instance tools-db-1 is down");
  const notification* page =
      find(r.result, notification_kind::page, target_type::schedule, "oncall");
  ASSERT_NE(page, nullptr);
  ASSERT_EQ(page->alerts.size(), 2u);
  EXPECT_EQ(page->alerts[1].generator_url, "http://prometheus/graph?instance=tools-db-1");
}

TEST_F(route_webhook_test, a_repeat_resolve_evicted_in_the_same_body_gets_its_labels_back) {
  // Room for one incident. tools-db-1 opens and resolves; a body then opens tools-db-2 (evicting
  // the closed tools-db-1) and repeats tools-db-1's resolve. The decoder judged that resolve a
  // duplicate of a known incident and left out its labels; once its incident is gone it is an
  // unknown resolve, whose ownership must come from its labels.
  memory_incident_table small(24h, 1), small_reference(24h, 1);
  both_on(small, small_reference, json_body({"tools-db-1"}, alert_status::firing), started);
  both_on(small, small_reference, json_body({"tools-db-1"}, alert_status::resolved),
          started + 1min);
  std::string body = json_body({"tools-db-2"}, alert_status::firing);
  const std::string resolve = json_body({"tools-db-1"}, alert_status::resolved);
  // Splice the resolve's alert after the firing one: `...]}` + `,{...}]}`.
  const std::size_t alerts_at = resolve.find("[{");
  body.replace(body.size() - 2, 2, "," + resolve.substr(alerts_at + 1));
  const routed_webhook r = both_on(small, small_reference, body, started + 2min);
  ASSERT_EQ(r.result.observations.size(), 2u);
  EXPECT_EQ(r.result.observations[0], observation::opened);
  EXPECT_EQ(r.result.observations[1], observation::unknown_resolve);
  EXPECT_FALSE(r.hook.alerts[1].labels_omitted);
  EXPECT_EQ(r.hook.alerts[1].labels.get("instance"), "tools-db-1");
  EXPECT_EQ(r.result.ownerships[1], ownership::owned);
}

TEST_F(route_webhook_test, a_body_that_does_not_decode_changes_nothing) {
  both(json_body({"tools-db-1"}, alert_status::firing), started);
  // Valid up to a repeat's annotation value of the wrong type.
  std::string bad = json_body({"tools-db-1"}, alert_status::resolved);
  const std::string summary = R"("summary":"Instance tools-db-1 is down")";
  bad.replace(bad.find(summary), summary.size(), R"("summary":42)");
  auto routed = route_webhook(bad, *cfg_, table_, started + 1min);
  ASSERT_TRUE(std::holds_alternative<decode_error>(routed));
  EXPECT_EQ(std::get<decode_error>(routed).field, "alerts[0].annotations.summary");
  EXPECT_EQ(table_.open_count(), 1u);
  EXPECT_TRUE(table_.find(page_alert("tools-db-1").fp)->open());
}

TEST(classify_observation, follows_the_incident_state_machine) {
  const timestamp t = started;
  EXPECT_EQ(classify_observation(nullptr, alert_status::firing, t), observation::opened);
  EXPECT_EQ(classify_observation(nullptr, alert_status::resolved, t), observation::unknown_resolve);
  incident open;
  open.starts_at = t;
  EXPECT_EQ(classify_observation(&open, alert_status::firing, t), observation::duplicate);
  EXPECT_EQ(classify_observation(&open, alert_status::firing, t - 1s), observation::duplicate);
  EXPECT_EQ(classify_observation(&open, alert_status::firing, t + 1s), observation::reopened);
  EXPECT_EQ(classify_observation(&open, alert_status::resolved, t), observation::closed);
  EXPECT_EQ(classify_observation(&open, alert_status::resolved, t + 1s), observation::closed);
  EXPECT_EQ(classify_observation(&open, alert_status::resolved, t - 1s), observation::stale);
  incident closed = open;
  closed.closed_at = t + 1h;
  EXPECT_EQ(classify_observation(&closed, alert_status::firing, t), observation::stale);
  EXPECT_EQ(classify_observation(&closed, alert_status::firing, t + 1s), observation::opened);
  EXPECT_EQ(classify_observation(&closed, alert_status::resolved, t), observation::duplicate);
  EXPECT_EQ(classify_observation(&closed, alert_status::resolved, t - 1s), observation::stale);
  EXPECT_EQ(classify_observation(&closed, alert_status::resolved, t + 1s),
            observation::unknown_resolve);
}

}  // namespace
}  // namespace alertrouter::routing
