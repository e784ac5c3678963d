// alertrouterctl: the operator's view of a configuration. Who is on call, what the coming
// shifts are, where an alert would go, and whether a file is valid, without a running daemon;
// and whether the daemon's state store is sound.
#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "daemon/ctl.h"
#include "routing/time.h"

namespace {

using alertrouter::routing::sys_seconds;

sys_seconds now() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

// Parses --at/--from; prints a usage error and returns nullopt when malformed.
std::optional<sys_seconds> instant(const std::string& text, const char* flag) {
  if (text.empty()) return now();
  auto t = alertrouter::routing::parse_rfc3339(text);
  if (!t) {
    std::cerr << flag << ": '" << text << "' is not an RFC 3339 time (e.g. 2026-12-02T16:00:00Z)\n";
    return std::nullopt;
  }
  return std::chrono::floor<std::chrono::seconds>(*t);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"alertrouterctl: inspect an alertrouter configuration"};
  app.set_version_flag("--version", std::string("alertrouterctl ") + ALERTROUTER_VERSION);
  app.require_subcommand(1);

  std::string check_file;
  auto* check = app.add_subcommand("check-config", "Validate a configuration file");
  check->add_option("FILE", check_file, "configuration file")->required();

  alertrouter::daemon::oncall_options oncall;
  std::string oncall_at, oncall_schedule;
  auto* oc = app.add_subcommand("oncall", "Who is on call (now or at --at)");
  oc->add_option("--config", oncall.config_file, "configuration file")->required();
  oc->add_option("--at", oncall_at, "RFC 3339 instant (default: now)");
  oc->add_option("--schedule", oncall_schedule, "only this schedule");
  oc->add_flag("--json", oncall.json, "JSON output");

  alertrouter::daemon::schedule_options sched;
  std::string sched_from;
  auto* sc = app.add_subcommand("schedule", "The coming shifts of one schedule");
  sc->add_option("--config", sched.config_file, "configuration file")->required();
  sc->add_option("--schedule", sched.schedule, "schedule name")->required();
  sc->add_option("--from", sched_from, "RFC 3339 instant (default: now)");
  sc->add_option("--weeks", sched.weeks, "how many weeks to show")->capture_default_str();
  sc->add_flag("--json", sched.json, "JSON output");

  alertrouter::daemon::route_test_options rt;
  std::string rt_at;
  auto* rtc = app.add_subcommand("route-test", "Where an alert with these labels would go");
  rtc->add_option("--config", rt.config_file, "configuration file")->required();
  rtc->add_option("--at", rt_at, "RFC 3339 instant (default: now)");
  rtc->add_flag("--json", rt.json, "JSON output");
  rtc->add_option("LABEL=VALUE", rt.labels, "the alert's labels")->required();

  std::string state_dir;
  auto* state = app.add_subcommand("state", "Inspect alertrouterd's state store");
  state->require_subcommand(1);
  auto* state_chk = state->add_subcommand(
      "check", "Check the store's integrity and report its contents (read-only)");
  state_chk->add_option("--state-dir", state_dir, "the daemon's state directory")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every other parse error is a usage error, exit 2.
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (state_chk->parsed()) {
    return alertrouter::daemon::state_check(state_dir, std::cout, std::cerr);
  }
  if (check->parsed())
    return alertrouter::daemon::check_config(check_file, now(), std::cout, std::cerr);
  if (oc->parsed()) {
    auto at = instant(oncall_at, "--at");
    if (!at) return 2;
    oncall.at = *at;
    if (!oncall_schedule.empty()) oncall.schedule = oncall_schedule;
    return alertrouter::daemon::oncall(oncall, std::cout, std::cerr);
  }
  if (sc->parsed()) {
    auto from = instant(sched_from, "--from");
    if (!from) return 2;
    sched.from = *from;
    return alertrouter::daemon::schedule(sched, std::cout, std::cerr);
  }
  auto at = instant(rt_at, "--at");
  if (!at) return 2;
  rt.at = *at;
  return alertrouter::daemon::route_test(rt, std::cout, std::cerr);
}
