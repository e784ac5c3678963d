#include "config/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "config/duration.h"

namespace alertrouter::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Every diagnostic, printed as the CLI prints it; failure messages show all of them.
std::string dump(const load_result& r) {
  std::string out;
  for (const diagnostic& d : r.diagnostics) out += d.to_string() + "\n";
  return out;
}

load_result load(std::string_view yaml) { return load_string(yaml, "test.yaml"); }

std::vector<const diagnostic*> of_level(const load_result& r, severity level) {
  std::vector<const diagnostic*> out;
  for (const diagnostic& d : r.diagnostics) {
    if (d.level == level) out.push_back(&d);
  }
  return out;
}

// A small valid configuration; tests below each break one thing in a copy of it.
constexpr std::string_view valid_yaml = R"yaml(people:
  alice: {webhook: "http://127.0.0.1:9000/alice"}
  bob: {email: bob@example.org}
schedules:
  clinic:
    layers:
      - members: [alice, bob]
        start: 2026-01-07T16:00
receivers:
  feed: {webhook: "http://127.0.0.1:9000/feed"}
routes:
  - name: all
    notify: [schedule:clinic, receiver:feed]
)yaml";

TEST(loader, valid_configuration_loads_without_diagnostics) {
  const load_result r = load(valid_yaml);
  ASSERT_TRUE(r.value.has_value()) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  const config& c = *r.value;
  EXPECT_EQ(c.source, "test.yaml");
  ASSERT_EQ(c.people.size(), 2u);
  EXPECT_EQ(c.people[0].name, "alice");
  EXPECT_EQ(c.people[0].reach.webhook, "http://127.0.0.1:9000/alice");
  EXPECT_EQ(c.people[1].reach.email, "bob@example.org");
  EXPECT_EQ(c.people[1].where.line, 3);
  EXPECT_EQ(c.people[1].where.column, 3);
  ASSERT_NE(c.find_schedule("clinic"), nullptr);
  EXPECT_EQ(c.find_schedule("nope"), nullptr);
  EXPECT_EQ(c.find_person("bob"), &c.people[1]);
  EXPECT_EQ(c.find_receiver("feed"), &c.receivers[0]);
  EXPECT_EQ(c.find_project("feed"), nullptr);
}

TEST(loader, defaults_apply_when_keys_are_omitted) {
  const load_result r = load(valid_yaml);
  ASSERT_TRUE(r.value.has_value()) << dump(r);
  const config& c = *r.value;
  EXPECT_EQ(c.listen, "127.0.0.1:9595");
  EXPECT_EQ(c.timezone, "UTC");
  EXPECT_EQ(c.ownership.label, "project");
  EXPECT_TRUE(c.ownership.owned.empty());
  EXPECT_EQ(c.dedup.retention, std::chrono::hours(24));
  EXPECT_EQ(c.dedup.max_incidents, 1'000'000u);
  EXPECT_EQ(c.limits.max_body, 4u * 1024 * 1024);
  EXPECT_EQ(c.limits.max_connections, 1024u);
  EXPECT_EQ(c.limits.read_timeout, std::chrono::seconds(10));
  EXPECT_EQ(c.limits.idle_timeout, std::chrono::seconds(60));
  EXPECT_EQ(c.limits.max_pending_notifications, 100'000u);
  EXPECT_EQ(c.auth.bearer_token_file, "");
  EXPECT_EQ(c.auth.where.line, 0);
  EXPECT_EQ(c.delivery.connect_timeout, std::chrono::seconds(5));
  EXPECT_EQ(c.delivery.request_timeout, std::chrono::seconds(10));
  EXPECT_EQ(c.delivery.max_attempts, 0);
  EXPECT_EQ(c.delivery.give_up_after, std::chrono::hours(12));
  EXPECT_EQ(c.state_dir, "/var/lib/alertrouter");
  EXPECT_EQ(c.retention, std::chrono::hours(24 * 7));
  EXPECT_EQ(c.commit_delay, std::chrono::milliseconds(1));
  EXPECT_EQ(c.delivery.initial_backoff, std::chrono::milliseconds(500));
  EXPECT_EQ(c.delivery.max_backoff, std::chrono::minutes(1));
  EXPECT_EQ(c.delivery.max_in_flight_per_destination, 4u);
  const schedule& s = c.schedules.at(0);
  EXPECT_EQ(s.timezone, "UTC");
  const layer& l = s.layers.at(0);
  EXPECT_EQ(l.name, "layer-1");
  EXPECT_EQ(l.shift, std::chrono::hours(24 * 7));
  EXPECT_FALSE(l.active.has_value());
  EXPECT_EQ(l.start,
            local_time{date::local_days{date::year{2026} / 1 / 7}} + std::chrono::hours(16));
  EXPECT_FALSE(c.routes.at(0).continue_matching);
}

TEST(loader, parses_every_key_of_the_issue_sample) {
  const load_result r = load(R"yaml(listen: 0.0.0.0:8080
timezone: Europe/Berlin
ownership:
  label: vps_project
  owned: [tools, paws]
  owned_regex: ['tools\..+']
  infrastructure: ['team="wmcs"', 'cluster!~"test.*"']
people:
  dave: {webhook: "https://example.org/dave", email: dave@example.org, irc: dave}
  erin: {irc: erin}
  heidi: {email: heidi@example.org}
schedules:
  oncall:
    timezone: America/New_York
    layers:
      - name: emea
        members: [dave, erin]
        start: 2026-01-07T16:00:30
        shift: 3d12h
        active: "03:00-15:00"
      - members: [erin]
        start: 2026-01-07T16:00
        active: "15:00-24:00"
    overrides:
      - {person: heidi, from: 2026-12-24T00:00, to: 2026-12-27T00:00}
      - {person: dave, from: 2026-12-27T00:00, to: 2026-12-28T00:00}
  berlin:
    layers: [{members: [heidi], start: 2026-01-07T09:00}]
receivers:
  cloud-feed: {webhook: "http://127.0.0.1:9000/feed"}
projects:
  deployment-prep: {webhook: "http://127.0.0.1:9000/deployment-prep"}
routes:
  - name: owned-page
    match: ['ownership="owned"', 'severity="page"']
    notify: [schedule:oncall, receiver:cloud-feed]
    continue: true
  - match: ['ownership="user"']
    notify: [project]
  - name: fallback
    notify: [receiver:cloud-feed]
dedup:
  retention: 2h
  max_incidents: 5000
)yaml");
  ASSERT_TRUE(r.value.has_value()) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  const config& c = *r.value;
  EXPECT_EQ(c.listen, "0.0.0.0:8080");
  EXPECT_EQ(c.timezone, "Europe/Berlin");
  EXPECT_EQ(c.ownership.label, "vps_project");
  EXPECT_THAT(c.ownership.owned, ElementsAre("tools", "paws"));
  EXPECT_THAT(c.ownership.owned_regex, ElementsAre(R"(tools\..+)"));
  ASSERT_EQ(c.ownership.infrastructure.size(), 2u);
  EXPECT_EQ(c.ownership.infrastructure[1].name, "cluster");
  EXPECT_EQ(c.ownership.infrastructure[1].op, matcher_op::not_regex);
  EXPECT_EQ(c.ownership.infrastructure[1].value, "test.*");
  EXPECT_EQ(c.ownership.infrastructure[1].where.line, 7);
  EXPECT_EQ(c.ownership.infrastructure[1].where.column, 35);
  EXPECT_EQ(c.people[0].reach.irc, "dave");
  EXPECT_EQ(c.people[1].reach.webhook, "");

  ASSERT_EQ(c.schedules.size(), 2u);
  const schedule& oncall = c.schedules[0];
  EXPECT_EQ(oncall.timezone, "America/New_York");
  ASSERT_EQ(oncall.layers.size(), 2u);
  EXPECT_EQ(oncall.layers[0].name, "emea");
  EXPECT_THAT(oncall.layers[0].members, ElementsAre("dave", "erin"));
  EXPECT_EQ(oncall.layers[0].start.time_since_epoch() % std::chrono::minutes(1),
            std::chrono::seconds(30));
  EXPECT_EQ(oncall.layers[0].shift, std::chrono::hours(84));
  ASSERT_TRUE(oncall.layers[0].active.has_value());
  EXPECT_EQ(oncall.layers[0].active->begin, std::chrono::hours(3));
  EXPECT_EQ(oncall.layers[0].active->end, std::chrono::hours(15));
  EXPECT_EQ(oncall.layers[1].name, "layer-2");
  EXPECT_EQ(oncall.layers[1].active->end, std::chrono::hours(24));
  ASSERT_EQ(oncall.overrides.size(), 2u);
  EXPECT_EQ(oncall.overrides[0].person, "heidi");
  EXPECT_EQ(oncall.overrides[0].to - oncall.overrides[0].from, std::chrono::hours(72));
  EXPECT_EQ(oncall.overrides[1].where.line, 26);
  // A schedule without `timezone` inherits the top-level one.
  EXPECT_EQ(c.schedules[1].timezone, "Europe/Berlin");

  EXPECT_EQ(c.projects.at(0).name, "deployment-prep");
  ASSERT_EQ(c.routes.size(), 3u);
  EXPECT_EQ(c.routes[0].where.line, 34);
  EXPECT_TRUE(c.routes[0].continue_matching);
  ASSERT_EQ(c.routes[0].notify.size(), 2u);
  EXPECT_EQ(c.routes[0].notify[0].type, target_type::schedule);
  EXPECT_EQ(c.routes[0].notify[0].name, "oncall");
  EXPECT_EQ(c.routes[0].notify[1].type, target_type::receiver);
  EXPECT_EQ(c.routes[1].name, "route-2");
  EXPECT_EQ(c.routes[1].notify.at(0).type, target_type::project);
  EXPECT_EQ(c.routes[1].notify.at(0).name, "");
  EXPECT_TRUE(c.routes[2].match.empty());
  EXPECT_EQ(c.dedup.retention, std::chrono::hours(2));
  EXPECT_EQ(c.dedup.max_incidents, 5000u);
}

TEST(loader, parses_the_daemon_settings) {
  std::string yaml(valid_yaml);
  yaml += R"yaml(limits:
  max_body: 512KiB
  max_connections: 64
  read_timeout: 2m
  idle_timeout: 15s
  max_pending: 250
auth:
  bearer_token_file: /etc/alertrouter/token
delivery:
  connect_timeout: 250ms
  request_timeout: 1m30s
  max_attempts: 3
  initial_backoff: 1s500ms
  max_backoff: 1h
  max_in_flight_per_destination: 16
  give_up_after: 2h
state_dir: /srv/alertrouter
retention: 30d
commit_delay: 0ms
)yaml";
  const load_result r = load(yaml);
  ASSERT_TRUE(r.value.has_value()) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  const config& c = *r.value;
  EXPECT_EQ(c.limits.max_body, 512u * 1024);
  EXPECT_EQ(c.limits.max_connections, 64u);
  EXPECT_EQ(c.limits.read_timeout, std::chrono::minutes(2));
  EXPECT_EQ(c.limits.idle_timeout, std::chrono::seconds(15));
  EXPECT_EQ(c.limits.max_pending_notifications, 250u);
  EXPECT_EQ(c.auth.bearer_token_file, "/etc/alertrouter/token");
  EXPECT_EQ(c.auth.where.line, 21);
  EXPECT_EQ(c.auth.where.column, 22);
  EXPECT_EQ(c.delivery.connect_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(c.delivery.request_timeout, std::chrono::seconds(90));
  EXPECT_EQ(c.delivery.max_attempts, 3);
  EXPECT_EQ(c.delivery.initial_backoff, std::chrono::milliseconds(1500));
  EXPECT_EQ(c.delivery.max_backoff, std::chrono::hours(1));
  EXPECT_EQ(c.delivery.max_in_flight_per_destination, 16u);
  EXPECT_EQ(c.delivery.give_up_after, std::chrono::hours(2));
  EXPECT_EQ(c.state_dir, "/srv/alertrouter");
  EXPECT_EQ(c.retention, std::chrono::days(30));
  EXPECT_EQ(c.commit_delay, std::chrono::milliseconds(0));
}

// limits.max_pending was called max_pending_notifications before the outbox: configurations
// that use the old name keep working, with a warning saying the new one.
TEST(loader, max_pending_notifications_is_the_old_name_of_max_pending) {
  std::string yaml(valid_yaml);
  yaml += "limits:\n  max_pending_notifications: 250\n";
  const load_result r = load(yaml);
  ASSERT_TRUE(r.value.has_value()) << dump(r);
  EXPECT_EQ(r.value->limits.max_pending_notifications, 250u);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].level, severity::warning);
  EXPECT_NE(r.diagnostics[0].message.find("old name of limits.max_pending"), std::string::npos)
      << dump(r);
}

TEST(loader, daemon_settings_accept_their_bounds) {
  std::string yaml(valid_yaml);
  yaml += R"yaml(limits:
  max_body: 1GiB
  max_connections: 1000000
  read_timeout: 1s
  idle_timeout: 10m
  max_pending: 100000000
delivery:
  connect_timeout: 100ms
  request_timeout: 10m
  max_attempts: 100
  initial_backoff: 10ms
  max_backoff: 10ms
  max_in_flight_per_destination: 1000
)yaml";
  const load_result r = load(yaml);
  ASSERT_TRUE(r.value.has_value()) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  const config& c = *r.value;
  EXPECT_EQ(c.limits.max_body, std::size_t{1} << 30);
  EXPECT_EQ(c.limits.max_connections, 1'000'000u);
  EXPECT_EQ(c.limits.read_timeout, std::chrono::seconds(1));
  EXPECT_EQ(c.limits.idle_timeout, std::chrono::minutes(10));
  EXPECT_EQ(c.limits.max_pending_notifications, 100'000'000u);
  EXPECT_EQ(c.delivery.connect_timeout, std::chrono::milliseconds(100));
  EXPECT_EQ(c.delivery.request_timeout, std::chrono::minutes(10));
  EXPECT_EQ(c.delivery.max_attempts, 100);
  // initial == max is allowed: a constant delay.
  EXPECT_EQ(c.delivery.initial_backoff, std::chrono::milliseconds(10));
  EXPECT_EQ(c.delivery.max_backoff, std::chrono::milliseconds(10));
  EXPECT_EQ(c.delivery.max_in_flight_per_destination, 1000u);
}

TEST(loader, accepts_size_forms) {
  const std::pair<const char*, std::size_t> good[] = {
      {"1024", 1024},         {"1024B", 1024},           {"1KiB", 1024},
      {"512KiB", 512 * 1024}, {"4MiB", 4 * 1024 * 1024}, {"0001GiB", std::size_t{1} << 30},
      {"4194304", 4194304}};
  for (const auto& [text, bytes] : good) {
    const load_result r = load(std::string(valid_yaml) + "limits:\n  max_body: \"" + text + "\"\n");
    ASSERT_TRUE(r.value.has_value()) << text << "\n" << dump(r);
    EXPECT_EQ(r.value->limits.max_body, bytes) << text;
  }
  for (const char* text :
       {"4MB", "4mib", "4 MiB", "4MiB ", "-4MiB", "+4MiB", "4.5MiB", "MiB", "4MiBB", "4KB", "4k",
        "0x1000", "1e6", "", "999999999999999999GiB", "9999999999999999999"}) {
    const load_result r = load(std::string(valid_yaml) + "limits:\n  max_body: \"" + text + "\"\n");
    EXPECT_FALSE(r.value.has_value()) << text;
    ASSERT_EQ(of_level(r, severity::error).size(), 1u) << text << "\n" << dump(r);
    EXPECT_THAT(of_level(r, severity::error)[0]->message, HasSubstr("invalid size")) << text;
  }
}

TEST(loader, second_resolution_settings_take_whole_seconds_written_in_ms) {
  std::string yaml = R"yaml(people:
  alice: {irc: alice}
schedules:
  s:
    layers:
      - members: [alice]
        start: 2026-01-07T16:00
        shift: 3600000ms
routes:
  - notify: [schedule:s]
dedup:
  retention: 1h30m0s0ms
limits:
  read_timeout: 5000ms
)yaml";
  const load_result r = load(yaml);
  ASSERT_TRUE(r.value.has_value()) << dump(r);
  EXPECT_EQ(r.value->schedules.at(0).layers.at(0).shift, std::chrono::hours(1));
  EXPECT_EQ(r.value->dedup.retention, std::chrono::minutes(90));
  EXPECT_EQ(r.value->limits.read_timeout, std::chrono::seconds(5));
}

TEST(loader, an_invalid_backoff_is_reported_once) {
  // initial_backoff is out of bounds; the default it leaves (500ms) exceeds max_backoff, but
  // that is not what the file said, so only the bounds error is reported.
  const load_result r = load("delivery:\n  initial_backoff: 2h\n  max_backoff: 100ms\n");
  EXPECT_FALSE(r.value.has_value());
  const auto errors = of_level(r, severity::error);
  ASSERT_EQ(errors.size(), 1u) << dump(r);
  EXPECT_EQ(errors[0]->to_string(),
            "test.yaml:2:20: delivery.initial_backoff must be between 10ms and 1h, got '2h'");
}

TEST(loader, reports_every_error_in_the_daemon_settings) {
  const load_result r = load(R"yaml(limits:
  max_body: 4MB
  max_conections: 10
  read_timeout: 500ms
auth:
  bearer_token_file: token
delivery:
  connect_timeout: 50ms
  max_attempts: 101
  initial_backoff: 2m
  max_backoff: 1m
)yaml");
  EXPECT_FALSE(r.value.has_value());
  std::vector<std::pair<int, int>> where;
  for (const diagnostic* d : of_level(r, severity::error)) {
    where.emplace_back(d->where.line, d->where.column);
  }
  EXPECT_THAT(where,
              ElementsAre(std::pair(2, 13), std::pair(3, 3), std::pair(4, 17), std::pair(6, 22),
                          std::pair(8, 20), std::pair(9, 17), std::pair(10, 20)))
      << dump(r);
}

TEST(loader, schedules_inherit_a_timezone_given_after_them) {
  std::string yaml(valid_yaml);
  yaml += "timezone: Asia/Tokyo\n";
  const load_result r = load(yaml);
  ASSERT_TRUE(r.value.has_value()) << dump(r);
  EXPECT_EQ(r.value->schedules.at(0).timezone, "Asia/Tokyo");
}

TEST(loader, maps_keep_file_order) {
  const load_result r = load(R"yaml(people:
  zed: {irc: zed}
  amy: {irc: amy}
  mike: {irc: mike}
receivers:
  z: {irc: z}
  a: {irc: a}
routes:
  - notify: [receiver:z]
)yaml");
  ASSERT_TRUE(r.value.has_value()) << dump(r);
  std::vector<std::string> names;
  for (const person& p : r.value->people) names.push_back(p.name);
  EXPECT_THAT(names, ElementsAre("zed", "amy", "mike"));
  EXPECT_EQ(r.value->receivers.at(0).name, "z");
}

// One error (or warning) per row: the YAML, where it must be reported, and what it must say.
struct validation_case {
  std::string label;
  std::string yaml;
  int line;
  int column;
  std::string message;
  severity level = severity::error;

  friend void PrintTo(const validation_case& c, std::ostream* os) { *os << c.label; }
};

class validation_test : public ::testing::TestWithParam<validation_case> {};

TEST_P(validation_test, reports_the_problem_at_its_position) {
  const validation_case& c = GetParam();
  const load_result r = load(c.yaml);
  const auto matching = std::find_if(
      r.diagnostics.begin(), r.diagnostics.end(),
      [&](const diagnostic& d) { return d.message.find(c.message) != std::string::npos; });
  ASSERT_NE(matching, r.diagnostics.end()) << "no diagnostic says: " << c.message << "\n"
                                           << dump(r);
  EXPECT_EQ(matching->where.line, c.line) << dump(r);
  EXPECT_EQ(matching->where.column, c.column) << dump(r);
  EXPECT_EQ(matching->level, c.level) << dump(r);
  EXPECT_EQ(matching->file, "test.yaml");
  // The value is withheld exactly when there is an error.
  EXPECT_EQ(r.value.has_value(), !has_errors(r.diagnostics)) << dump(r);
  if (c.level == severity::error) {
    EXPECT_FALSE(r.value.has_value());
  }
}

// Shorthand for the common case: people alice and bob, a feed receiver, one final route.
std::string with_people(std::string_view body) {
  return std::string(R"yaml(people:
  alice: {irc: alice}
  bob: {irc: bob}
receivers:
  feed: {irc: "#feed"}
)yaml") + std::string(body);
}

constexpr std::string_view tail_route = "routes:\n  - notify: [receiver:feed]\n";

INSTANTIATE_TEST_SUITE_P(
    keys_and_types, validation_test,
    ::testing::Values(
        validation_case{"unknown_top_key_with_suggestion", "lisen: 127.0.0.1:1\n", 1, 1,
                        "unknown key 'lisen' (did you mean 'listen'?)"},
        validation_case{"unknown_key_transposition", with_people(R"yaml(schedules:
  s:
    layers:
      - members: [alice]
        start: 2026-01-07T16:00
        shfit: 1w
)yaml") + std::string(tail_route),
                        11, 9, "unknown key 'shfit' (did you mean 'shift'?)"},
        validation_case{"unknown_key_without_suggestion", "colour: red\n", 1, 1,
                        "unknown key 'colour' (expected one of: listen, timezone,"},
        validation_case{"unknown_contact_key",
                        "people:\n  alice: {webhook: \"http://x/a\", mail: a@b}\n", 2, 34,
                        "unknown key 'mail' (did you mean 'email'?)"},
        validation_case{"duplicate_key", "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n", 2, 1,
                        "duplicate key 'listen' (first given on line 1)"},
        validation_case{"people_as_list", "people: [alice, bob]\n", 1, 9,
                        "expected a map of person names, got a list"},
        validation_case{"layers_as_map",
                        with_people("schedules:\n  s:\n    layers: {members: [alice]}\n"), 8, 13,
                        "'layers' must be a list, got a map"},
        validation_case{"members_as_string",
                        with_people("schedules:\n  s:\n    layers:\n      - members: alice\n"
                                    "        start: 2026-01-07T16:00\n"),
                        9, 18, "'members' must be a list of people, got a string"},
        validation_case{
            "match_as_string",
            with_people("routes:\n  - match: severity=page\n    notify: [receiver:feed]\n"), 7, 12,
            "'match' must be a list, got a string"},
        validation_case{"listen_as_map", "listen: {host: x}\n", 1, 9,
                        "'listen' must be a string, got a map"},
        validation_case{
            "route_as_string", with_people("routes:\n  - receiver:feed\n"), 7, 5,
            "a route must be a map with keys name, match, notify, continue, got a string"},
        validation_case{"continue_not_boolean",
                        with_people("routes:\n  - notify: [receiver:feed]\n    continue: maybe\n"),
                        8, 15, "'continue' must be a boolean (true or false), got 'maybe'"},
        validation_case{"top_level_list", "- a\n- b\n", 1, 1,
                        "the configuration must be a map of settings, got a list"},
        validation_case{"dedup_as_list", "dedup: [1h]\n", 1, 8,
                        "'dedup' must be a map with keys retention, max_incidents, got a list"},
        validation_case{"non_string_key", "people:\n  [a, b]: {irc: x}\n", 2, 3,
                        "person names must be strings, got a list"}));

INSTANTIATE_TEST_SUITE_P(
    references, validation_test,
    ::testing::Values(
        validation_case{
            "unknown_member",
            with_people("schedules:\n  s:\n    layers:\n      - members: [alice, bobb]\n"
                        "        start: 2026-01-07T16:00\n") +
                std::string(tail_route),
            9, 26, "unknown person 'bobb' (did you mean 'bob'?)"},
        validation_case{"unknown_override_person",
                        with_people("schedules:\n  s:\n    overrides:\n"
                                    "      - {person: mallory, from: 2026-01-01T00:00, to: "
                                    "2026-01-02T00:00}\n") +
                            std::string(tail_route),
                        9, 18, "unknown person 'mallory'"},
        validation_case{"unknown_schedule_target",
                        with_people("schedules:\n  clinic:\n    layers: [{members: [alice], start: "
                                    "2026-01-07T16:00}]\nroutes:\n  - notify: [schedule:clnic]\n"),
                        10, 14, "unknown schedule 'clnic' (did you mean 'clinic'?)"},
        validation_case{"unknown_receiver_target",
                        with_people("routes:\n  - notify: [receiver:feed, receiver:pager]\n"), 7,
                        29, "unknown receiver 'pager'"},
        validation_case{"project_with_name", with_people("routes:\n  - notify: [project:tools]\n"),
                        7, 14, "'project' takes no name"},
        validation_case{"unknown_target_kind", with_people("routes:\n  - notify: [person:alice]\n"),
                        7, 14, "unknown target 'person:alice' (expected schedule:NAME"},
        // Quoted: in a flow list, bare `schedule:` would be a map {schedule: null}.
        validation_case{"target_without_name", with_people("routes:\n  - notify: ['schedule:']\n"),
                        7, 14, "target 'schedule:' needs a name: schedule:NAME"},
        validation_case{"route_without_notify",
                        with_people("routes:\n  - name: r\n    match: ['a=b']\n"), 7, 5,
                        "route 'r' needs 'notify'"},
        validation_case{"duplicate_person", "people:\n  alice: {irc: a}\n  alice: {irc: b}\n", 3, 3,
                        "duplicate person 'alice' (first defined on line 2)"},
        validation_case{"duplicate_route_name",
                        with_people("routes:\n  - {name: r, notify: [receiver:feed]}\n"
                                    "  - {name: r, notify: [receiver:feed]}\n"),
                        8, 5, "duplicate route name 'r' (first used on line 7)"},
        validation_case{
            "duplicate_layer_name",
            with_people("schedules:\n  s:\n    layers:\n"
                        "      - {name: a, members: [alice], start: 2026-01-07T16:00}\n"
                        "      - {name: a, members: [bob], start: 2026-01-07T16:00}\n") +
                std::string(tail_route),
            10, 9, "duplicate layer name 'a' in schedule 's'"}));

INSTANTIATE_TEST_SUITE_P(
    schedules, validation_test,
    ::testing::Values(
        validation_case{"empty_members",
                        with_people("schedules:\n  s:\n    layers:\n      - members: []\n"
                                    "        start: 2026-01-07T16:00\n"),
                        9, 18, "layer 'layer-1' has an empty member list"},
        validation_case{"missing_members",
                        with_people("schedules:\n  s:\n    layers:\n      - name: x\n"
                                    "        start: 2026-01-07T16:00\n"),
                        9, 9, "layer 'x' needs 'members'"},
        validation_case{"missing_start",
                        with_people("schedules:\n  s:\n    layers:\n      - members: [alice]\n"), 9,
                        9, "layer 'layer-1' needs 'start'"},
        validation_case{"no_layers_no_overrides",
                        with_people("schedules:\n  s:\n    timezone: UTC\n"), 7, 3,
                        "schedule 's' has no layers and no overrides"},
        validation_case{"empty_layer_list", with_people("schedules:\n  s: {layers: []}\n"), 7, 3,
                        "schedule 's' has no layers and no overrides"},
        validation_case{"bad_start_time",
                        with_people("schedules:\n  s:\n    layers:\n      - members: [alice]\n"
                                    "        start: 2026-02-30T16:00\n"),
                        10, 16, "invalid time '2026-02-30T16:00' for 'start'"},
        validation_case{"start_with_offset",
                        with_people("schedules:\n  s:\n    layers:\n      - members: [alice]\n"
                                    "        start: 2026-01-07T16:00Z\n"),
                        10, 16, "without offset"},
        validation_case{"invalid_shift",
                        with_people("schedules:\n  s:\n    layers:\n      - members: [alice]\n"
                                    "        start: 2026-01-07T16:00\n        shift: 1x\n"),
                        11, 16, "invalid duration '1x' for 'shift'"},
        validation_case{"zero_shift",
                        with_people("schedules:\n  s:\n    layers:\n      - members: [alice]\n"
                                    "        start: 2026-01-07T16:00\n        shift: 0h\n"),
                        11, 16, "shift must be between 1m and 52w, got '0h'"},
        validation_case{"huge_shift",
                        with_people("schedules:\n  s:\n    layers:\n      - members: [alice]\n"
                                    "        start: 2026-01-07T16:00\n"
                                    "        shift: 9223372036854775807s\n"),
                        11, 16, "shift must be between 1m and 52w"},
        validation_case{"start_year_out_of_range",
                        with_people("schedules:\n  s:\n    layers:\n      - members: [alice]\n"
                                    "        start: 9999-01-07T16:00\n"),
                        10, 16, "invalid time '9999-01-07T16:00' for 'start'"},
        validation_case{"bad_window",
                        with_people("schedules:\n  s:\n    layers:\n      - members: [alice]\n"
                                    "        start: 2026-01-07T16:00\n        active: 9-17\n"),
                        11, 17, "invalid daily window '9-17' for 'active' (expected HH:MM-HH:MM"},
        validation_case{
            "window_begin_24",
            with_people("schedules:\n  s:\n    layers:\n      - members: [alice]\n"
                        "        start: 2026-01-07T16:00\n        active: 24:00-03:00\n"),
            11, 17, "invalid daily window '24:00-03:00'"},
        validation_case{
            "empty_window",
            with_people("schedules:\n  s:\n    layers:\n      - members: [alice]\n"
                        "        start: 2026-01-07T16:00\n        active: \"08:00-08:00\"\n"),
            11, 17, "daily window '08:00-08:00' is empty (begin equals end)"},
        validation_case{"unknown_schedule_zone",
                        with_people("schedules:\n  s:\n    timezone: Europe/Berln\n"), 8, 15,
                        "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"},
        validation_case{"unknown_default_zone", "timezone: Mars/Olympus\n", 1, 11,
                        "unknown time zone 'Mars/Olympus'"},
        validation_case{
            "inverted_override",
            with_people("schedules:\n  s:\n    overrides:\n"
                        "      - {person: alice, from: 2026-12-27T00:00, to: 2026-12-24T00:00}\n"),
            9, 9, "inverted override: 'from' 2026-12-27T00:00 is not before 'to' 2026-12-24T00:00"},
        validation_case{
            "empty_override",
            with_people("schedules:\n  s:\n    overrides:\n"
                        "      - {person: alice, from: 2026-12-27T00:00, to: 2026-12-27T00:00}\n"),
            9, 9, "inverted override"},
        validation_case{
            "overlapping_overrides",
            with_people("schedules:\n  s:\n    overrides:\n"
                        "      - {person: alice, from: 2026-12-24T00:00, to: 2026-12-27T00:00}\n"
                        "      - {person: bob, from: 2026-12-20T00:00, to: 2026-12-22T00:00}\n"
                        "      - {person: bob, from: 2026-12-26T23:00, to: 2026-12-28T00:00}\n"),
            11, 9, "overlaps the override on line 9"},
        validation_case{"override_missing_to",
                        with_people("schedules:\n  s:\n    overrides:\n"
                                    "      - {person: alice, from: 2026-12-24T00:00}\n"),
                        9, 9, "override needs to"}));

INSTANTIATE_TEST_SUITE_P(
    values, validation_test,
    ::testing::Values(
        validation_case{"empty_layer_name",
                        with_people("schedules:\n  s:\n    layers:\n      - name: ''\n"
                                    "        members: [alice]\n        start: 2026-01-07T16:00\n"),
                        9, 15, "layer name must not be empty"},
        validation_case{"empty_route_name",
                        with_people("routes:\n  - name: ''\n    notify: [receiver:feed]\n"), 7, 11,
                        "route name must not be empty"},
        validation_case{"bad_listen", "listen: localhost\n", 1, 9,
                        "listen: 'localhost' must look like HOST:PORT"},
        validation_case{"listen_port_too_big", "listen: 127.0.0.1:65536\n", 1, 9, "HOST:PORT"},
        validation_case{"bad_matcher",
                        with_people("routes:\n  - match: ['severity']\n"
                                    "    notify: [receiver:feed]\n"),
                        7, 13, "needs an operator"},
        validation_case{"bad_regex",
                        with_people("routes:\n  - match: ['a=b', 'severity=~\"(page\"']\n"
                                    "    notify: [receiver:feed]\n"),
                        7, 20, "invalid regex '(page' for 'severity'"},
        validation_case{"bad_owned_regex", "ownership:\n  owned_regex: ['tools\\..+', 'a[']\n", 2,
                        30, "invalid regex 'a[' in 'owned_regex': missing ]: ["},
        validation_case{"bad_infrastructure_matcher",
                        "ownership:\n  infrastructure: ['1team=\"wmcs\"']\n", 2, 20,
                        "invalid label name '1team'"},
        validation_case{"bad_ownership_label", "ownership:\n  label: project-name\n", 2, 10,
                        "ownership.label 'project-name' is not a valid label name"},
        validation_case{"bad_webhook", "people:\n  alice: {webhook: \"ftp://x\"}\n", 2, 20,
                        "webhook 'ftp://x' must be an http:// or https:// URL"},
        validation_case{"bad_email", "people:\n  alice: {email: alice}\n", 2, 18,
                        "email 'alice' is not an address"},
        validation_case{"max_incidents_zero", "dedup:\n  max_incidents: 0\n", 2, 18,
                        "dedup.max_incidents must be an integer >= 1, got '0'"},
        validation_case{"max_incidents_negative", "dedup:\n  max_incidents: -5\n", 2, 18,
                        "dedup.max_incidents must be an integer >= 1"},
        validation_case{"bad_retention", "dedup:\n  retention: forever\n", 2, 14,
                        "invalid duration 'forever' for 'retention'"},
        validation_case{"huge_retention", "dedup:\n  retention: 100000000w\n", 2, 14,
                        "dedup.retention must be between 1m and 52w"},
        validation_case{"sub_second_retention", "dedup:\n  retention: 1m500ms\n", 2, 14,
                        "'retention' must be a whole number of seconds, got '1m500ms' "
                        "(sub-second durations are not allowed here)"},
        validation_case{
            "sub_second_shift",
            with_people("schedules:\n  s:\n    layers:\n      - members: [alice]\n"
                        "        start: 2026-01-07T16:00\n        shift: 500ms\n"),
            11, 16,
            "'shift' must be a whole number of seconds, got '500ms' (sub-second durations are "
            "not allowed here)"}));

// The daemon's settings: `limits`, `auth` and `delivery`.
INSTANTIATE_TEST_SUITE_P(
    daemon_settings, validation_test,
    ::testing::Values(
        validation_case{"unknown_section_with_suggestion", "limit:\n  max_body: 4MiB\n", 1, 1,
                        "unknown key 'limit' (did you mean 'limits'?)"},
        validation_case{"unknown_limits_key", "limits:\n  max_bdy: 4MiB\n", 2, 3,
                        "unknown key 'max_bdy' (did you mean 'max_body'?)"},
        validation_case{"unknown_auth_key", "auth:\n  bearer_token: /etc/token\n", 2, 3,
                        "unknown key 'bearer_token' (expected one of: bearer_token_file)"},
        validation_case{"unknown_delivery_key", "delivery:\n  max_attempt: 3\n", 2, 3,
                        "unknown key 'max_attempt' (did you mean 'max_attempts'?)"},
        validation_case{"duplicate_limits_key", "limits:\n  max_body: 4MiB\n  max_body: 8MiB\n", 3,
                        3, "duplicate key 'max_body' (first given on line 2)"},
        validation_case{
            "limits_not_a_map", "limits: 4MiB\n", 1, 9,
            "'limits' must be a map with keys max_body, max_connections, "
            "read_timeout, idle_timeout, max_pending, max_pending_notifications, got a string"},
        validation_case{"delivery_not_a_map", "delivery: [5s]\n", 1, 11,
                        "'delivery' must be a map with keys connect_timeout"},
        validation_case{"bad_size", "limits:\n  max_body: 4MB\n", 2, 13,
                        "invalid size '4MB' for 'max_body' (bytes, or an integer with B, KiB, "
                        "MiB or GiB, e.g. 512KiB, 4MiB)"},
        validation_case{"size_overflow", "limits:\n  max_body: 999999999999999999GiB\n", 2, 13,
                        "invalid size '999999999999999999GiB'"},
        validation_case{"body_too_small", "limits:\n  max_body: 1023\n", 2, 13,
                        "limits.max_body must be between 1KiB and 1GiB, got '1023'"},
        validation_case{"body_too_large", "limits:\n  max_body: 1025MiB\n", 2, 13,
                        "limits.max_body must be between 1KiB and 1GiB, got '1025MiB'"},
        validation_case{"body_not_a_scalar", "limits:\n  max_body: [4MiB]\n", 2, 13,
                        "'max_body' must be a string, got a list"},
        validation_case{"no_connections", "limits:\n  max_connections: 0\n", 2, 20,
                        "limits.max_connections must be an integer from 1 to 1000000, got '0'"},
        validation_case{"too_many_connections", "limits:\n  max_connections: 1000001\n", 2, 20,
                        "limits.max_connections must be an integer from 1 to 1000000, got "
                        "'1000001'"},
        validation_case{"connections_not_a_number", "limits:\n  max_connections: lots\n", 2, 20,
                        "limits.max_connections must be an integer from 1 to 1000000, got "
                        "'lots'"},
        validation_case{"sub_second_read_timeout", "limits:\n  read_timeout: 500ms\n", 2, 17,
                        "'read_timeout' must be a whole number of seconds, got '500ms' "
                        "(sub-second durations are not allowed here)"},
        validation_case{"long_read_timeout", "limits:\n  read_timeout: 11m\n", 2, 17,
                        "limits.read_timeout must be between 1s and 10m, got '11m'"},
        validation_case{"zero_idle_timeout", "limits:\n  idle_timeout: 0s\n", 2, 17,
                        "limits.idle_timeout must be between 1s and 10m, got '0s'"},
        validation_case{"bad_idle_timeout", "limits:\n  idle_timeout: 60\n", 2, 17,
                        "invalid duration '60' for 'idle_timeout'"},
        validation_case{"no_pending", "limits:\n  max_pending: 0\n", 2, 16,
                        "limits.max_pending must be an integer from 1 to 100000000, got '0'"},
        validation_case{"too_many_pending", "limits:\n  max_pending: 100000001\n", 2, 16,
                        "limits.max_pending must be an integer from 1 to 100000000, got "
                        "'100000001'"},
        validation_case{"pending_twice",
                        "limits:\n  max_pending: 5\n  max_pending_notifications: 5\n", 3, 30,
                        "limits.max_pending and limits.max_pending_notifications (its old name) "
                        "are the same setting"},
        validation_case{"relative_token_file", "auth:\n  bearer_token_file: etc/token\n", 2, 22,
                        "auth.bearer_token_file 'etc/token' must be an absolute path (starting "
                        "with /)"},
        validation_case{"empty_token_file", "auth:\n  bearer_token_file: \"\"\n", 2, 22,
                        "auth.bearer_token_file must not be empty (omit 'auth' to turn "
                        "authentication off)"},
        validation_case{"null_token_file", "auth:\n  bearer_token_file: ~\n", 2, 22,
                        "'bearer_token_file' must be a string, got nothing (null)"},
        validation_case{"nul_in_token_file", "auth:\n  bearer_token_file: \"/etc/to\\0ken\"\n", 2,
                        22, "auth.bearer_token_file must not contain a NUL character"},
        validation_case{"auth_without_token_file", "auth: {}\n", 1, 7,
                        "auth needs 'bearer_token_file' (omit 'auth' to turn authentication off)"},
        validation_case{"short_connect_timeout", "delivery:\n  connect_timeout: 50ms\n", 2, 20,
                        "delivery.connect_timeout must be between 100ms and 10m, got '50ms'"},
        validation_case{"long_request_timeout", "delivery:\n  request_timeout: 10m1ms\n", 2, 20,
                        "delivery.request_timeout must be between 100ms and 10m, got '10m1ms'"},
        validation_case{"bad_request_timeout", "delivery:\n  request_timeout: 5 s\n", 2, 20,
                        "invalid duration '5 s' for 'request_timeout' (use e.g. 500ms, 30s, 15m "
                        "or 1m30s, largest unit first)"},
        validation_case{"too_many_attempts", "delivery:\n  max_attempts: 101\n", 2, 17,
                        "delivery.max_attempts must be an integer from 0 to 100, got '101'"},
        validation_case{"negative_attempts", "delivery:\n  max_attempts: -1\n", 2, 17,
                        "delivery.max_attempts must be an integer from 0 to 100, got '-1'"},
        validation_case{"give_up_too_soon", "delivery:\n  give_up_after: 0s\n", 2, 18,
                        "delivery.give_up_after must be between 1s and 52w, got '0s'"},
        validation_case{"relative_state_dir", "state_dir: var/lib\n", 1, 12,
                        "state_dir 'var/lib' must be an absolute path (starting with /)"},
        validation_case{"long_commit_delay", "commit_delay: 1s\n", 1, 15,
                        "commit_delay must be between 0ms and 100ms, got '1s'"},
        validation_case{"short_retention", "retention: 30m\n", 1, 12,
                        "retention must be between 1h and 520w, got '30m'"},
        validation_case{"short_initial_backoff", "delivery:\n  initial_backoff: 9ms\n", 2, 20,
                        "delivery.initial_backoff must be between 10ms and 1h, got '9ms'"},
        validation_case{"long_max_backoff", "delivery:\n  max_backoff: 2h\n", 2, 16,
                        "delivery.max_backoff must be between 10ms and 1h, got '2h'"},
        validation_case{"inverted_backoff",
                        "delivery:\n  initial_backoff: 2s\n  max_backoff: 1s500ms\n", 2, 20,
                        "delivery.initial_backoff (2s) must not exceed delivery.max_backoff "
                        "(1s500ms)"},
        validation_case{"initial_backoff_over_default_max", "delivery:\n  initial_backoff: 2m\n", 2,
                        20,
                        "delivery.initial_backoff (2m) must not exceed delivery.max_backoff (1m, "
                        "the default)"},
        validation_case{"max_backoff_under_default_initial", "delivery:\n  max_backoff: 100ms\n", 2,
                        16,
                        "delivery.initial_backoff (500ms, the default) must not exceed "
                        "delivery.max_backoff (100ms)"},
        validation_case{"no_in_flight", "delivery:\n  max_in_flight_per_destination: 0\n", 2, 34,
                        "delivery.max_in_flight_per_destination must be an integer from 1 to "
                        "1000, got '0'"},
        validation_case{"too_many_in_flight", "delivery:\n  max_in_flight_per_destination: 1001\n",
                        2, 34,
                        "delivery.max_in_flight_per_destination must be an integer from 1 to "
                        "1000, got '1001'"}));

INSTANTIATE_TEST_SUITE_P(
    warnings, validation_test,
    ::testing::Values(
        validation_case{"person_without_contact",
                        "people:\n  alice: {}\n  bob:\nroutes:\n  - notify: []\n", 2, 3,
                        "person 'alice' has no contact (webhook, email or irc)", severity::warning},
        validation_case{"null_person_without_contact",
                        "people:\n  alice: {}\n  bob:\nroutes:\n  - notify: []\n", 3, 3,
                        "person 'bob' has no contact", severity::warning},
        validation_case{"receiver_without_contact", "receivers:\n  feed: {webhook: \"\"}\n", 2, 3,
                        "receiver 'feed' has no contact", severity::warning},
        validation_case{
            "last_route_not_match_all",
            with_people("routes:\n  - name: pages\n    match: ['severity=\"page\"']\n"
                        "    notify: [receiver:feed]\n"),
            7, 5,
            "routes: last route 'pages' is not a match-all fallback; alerts matching no "
            "route are not notified",
            severity::warning},
        validation_case{"no_routes", with_people("routes: []\n"), 6, 9, "no routes are configured",
                        severity::warning},
        validation_case{"routes_missing", with_people(""), 1, 1, "no routes are configured",
                        severity::warning},
        validation_case{"unreachable_route",
                        with_people("routes:\n  - name: all\n    notify: [receiver:feed]\n"
                                    "  - name: later\n    notify: [receiver:feed]\n"),
                        9, 5, "route 'later' is unreachable: route 'all' on line 7",
                        severity::warning},
        validation_case{"route_dropping_alerts",
                        with_people("routes:\n  - name: drop\n    notify: []\n"), 7, 5,
                        "route 'drop' notifies nobody", severity::warning},
        validation_case{
            "impossible_ownership_value",
            with_people("routes:\n  - match: ['ownership=\"own\"']\n    notify: [receiver:feed]\n"
                        "  - notify: [receiver:feed]\n"),
            7, 13, "never matches: ownership is owned, user or unowned", severity::warning}));

INSTANTIATE_TEST_SUITE_P(
    syntax, validation_test,
    ::testing::Values(
        validation_case{"unclosed_flow_list", "people:\n  alice: {irc: [x\n", 3, 1,
                        "YAML syntax error"},
        validation_case{"bad_indentation", "people:\n  alice:\n    irc: a\n   bob: x\n", 4, 4,
                        "YAML syntax error: end of map not found"},
        validation_case{"two_documents", "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n", 2, 1,
                        "only one YAML document"},
        // yaml-cpp 0.7 would loop forever on a stray top-level ',' (jbeder/yaml-cpp#1040).
        validation_case{"stray_comma", ",", 1, 1, "YAML syntax error: unexpected ','"},
        validation_case{"stray_comma_after_list", "[a]\n  ,\n", 2, 3,
                        "YAML syntax error: unexpected ','"},
        validation_case{"empty_file", "", 1, 1, "the configuration is empty"},
        validation_case{"comments_only", "# nothing here\n", 1, 1, "the configuration is empty"}));

TEST(loader, reports_every_error_in_the_file_in_order) {
  const load_result r = load(R"yaml(listen: nowhere
people:
  alice: {irc: alice}
schedules:
  s:
    timezone: Nowhere/Land
    layers:
      - members: [alice, zoe]
        start: 2026-01-07T16:00
        shift: 1fortnight
routes:
  - match: ['sev=~"("']
    notify: [receiver:nope]
)yaml");
  EXPECT_FALSE(r.value.has_value());
  const auto errors = of_level(r, severity::error);
  std::vector<std::pair<int, int>> where;
  for (const diagnostic* d : errors) where.emplace_back(d->where.line, d->where.column);
  EXPECT_THAT(where, ElementsAre(std::pair(1, 9), std::pair(6, 15), std::pair(8, 26),
                                 std::pair(10, 16), std::pair(12, 13), std::pair(13, 14)))
      << dump(r);
  // A route whose only matcher is broken is still not a match-all fallback.
  const auto warnings = of_level(r, severity::warning);
  ASSERT_EQ(warnings.size(), 1u) << dump(r);
  EXPECT_THAT(warnings[0]->message, HasSubstr("is not a match-all fallback"));
}

TEST(loader, diagnostics_print_as_file_line_column) {
  const load_result r = load("people:\n  alice: {}\nlisten: x\nroutes:\n  - notify: []\n");
  ASSERT_GE(r.diagnostics.size(), 2u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].to_string(),
            "test.yaml:2:3: warning: person 'alice' has no contact (webhook, email or irc) and "
            "cannot be notified");
  EXPECT_EQ(r.diagnostics[1].to_string(),
            "test.yaml:3:9: listen: 'x' must look like HOST:PORT (e.g. 127.0.0.1:9595)");
  EXPECT_TRUE(has_errors(r.diagnostics));
  EXPECT_FALSE(has_errors({r.diagnostics[0]}));
}

TEST(loader, warnings_alone_keep_the_value) {
  const load_result r = load("people:\n  alice: {}\nroutes:\n  - notify: []\n");
  ASSERT_TRUE(r.value.has_value()) << dump(r);
  EXPECT_FALSE(has_errors(r.diagnostics));
  EXPECT_EQ(of_level(r, severity::warning).size(), 2u) << dump(r);
}

TEST(loader, accepts_listen_forms) {
  for (const char* listen : {"127.0.0.1:9595", "localhost:0", "[::1]:9595", "0.0.0.0:65535"}) {
    const load_result r = load(std::string(valid_yaml) + "listen: \"" + listen + "\"\n");
    ASSERT_TRUE(r.value.has_value()) << listen << "\n" << dump(r);
    EXPECT_EQ(r.value->listen, listen);
  }
  for (const char* listen : {":9595", "::1:9595", "host:", "host:port", "a b:1", "[::1:9"}) {
    const load_result r = load(std::string(valid_yaml) + "listen: \"" + listen + "\"\n");
    EXPECT_FALSE(r.value.has_value()) << listen;
  }
}

TEST(loader, rejects_deep_nesting_without_crashing) {
  // Deep enough to overflow yaml-cpp's recursive parser if it were let through.
  for (const std::string open : {"[", "{a: ", "- "}) {
    std::string yaml = "people: ";
    for (int i = 0; i < 20000; ++i) yaml += open;
    const load_result r = load(yaml);
    EXPECT_FALSE(r.value.has_value());
    ASSERT_FALSE(r.diagnostics.empty());
    const bool deep_or_syntax =
        r.diagnostics[0].message.find("nested deeper") != std::string::npos ||
        r.diagnostics[0].message.find("YAML syntax error") != std::string::npos;
    EXPECT_TRUE(deep_or_syntax) << dump(r);
  }
  std::string yaml = "people: ";
  for (int i = 0; i < 100; ++i) yaml += "[";
  for (int i = 0; i < 100; ++i) yaml += "]";
  const load_result r = load(yaml);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_THAT(r.diagnostics[0].message, HasSubstr("nested deeper than 64 levels"));
  EXPECT_EQ(r.diagnostics[0].where.line, 1);
  // The root map is level 1, so the 64th '[' is the 65th level.
  EXPECT_EQ(r.diagnostics[0].where.column, 9 + 63);
}

TEST(loader, self_referencing_aliases_are_type_errors) {
  const load_result r = load("people: &p\n  alice: *p\nroutes: *p\n");
  EXPECT_FALSE(r.value.has_value());
  EXPECT_TRUE(has_errors(r.diagnostics)) << dump(r);
}

TEST(loader, unreadable_file_is_an_error_about_the_whole_file) {
  const load_result r = load_file("/nonexistent/alertrouter.yaml");
  EXPECT_FALSE(r.value.has_value());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].to_string(),
            "/nonexistent/alertrouter.yaml: cannot read file: No such file or directory");
  const load_result dir = load_file("/");
  ASSERT_EQ(dir.diagnostics.size(), 1u);
  EXPECT_THAT(dir.diagnostics[0].message, HasSubstr("cannot read file"));
}

TEST(loader, load_file_reports_the_path) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("loader_test_" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "people:\n  alice: {irc: a}\nlisten: bad\n";
  }
  const load_result r = load_file(path.string());
  std::filesystem::remove(path);
  ASSERT_FALSE(r.diagnostics.empty());
  EXPECT_EQ(r.diagnostics.back().file, path.string());
  EXPECT_EQ(r.diagnostics.back().where.line, 3);
}

TEST(loader, example_file_loads_cleanly) {
  const load_result r = load_file(ALERTROUTER_SOURCE_DIR "/config/examples/wmcs.yaml");
  ASSERT_TRUE(r.value.has_value()) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  const config& c = *r.value;
  EXPECT_THAT(c.ownership.owned,
              ElementsAre("tools", "toolsbeta", "admin", "cloudinfra", "metricsinfra", "paws",
                          "quarry", "cloudvirt-canary", "testlabs"));
  EXPECT_THAT(c.ownership.owned_regex, ElementsAre(R"(tools\..+)"));
  ASSERT_EQ(c.ownership.infrastructure.size(), 1u);
  EXPECT_EQ(c.ownership.infrastructure[0].name, "team");
  EXPECT_EQ(c.ownership.infrastructure[0].value, "wmcs");
  EXPECT_EQ(c.people.size(), 8u);
  // The daemon sections show the defaults; authentication stays off (commented out).
  EXPECT_EQ(c.limits.max_body, 4u * 1024 * 1024);
  EXPECT_EQ(c.limits.max_pending_notifications, 100'000u);
  EXPECT_EQ(c.auth.bearer_token_file, "");
  EXPECT_EQ(c.delivery.initial_backoff, std::chrono::milliseconds(500));
  EXPECT_EQ(c.delivery.max_backoff, std::chrono::minutes(1));

  std::vector<std::string> schedules;
  for (const schedule& s : c.schedules) schedules.push_back(s.name);
  EXPECT_THAT(schedules, ElementsAre("clinic", "oncall-primary", "oncall-secondary"));
  const date::local_days first_wednesday{date::year{2026} / 1 / 7};
  ASSERT_EQ(date::weekday{first_wednesday}, date::Wednesday);
  for (const schedule& s : c.schedules) {
    ASSERT_FALSE(s.layers.empty()) << s.name;
    for (const layer& l : s.layers) {
      // Every rotation hands off on Wednesdays, weekly.
      EXPECT_EQ(date::weekday{date::floor<date::days>(l.start)}, date::Wednesday) << s.name;
      EXPECT_EQ(l.shift, std::chrono::hours(24 * 7)) << s.name;
    }
  }
  const schedule* primary = c.find_schedule("oncall-primary");
  ASSERT_NE(primary, nullptr);
  EXPECT_EQ(primary->timezone, "UTC");  // inherited
  ASSERT_EQ(primary->layers.size(), 2u);
  EXPECT_EQ(primary->layers[1].active->begin, std::chrono::hours(18));
  EXPECT_EQ(primary->layers[1].active->end, std::chrono::hours(6));
  EXPECT_EQ(primary->overrides.size(), 1u);
  EXPECT_EQ(c.find_schedule("clinic")->timezone, "Europe/Berlin");
  EXPECT_EQ(c.find_schedule("oncall-secondary")->layers.at(0).name, "layer-1");
  EXPECT_NE(c.find_receiver("cloud-feed"), nullptr);
  EXPECT_NE(c.find_project("deployment-prep"), nullptr);
  ASSERT_FALSE(c.routes.empty());
  EXPECT_TRUE(c.routes.back().match.empty());
}

}  // namespace
}  // namespace alertrouter::config
