#pragma once

// The fixture shared by the alertrouterd end-to-end tests: a temp dir, a recording sink standing
// in for every contact, a WMCS-like config pointing at the sink, and the daemon running it.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/integration/alertmanager_process.h"
#include "tests/integration/alertrouterd_process.h"
#include "tests/integration/json_text.h"
#include "tests/integration/recording_sink.h"
#include "tests/integration/temp_dir.h"

#ifndef ALERTROUTERD_PATH
#error "ALERTROUTERD_PATH must name the built alertrouterd"
#endif

namespace alertrouter::integration {

using namespace std::chrono_literals;

// Bound on each wait for something the daemon or Alertmanager should do; reached only when it is
// broken. Alertmanager flushes within a second and the config's retries (backoff 100 ms, capped
// at 1 s) take a few seconds at most, so this is a generous margin, not a timing assumption.
inline constexpr auto wait_limit = 20s;

// Sink paths: one per contact of the config below.
inline constexpr std::string_view alice_path = "/person/alice";
inline constexpr std::string_view bob_path = "/person/bob";
inline constexpr std::string_view carol_path = "/person/carol";
inline constexpr std::string_view feed_path = "/receiver/cloud-feed";
inline constexpr std::string_view deployment_prep_path = "/project/deployment-prep";

// The WMCS routing policy in small: owned projects and infrastructure (team="wmcs", no project)
// page whoever is on call in `oncall-primary`; other owned alerts go to the feed; user projects
// go to their own contacts. The `pages` route deliberately also matches user-project pages (the
// `user-projects` route continues into it): the daemon must still never page the schedule for
// them (README: "A schedule target is never paged for a user-project alert").
//
// `oncall-primary` rotates bob and carol weekly, but an override makes `on_call` the person on
// call for every instant of any test run. Limits: bodies up to 1 MiB, a request must arrive
// within 2 s.
inline std::string router_config_yaml(const recording_sink& sink, std::string_view on_call) {
  const auto url = [&](std::string_view path) { return "\"" + sink.url(path) + "\""; };
  // clang-format off
  return "listen: 127.0.0.1:9595\n"
         "timezone: UTC\n"
         "ownership:\n"
         "  label: project\n"
         "  owned: [tools, toolsbeta, admin, cloudinfra, metricsinfra, paws, quarry]\n"
         "  owned_regex: ['tools\\..+']\n"
         "  infrastructure: ['team=\"wmcs\"']\n"
         "people:\n"
         "  alice: {webhook: " + url(alice_path) + ", irc: alice}\n"
         "  bob:   {webhook: " + url(bob_path) + ", irc: bob}\n"
         "  carol: {webhook: " + url(carol_path) + ", irc: carol}\n"
         "schedules:\n"
         "  oncall-primary:\n"
         "    layers:\n"
         "      - name: weekly\n"
         "        members: [bob, carol]\n"
         "        start: 2026-01-07T16:00\n"
         "        shift: 1w\n"
         "    overrides:\n"
         "      - {person: " + std::string(on_call) +
         ", from: 2000-01-01T00:00, to: 2199-01-01T00:00}\n"
         "receivers:\n"
         "  cloud-feed: {webhook: " + url(feed_path) + "}\n"
         "projects:\n"
         "  deployment-prep: {webhook: " + url(deployment_prep_path) + "}\n"
         "routes:\n"
         "  - name: user-projects\n"
         "    match: ['ownership=\"user\"']\n"
         "    notify: [project]\n"
         "    continue: true\n"
         "  - name: pages\n"
         "    match: ['severity=\"page\"']\n"
         "    notify: [schedule:oncall-primary]\n"
         "  - name: owned-other\n"
         "    match: ['ownership=\"owned\"']\n"
         "    notify: [receiver:cloud-feed]\n"
         "  - name: fallback\n"
         "    notify: [receiver:cloud-feed]\n"
         "dedup:\n"
         "  retention: 1h\n"
         // Small enough for the adversarial tests to reach quickly.
         "limits:\n"
         "  max_body: 1MiB\n"
         "  read_timeout: 2s\n"
         "  idle_timeout: 5s\n"
         // Retries within a second, so a failing receiver recovers within the test.
         "delivery:\n"
         "  initial_backoff: 100ms\n"
         "  max_backoff: 1s\n";
  // clang-format on
}

class router_fixture : public ::testing::Test {
 protected:
  router_fixture()
      : dir_("alertrouterd-it"),
        sink_({std::string(alice_path), std::string(bob_path), std::string(carol_path),
               std::string(feed_path), std::string(deployment_prep_path)}) {}

  void SetUp() override {
    if (!alertmanager_available()) {
      GTEST_SKIP() << alertmanager_binary << " is not installed (Debian: prometheus-alertmanager)";
    }
    write_config(router_config_yaml(sink_, "alice"));
    daemon_ = std::make_unique<alertrouterd_process>(ALERTROUTERD_PATH, config_path(), dir_.path());
  }

  // The daemon must stop cleanly on SIGTERM after every test: exit 0 (a crash, or a sanitizer
  // report at exit, shows here).
  void TearDown() override {
    if (daemon_) {
      EXPECT_EQ(daemon_->process().terminate(), 0);
    }
  }

  std::filesystem::path config_path() const { return dir_.path() / "alertrouter.yaml"; }
  void write_config(std::string_view yaml) { dir_.write("alertrouter.yaml", yaml); }

  // An Alertmanager whose webhook receiver is the daemon.
  std::unique_ptr<alertmanager_process> start_alertmanager(std::string name,
                                                           alertmanager_options options = {}) {
    options.webhook_url = daemon_->webhook_url();
    return std::make_unique<alertmanager_process>(dir_.path(), std::move(name), std::move(options));
  }

  // Waits until the daemon has accepted `more` webhooks beyond those accepted so far. Used after
  // the event under test as a barrier: anything the earlier webhooks caused has been decided
  // (and, the sink being local and fast, delivered) by the time a later one is processed.
  bool wait_for_more_webhooks(double more) {
    const double now =
        daemon_->metric("alertrouter_webhooks_received_total", {{"result", "accepted"}})
            .value_or(0);
    return daemon_->wait_for_metric("alertrouter_webhooks_received_total", {{"result", "accepted"}},
                                    now + more, wait_limit);
  }

  temp_dir dir_;
  recording_sink sink_;
  std::unique_ptr<alertrouterd_process> daemon_;
};

// The JSON body of a notification the sink recorded; fails the test if it is not JSON.
inline boost::json::value notification_body(const recorded_request& r) {
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  EXPECT_FALSE(ec) << "not JSON: " << r.body;
  return v;
}

}  // namespace alertrouter::integration
