// alertrouterd end to end: real Alertmanagers send to the built daemon, which notifies a
// recording sink. Each test asserts on what reached the sink (who, how often, with what) and on
// the daemon's /metrics.

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "tests/integration/free_port.h"
#include "tests/integration/prometheus_text.h"
#include "tests/integration/router_fixture.h"
#include "tests/integration/webhook_payload.h"
#include "tests/integration/wmcs_alerts.h"

namespace alertrouter::integration {
namespace {

namespace json = boost::json;

std::string kind_of(const recorded_request& r) {
  boost::system::error_code ec;
  const auto v = json::parse(r.body, ec);
  return ec ? std::string() : json_string(v, "kind");
}

std::size_t count_kind(const std::vector<recorded_request>& requests, std::string_view path,
                       std::string_view kind) {
  std::size_t n = 0;
  for (const auto& r : requests) n += r.path == path && kind_of(r) == kind ? 1u : 0u;
  return n;
}

class alertrouterd_e2e : public router_fixture {
 protected:
  // Waits until `path` has received at least `n` notifications of `kind` ("page", "resolve").
  bool wait_for_kind(std::string_view path, std::string_view kind, std::size_t n) {
    return sink_.wait_for(
        [&](const std::vector<recorded_request>& all) { return count_kind(all, path, kind) >= n; },
        wait_limit);
  }

  // The scenario shared by the two HA tests: both Alertmanagers get the alert (as Prometheus sends
  // to every Alertmanager), both may notify, the daemon pages once and resolves once.
  void one_page_and_one_resolve_from_two(alertmanager_process& a, alertmanager_process& b) {
    const auto alert = wmcs_alerts::cloudvirt_down();
    a.post({alert});
    b.post({alert});
    ASSERT_TRUE(wait_for_kind(alice_path, "page", 1));
    ASSERT_TRUE(daemon_->wait_for_metric("alertrouter_alerts_duplicate_total", {}, 3, wait_limit));
    ASSERT_EQ(count_kind(sink_.requests(), alice_path, "page"), 1u);

    a.post({wmcs_alerts::resolved(alert)});
    b.post({wmcs_alerts::resolved(alert)});
    ASSERT_TRUE(wait_for_kind(alice_path, "resolve", 1));
    // Barrier: a later alert, also sent by both, reaches the feed once.
    const auto warning = wmcs_alerts::tools_object_storage_quota_warning();
    a.post({warning});
    b.post({warning});
    ASSERT_TRUE(sink_.wait_for_count(feed_path, 1, wait_limit));
    ASSERT_TRUE(wait_for_more_webhooks(2));

    EXPECT_EQ(count_kind(sink_.requests(), alice_path, "page"), 1u);
    EXPECT_EQ(count_kind(sink_.requests(), alice_path, "resolve"), 1u);
    EXPECT_EQ(sink_.requests_to(alice_path).size(), 2u);
    EXPECT_EQ(sink_.requests_to(feed_path).size(), 1u);
    EXPECT_TRUE(sink_.requests_to(bob_path).empty());
    EXPECT_TRUE(sink_.requests_to(carol_path).empty());
  }

  double metric(std::string_view name, const std::map<std::string, std::string>& labels = {}) {
    return daemon_->metric(name, labels).value_or(-1);
  }

  // Notifications the daemon counts as delivered, by kind.
  double delivered(std::string_view kind) {
    return metric("alertrouter_notifications_total",
                  {{"channel", "webhook"}, {"kind", std::string(kind)}, {"result", "delivered"}});
  }

  void expect_no_requests_to(std::initializer_list<std::string_view> paths) {
    for (const auto path : paths) {
      EXPECT_TRUE(sink_.requests_to(path).empty())
          << path << " got " << sink_.requests_to(path).size()
          << " notification(s), first: " << sink_.requests_to(path).front().body;
    }
  }
};

// The notification JSON of one page to alice for `alertname`: the documented fields
// (daemon/notification_json.h) and the Idempotency-Key header.
void expect_page_to_alice(const recorded_request& r, std::string_view alertname,
                          std::string_view ownership) {
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  const auto body = notification_body(r);
  EXPECT_EQ(json_string(body, "version"), "1");
  EXPECT_EQ(json_string(body, "kind"), "page");
  EXPECT_EQ(json_string(body, "route"), "pages");
  EXPECT_EQ(json_string(body, "ownership"), ownership);
  EXPECT_EQ(json_string(body, "severity"), "page");
  EXPECT_FALSE(json_string(body, "id").empty());
  EXPECT_EQ(r.header("Idempotency-Key"), json_string(body, "id"));
  ASSERT_TRUE(body.as_object().contains("target"));
  const auto& target = body.at("target");
  EXPECT_EQ(json_string(target, "type"), "schedule");
  EXPECT_EQ(json_string(target, "name"), "oncall-primary");
  EXPECT_EQ(json_string(target, "person"), "alice");
  ASSERT_TRUE(body.as_object().contains("alerts"));
  ASSERT_EQ(body.at("alerts").as_array().size(), 1u);
  const auto& alert = body.at("alerts").at(0);
  EXPECT_EQ(json_string(alert, "status"), "firing");
  EXPECT_EQ(json_string(alert.at("labels"), "alertname"), alertname);
  EXPECT_EQ(json_string(alert.at("labels"), "ownership"), ownership);
  EXPECT_EQ(json_string(alert, "fingerprint").size(), 16u);
}

// An owned project's page reaches exactly the person on call, once, although Alertmanager keeps
// resending the group (repeat_interval 1 s) and the daemon sees every resend.
TEST_F(alertrouterd_e2e, owned_page_pages_the_person_on_call_once_despite_resends) {
  auto am = start_alertmanager("alertmanager");
  am->post({wmcs_alerts::metricsinfra_alertmanager_down()});

  ASSERT_TRUE(wait_for_kind(alice_path, "page", 1));
  // Resends reached the daemon and were recognised as such...
  ASSERT_TRUE(daemon_->wait_for_metric("alertrouter_alerts_duplicate_total", {}, 2, wait_limit));
  // ...and one more after them has been handled: nothing they could have caused is in flight.
  ASSERT_TRUE(wait_for_more_webhooks(1));

  const auto pages = sink_.requests_to(alice_path);
  ASSERT_EQ(pages.size(), 1u);
  expect_page_to_alice(pages[0], "MetricsinfraAlertmanagerDown", "owned");
  EXPECT_EQ(json_string(notification_body(pages[0]).at("alerts").at(0).at("labels"), "project"),
            "metricsinfra");
  expect_no_requests_to({bob_path, carol_path, feed_path, deployment_prep_path});

  ASSERT_TRUE(daemon_->wait_for_metric("alertrouter_notifications_total",
                                       {{"kind", "page"}, {"result", "delivered"}}, 1, wait_limit));
  EXPECT_EQ(delivered("page"), 1);
  EXPECT_EQ(metric("alertrouter_incidents_opened_total"), 1);
  EXPECT_GE(metric("alertrouter_alerts_duplicate_total"), 2);
  EXPECT_EQ(metric("alertrouter_incidents_open"), 1);
}

// A user project's severity=page alert goes to that project's contacts and never to the person
// on call, although the config's `pages` route matches it too (the daemon blocks it and counts
// it).
TEST_F(alertrouterd_e2e, user_project_page_reaches_its_contacts_never_the_on_call_person) {
  auto am = start_alertmanager("alertmanager");
  am->post({wmcs_alerts::deployment_prep_instance_down()});

  ASSERT_TRUE(wait_for_kind(deployment_prep_path, "page", 1));
  ASSERT_TRUE(daemon_->wait_for_metric("alertrouter_alerts_duplicate_total", {}, 1, wait_limit));
  ASSERT_TRUE(wait_for_more_webhooks(1));

  const auto pages = sink_.requests_to(deployment_prep_path);
  ASSERT_EQ(pages.size(), 1u);
  const auto body = notification_body(pages[0]);
  EXPECT_EQ(json_string(body, "kind"), "page");
  EXPECT_EQ(json_string(body, "route"), "user-projects");
  EXPECT_EQ(json_string(body, "ownership"), "user");
  EXPECT_EQ(json_string(body.at("target"), "type"), "project");
  EXPECT_EQ(json_string(body.at("target"), "name"), "deployment-prep");
  EXPECT_FALSE(body.at("target").as_object().contains("person"));
  EXPECT_EQ(json_string(body.at("alerts").at(0).at("labels"), "alertname"), "InstanceDown");
  EXPECT_EQ(pages[0].header("Idempotency-Key"), json_string(body, "id"));
  expect_no_requests_to({alice_path, bob_path, carol_path, feed_path});

  EXPECT_GE(metric("alertrouter_blocked_pages_total", {{"schedule", "oncall-primary"}}), 1);
  EXPECT_EQ(
      metric("alertrouter_alerts_received_total", {{"ownership", "owned"}, {"status", "firing"}}),
      0);
  EXPECT_GE(
      metric("alertrouter_alerts_received_total", {{"ownership", "user"}, {"status", "firing"}}),
      1);
}

// Team infrastructure has no project label; team="wmcs" makes it owned, so it pages.
TEST_F(alertrouterd_e2e, owned_infrastructure_alert_without_project_pages_the_person_on_call) {
  auto am = start_alertmanager("alertmanager");
  am->post({wmcs_alerts::cloudvirt_down()});

  ASSERT_TRUE(wait_for_kind(alice_path, "page", 1));
  ASSERT_TRUE(wait_for_more_webhooks(1));
  const auto pages = sink_.requests_to(alice_path);
  ASSERT_EQ(pages.size(), 1u);
  expect_page_to_alice(pages[0], "CloudVirtDown", "owned");
  const auto labels = notification_body(pages[0]).at("alerts").at(0).at("labels");
  EXPECT_FALSE(labels.as_object().contains("project"));
  EXPECT_EQ(json_string(labels, "instance"), "cloudvirt1031");
  expect_no_requests_to({bob_path, carol_path, feed_path, deployment_prep_path});
}

// Resolving sends exactly one resolve, to the person who was paged, even after the schedule has
// handed over to someone else; the new on-call person gets the next page.
TEST_F(alertrouterd_e2e, resolve_goes_once_to_whoever_was_paged) {
  auto am = start_alertmanager("alertmanager");
  const auto alert = wmcs_alerts::cloudvirt_down();
  am->post({alert});
  ASSERT_TRUE(wait_for_kind(alice_path, "page", 1));
  const std::string page_id =
      json_string(notification_body(sink_.requests_to(alice_path)[0]), "id");

  // Handoff: bob is on call from now on.
  write_config(router_config_yaml(sink_, "bob"));
  const auto reload = daemon_->reload();
  ASSERT_TRUE(reload) << reload.error().message();
  ASSERT_EQ(reload->status, 200u) << reload->body;

  am->post({wmcs_alerts::resolved(alert)});
  ASSERT_TRUE(wait_for_kind(alice_path, "resolve", 1));

  // Barrier: a new page, after the resolve, goes to bob.
  am->post({wmcs_alerts::metricsinfra_alertmanager_down()});
  ASSERT_TRUE(wait_for_kind(bob_path, "page", 1));
  ASSERT_TRUE(wait_for_more_webhooks(1));

  const auto to_alice = sink_.requests_to(alice_path);
  ASSERT_EQ(to_alice.size(), 2u) << "one page, one resolve";
  const auto resolve = notification_body(to_alice[1]);
  EXPECT_EQ(json_string(resolve, "kind"), "resolve");
  EXPECT_EQ(json_string(resolve.at("target"), "person"), "alice");
  EXPECT_NE(json_string(resolve, "id"), page_id);
  EXPECT_EQ(to_alice[1].header("Idempotency-Key"), json_string(resolve, "id"));
  ASSERT_EQ(resolve.at("alerts").as_array().size(), 1u);
  EXPECT_EQ(json_string(resolve.at("alerts").at(0), "status"), "resolved");
  EXPECT_EQ(json_string(resolve.at("alerts").at(0).at("labels"), "alertname"), "CloudVirtDown");

  const auto to_bob = sink_.requests_to(bob_path);
  ASSERT_EQ(to_bob.size(), 1u);
  EXPECT_EQ(json_string(notification_body(to_bob[0]), "kind"), "page");
  EXPECT_EQ(json_string(notification_body(to_bob[0]).at("target"), "person"), "bob");
  expect_no_requests_to({carol_path, feed_path, deployment_prep_path});

  EXPECT_EQ(metric("alertrouter_incidents_resolved_total"), 1);
  ASSERT_TRUE(daemon_->wait_for_metric("alertrouter_notifications_total",
                                       {{"kind", "resolve"}, {"result", "delivered"}}, 1,
                                       wait_limit));
  EXPECT_EQ(delivered("resolve"), 1);
}

// Two Alertmanagers that know nothing of each other both send every notification.
TEST_F(alertrouterd_e2e, two_independent_alertmanagers_produce_one_page_and_one_resolve) {
  auto a = start_alertmanager("alertmanager-a");
  auto b = start_alertmanager("alertmanager-b");
  one_page_and_one_resolve_from_two(*a, *b);
  // Both really sent: the daemon got webhooks from both (each counts its own notifications).
  EXPECT_GE(
      metric_sum(a->metrics(), "alertmanager_notifications_total", {{"integration", "webhook"}})
          .value_or(0),
      2);
  EXPECT_GE(
      metric_sum(b->metrics(), "alertmanager_notifications_total", {{"integration", "webhook"}})
          .value_or(0),
      2);
}

// A two-peer Alertmanager cluster: the second peer holds back by peer_timeout and sends only
// what the gossiped notification log says is unsent; whatever gets through twice is deduped.
TEST_F(alertrouterd_e2e, two_peer_cluster_produces_one_page_and_one_resolve) {
  alertmanager_options options;
  options.cluster_port = pick_free_port();
  auto a = start_alertmanager("alertmanager-a", options);
  options.cluster_port = pick_free_port();
  options.peers = {a->cluster_address()};
  auto b = start_alertmanager("alertmanager-b", options);
  one_page_and_one_resolve_from_two(*a, *b);
  EXPECT_EQ(metric_sum(a->metrics(), "alertmanager_cluster_members"), 2);
}

// A receiver that answers 503 three times, then 200, gets the page: four attempts with one
// Idempotency-Key and one notification id, counted as three retries and one delivery.
TEST_F(alertrouterd_e2e, failing_receiver_gets_the_notification_after_retries_with_the_same_id) {
  sink_.fail_next(std::string(alice_path), 3, 503);
  auto am = start_alertmanager("alertmanager");
  am->post({wmcs_alerts::cloudvirt_down()});

  ASSERT_TRUE(sink_.wait_for_count(alice_path, 4, wait_limit));
  ASSERT_TRUE(daemon_->wait_for_metric("alertrouter_notifications_total",
                                       {{"kind", "page"}, {"result", "delivered"}}, 1, wait_limit));
  ASSERT_TRUE(wait_for_more_webhooks(1));

  const auto attempts = sink_.requests_to(alice_path);
  ASSERT_EQ(attempts.size(), 4u);
  const std::string key = attempts[0].header("Idempotency-Key");
  EXPECT_FALSE(key.empty());
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    SCOPED_TRACE("attempt " + std::to_string(i + 1));
    EXPECT_EQ(attempts[i].answered, i < 3 ? 503u : 200u);
    EXPECT_EQ(attempts[i].header("Idempotency-Key"), key);
    EXPECT_EQ(json_string(notification_body(attempts[i]), "id"), key);
    EXPECT_EQ(json_string(notification_body(attempts[i]), "kind"), "page");
  }
  EXPECT_EQ(delivered("page"), 1);
  EXPECT_EQ(metric("alertrouter_delivery_retries_total", {{"channel", "webhook"}}), 3);
  EXPECT_EQ(metric("alertrouter_delivery_attempts_total", {{"channel", "webhook"}}), 4);
  EXPECT_EQ(metric("alertrouter_notifications_total", {{"result", "gave_up"}}), 0);
}

// /metrics counts exactly what happened, for webhooks posted straight to the daemon: accepted
// and rejected webhooks, duplicates, incidents opened and resolved, notifications delivered.
TEST_F(alertrouterd_e2e, metrics_count_what_happened) {
  const auto owned = wmcs_alerts::cloudvirt_down();
  const auto user = wmcs_alerts::deployment_prep_instance_down();
  const auto firing = encode_webhook({owned, user});

  const auto first = daemon_->post_webhook(firing);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200u) << first->body;
  const auto answer = json::parse(first->body);
  EXPECT_EQ(answer.at("received").to_number<int>(), 2);
  EXPECT_EQ(answer.at("new").to_number<int>(), 2);
  EXPECT_EQ(answer.at("duplicates").to_number<int>(), 0);

  const auto again = daemon_->post_webhook(firing);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->status, 200u) << again->body;
  EXPECT_EQ(json::parse(again->body).at("duplicates").to_number<int>(), 2);
  EXPECT_EQ(json::parse(again->body).at("new").to_number<int>(), 0);

  const auto bad = daemon_->post_webhook("{\"version\":\"4\",\"alerts\":[");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400u);

  const auto resolve = daemon_->post_webhook(
      encode_webhook({wmcs_alerts::resolved(owned), wmcs_alerts::resolved(user)}));
  ASSERT_TRUE(resolve);
  ASSERT_EQ(resolve->status, 200u) << resolve->body;
  EXPECT_EQ(json::parse(resolve->body).at("resolved").to_number<int>(), 2);

  ASSERT_TRUE(wait_for_kind(alice_path, "resolve", 1));
  ASSERT_TRUE(wait_for_kind(deployment_prep_path, "resolve", 1));
  ASSERT_TRUE(daemon_->wait_for_metric("alertrouter_notifications_total", {{"result", "delivered"}},
                                       4, wait_limit));

  EXPECT_EQ(metric("alertrouter_webhooks_received_total", {{"result", "accepted"}}), 3);
  EXPECT_EQ(metric("alertrouter_webhooks_received_total", {{"result", "bad_request"}}), 1);
  EXPECT_EQ(
      metric("alertrouter_alerts_received_total", {{"ownership", "owned"}, {"status", "firing"}}),
      2);
  EXPECT_EQ(
      metric("alertrouter_alerts_received_total", {{"ownership", "user"}, {"status", "resolved"}}),
      1);
  EXPECT_EQ(metric("alertrouter_alerts_duplicate_total"), 2);
  EXPECT_EQ(metric("alertrouter_incidents_opened_total"), 2);
  EXPECT_EQ(metric("alertrouter_incidents_resolved_total"), 2);
  EXPECT_EQ(metric("alertrouter_incidents_open"), 0);
  EXPECT_EQ(delivered("page"), 2);
  EXPECT_EQ(delivered("resolve"), 2);
  EXPECT_EQ(metric("alertrouter_blocked_pages_total", {{"schedule", "oncall-primary"}}), 1);
  EXPECT_EQ(metric("alertrouter_config_last_reload_successful"), 1);
  EXPECT_EQ(sink_.requests().size(), 4u);

  // And the daemon stops cleanly on SIGTERM.
  EXPECT_EQ(daemon_->process().terminate(), 0);
}

// A configuration that does not load (via POST /-/reload or SIGHUP) is refused: the daemon keeps
// routing with the old one and says so in /metrics; a good one is then taken.
TEST_F(alertrouterd_e2e, bad_reload_keeps_routing_with_the_old_config) {
  write_config(router_config_yaml(sink_, "bob") + "no_such_key: true\n");
  const auto reload = daemon_->reload();
  ASSERT_TRUE(reload) << reload.error().message();
  EXPECT_TRUE(reload->status == 400 || reload->status == 500) << reload->status;
  EXPECT_NE(reload->body.find("no_such_key"), std::string::npos) << reload->body;
  EXPECT_EQ(metric("alertrouter_config_last_reload_successful"), 0);
  EXPECT_EQ(metric("alertrouter_config_reloads_total", {{"result", "failure"}}), 1);

  // SIGHUP with a config that does not even parse.
  write_config("routes: [\n");
  daemon_->process().signal(SIGHUP);
  ASSERT_TRUE(daemon_->wait_for_metric("alertrouter_config_reloads_total", {{"result", "failure"}},
                                       2, wait_limit));
  EXPECT_TRUE(daemon_->process().running());
  EXPECT_EQ(metric("alertrouter_config_last_reload_successful"), 0);

  // Still the old config: alice is on call.
  auto am = start_alertmanager("alertmanager");
  am->post({wmcs_alerts::cloudvirt_down()});
  ASSERT_TRUE(wait_for_kind(alice_path, "page", 1));
  expect_page_to_alice(sink_.requests_to(alice_path)[0], "CloudVirtDown", "owned");

  // A good config by SIGHUP is taken: bob gets the next page.
  write_config(router_config_yaml(sink_, "bob"));
  const double successes = metric("alertrouter_config_reloads_total", {{"result", "success"}});
  daemon_->process().signal(SIGHUP);
  ASSERT_TRUE(daemon_->wait_for_metric("alertrouter_config_reloads_total", {{"result", "success"}},
                                       successes + 1, wait_limit));
  EXPECT_EQ(metric("alertrouter_config_last_reload_successful"), 1);
  am->post({wmcs_alerts::metricsinfra_alertmanager_down()});
  ASSERT_TRUE(wait_for_kind(bob_path, "page", 1));
  EXPECT_EQ(sink_.requests_to(alice_path).size(), 1u);
}

// The operational endpoints answer, and the on-call API names the person being paged.
TEST_F(alertrouterd_e2e, health_and_api_endpoints_answer) {
  for (const auto* path : {"/-/healthy", "/-/ready"}) {
    const auto r = daemon_->get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200u) << path;
  }
  const auto oncall = daemon_->get("/api/v1/oncall");
  ASSERT_TRUE(oncall);
  ASSERT_EQ(oncall->status, 200u);
  boost::system::error_code ec;
  json::parse(oncall->body, ec);
  EXPECT_FALSE(ec) << oncall->body;
  EXPECT_NE(oncall->body.find("oncall-primary"), std::string::npos) << oncall->body;
  EXPECT_NE(oncall->body.find("alice"), std::string::npos) << oncall->body;
  EXPECT_EQ(metric("alertrouter_oncall", {{"schedule", "oncall-primary"}, {"person", "alice"}}), 1);

  const auto before = daemon_->get("/api/v1/incidents");
  ASSERT_TRUE(before);
  ASSERT_EQ(before->status, 200u);
  json::parse(before->body, ec);
  EXPECT_FALSE(ec) << before->body;
  EXPECT_EQ(before->body.find("CloudVirtDown"), std::string::npos);

  ASSERT_EQ(daemon_->post_webhook(encode_webhook({wmcs_alerts::cloudvirt_down()}))->status, 200u);
  const auto after = daemon_->get("/api/v1/incidents");
  ASSERT_TRUE(after);
  EXPECT_NE(after->body.find("CloudVirtDown"), std::string::npos) << after->body;
}

}  // namespace
}  // namespace alertrouter::integration
