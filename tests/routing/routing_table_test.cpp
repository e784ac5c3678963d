#include "routing/routing_table.h"

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

config::matcher_spec m(std::string name, matcher_op op, std::string value, int line = 0) {
  return {std::move(name), op, std::move(value), {line, 7}};
}

config::local_time local(int y, unsigned mo, unsigned d, int h = 0) {
  return config::local_time{date::local_days{date::year{y} / date::month{mo} / date::day{d}}} +
         std::chrono::hours(h);
}

sys_seconds utc(int y, unsigned mo, unsigned d, int h = 0, int min = 0, int s = 0) {
  return sys_seconds{date::sys_days{date::year{y} / date::month{mo} / date::day{d}}} +
         std::chrono::hours(h) + std::chrono::minutes(min) + std::chrono::seconds(s);
}

// The example, cut down: a weekly UTC rotation (alice, bob) handing off Wednesdays at
// 16:00 from 2026-01-07, a schedule that starts only in 2027, one receiver, one user project.
config::config example() {
  config::config c;
  c.source = "test.yaml";
  c.ownership.label = "project";
  c.ownership.owned = {"tools", "admin"};
  c.ownership.owned_regex = {"tools\\..+"};
  c.ownership.infrastructure = {m("team", matcher_op::equal, "wmcs")};
  c.people = {
      {"alice", {"http://hooks/alice", "alice@example.org", "alice"}, {}},
      {"bob", {"http://hooks/bob", "", ""}, {}},
      {"mute", {"", "", ""}, {}},  // a person with no way to reach them
  };
  config::schedule oncall;
  oncall.name = "oncall";
  oncall.timezone = "UTC";
  oncall.layers.push_back({"weekly", {"alice", "bob"}, local(2026, 1, 7, 16), 24h * 7, {}, {}});
  config::schedule future;
  future.name = "future";
  future.timezone = "UTC";
  future.layers.push_back({"later", {"mute"}, local(2027, 1, 1), 24h * 7, {}, {}});
  c.schedules = {oncall, future};
  c.receivers = {{"cloud-feed", {"http://hooks/feed", "", ""}, {}}, {"silent", {"", "", ""}, {}}};
  c.projects = {{"deployment-prep", {"", "dp@example.org", ""}, {}}, {"empty-project", {}, {}}};

  config::route owned_page;
  owned_page.name = "owned-page";
  owned_page.match = {m("ownership", matcher_op::equal, "owned"),
                      m("severity", matcher_op::equal, "page")};
  owned_page.notify = {{target_type::schedule, "oncall", {}},
                       {target_type::receiver, "cloud-feed", {}}};
  config::route user;
  user.name = "user-projects";
  user.match = {m("ownership", matcher_op::equal, "user")};
  user.notify = {{target_type::project, "", {}}};
  config::route fallback;
  fallback.name = "fallback";
  fallback.notify = {{target_type::receiver, "cloud-feed", {}}};
  c.routes = {owned_page, user, fallback};
  return c;
}

std::shared_ptr<const routing_table> compile_ok(config::config c) {
  auto r = routing_table::compile(std::move(c));
  if (auto* d = std::get_if<std::vector<config::diagnostic>>(&r)) {
    ADD_FAILURE() << "compile failed: " << (d->empty() ? "" : d->front().message);
    return nullptr;
  }
  return std::get<std::shared_ptr<const routing_table>>(r);
}

std::vector<config::diagnostic> compile_errors(config::config c) {
  auto r = routing_table::compile(std::move(c));
  if (auto* d = std::get_if<std::vector<config::diagnostic>>(&r)) return *d;
  ADD_FAILURE() << "compile unexpectedly succeeded";
  return {};
}

label_set ls(std::initializer_list<label_set::label> l) {
  return label_set(std::vector<label_set::label>(l));
}

std::vector<std::string> route_names(const routing_table& t, const label_set& labels) {
  std::vector<std::string> out;
  for (const compiled_route* r : t.match(labels)) out.push_back(r->source->name);
  return out;
}

TEST(routing_table_compile, builds_every_part_of_the_configuration) {
  auto t = compile_ok(example());
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->config().source, "test.yaml");
  EXPECT_EQ(t->routes().size(), 3u);
  EXPECT_EQ(t->routes()[0].source, &t->config().routes[0]);
  EXPECT_EQ(t->routes()[0].match.size(), 2u);
  EXPECT_EQ(t->schedules().size(), 2u);
  ASSERT_NE(t->find_schedule("oncall"), nullptr);
  EXPECT_EQ(t->find_schedule("oncall")->name(), "oncall");
  EXPECT_EQ(t->find_schedule("nope"), nullptr);
  EXPECT_EQ(t->classifier().label(), "project");
  ASSERT_NE(t->person_contact("alice"), nullptr);
  EXPECT_EQ(t->person_contact("alice")->webhook, "http://hooks/alice");
  EXPECT_EQ(t->person_contact("mute"), nullptr);  // no contact set
  EXPECT_EQ(t->receiver_contact("silent"), nullptr);
  EXPECT_EQ(t->project_contact("empty-project"), nullptr);
  ASSERT_NE(t->project_contact("deployment-prep"), nullptr);
  EXPECT_EQ(t->project_contact("deployment-prep")->email, "dp@example.org");
}

TEST(routing_table_match, first_matching_route_wins) {
  auto t = compile_ok(example());
  ASSERT_NE(t, nullptr);
  struct row {
    label_set labels;
    std::vector<std::string> expected;
  };
  const std::vector<row> rows = {
      {ls({{"ownership", "owned"}, {"severity", "page"}}), {"owned-page"}},
      {ls({{"ownership", "owned"}, {"severity", "warning"}}), {"fallback"}},
      {ls({{"ownership", "user"}, {"severity", "page"}}), {"user-projects"}},
      {ls({{"ownership", "unowned"}}), {"fallback"}},
      {label_set(), {"fallback"}},
  };
  for (const row& r : rows) {
    EXPECT_EQ(route_names(*t, r.labels), r.expected) << r.labels.get("ownership");
  }
}

TEST(routing_table_match, continue_goes_on_only_while_the_matched_route_says_so) {
  config::config c = example();
  config::route audit;
  audit.name = "audit";
  audit.match = {m("severity", matcher_op::regex, "page|critical")};
  audit.notify = {{target_type::receiver, "cloud-feed", {}}};
  audit.continue_matching = true;
  config::route never;
  never.name = "never";
  never.match = {m("severity", matcher_op::equal, "nope")};
  never.continue_matching = true;
  never.notify = {{target_type::receiver, "cloud-feed", {}}};
  c.routes.insert(c.routes.begin(), {audit, never});
  c.routes.back().continue_matching = true;  // a continue on the last route changes nothing
  auto t = compile_ok(std::move(c));
  ASSERT_NE(t, nullptr);

  // audit continues; `never` does not match; owned-page matches and stops.
  EXPECT_EQ(route_names(*t, ls({{"ownership", "owned"}, {"severity", "page"}})),
            (std::vector<std::string>{"audit", "owned-page"}));
  // audit continues to the first later match, fallback (user-projects does not match).
  EXPECT_EQ(route_names(*t, ls({{"ownership", "owned"}, {"severity", "critical"}})),
            (std::vector<std::string>{"audit", "fallback"}));
  // audit does not match: the ordinary first match.
  EXPECT_EQ(route_names(*t, ls({{"ownership", "user"}})),
            (std::vector<std::string>{"user-projects"}));
}

TEST(routing_table_match, no_route_matches_gives_an_empty_list) {
  config::config c = example();
  c.routes.pop_back();  // drop the match-all fallback
  auto t = compile_ok(std::move(c));
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->match(ls({{"ownership", "unowned"}})).empty());
}

TEST(routing_table_resolve, each_target_kind) {
  auto t = compile_ok(example());
  ASSERT_NE(t, nullptr);
  const label_set user_alert({{"project", "deployment-prep"}, {"ownership", "user"}});
  const sys_seconds now = utc(2026, 1, 8);
  struct row {
    const char* what;
    config::target target;
    label_set labels;
    std::string name;
    std::string person;
    const config::contact* reach;
  };
  const std::vector<row> rows = {
      {"schedule",
       {target_type::schedule, "oncall", {}},
       {},
       "oncall",
       "alice",
       t->person_contact("alice")},
      {"schedule nobody on call", {target_type::schedule, "future", {}}, {}, "future", "", nullptr},
      {"unknown schedule", {target_type::schedule, "nope", {}}, {}, "nope", "", nullptr},
      {"receiver",
       {target_type::receiver, "cloud-feed", {}},
       {},
       "cloud-feed",
       "",
       t->receiver_contact("cloud-feed")},
      {"receiver without contacts",
       {target_type::receiver, "silent", {}},
       {},
       "silent",
       "",
       nullptr},
      {"project",
       {target_type::project, "", {}},
       user_alert,
       "deployment-prep",
       "",
       t->project_contact("deployment-prep")},
      {"project without contacts",
       {target_type::project, "", {}},
       ls({{"project", "empty-project"}}),
       "empty-project",
       "",
       nullptr},
      {"unknown project",
       {target_type::project, "", {}},
       ls({{"project", "other"}}),
       "other",
       "",
       nullptr},
      {"no project label", {target_type::project, "", {}}, ls({{"team", "wmcs"}}), "", "", nullptr},
  };
  for (const row& r : rows) {
    const resolved_target got = t->resolve(r.target, r.labels, now);
    EXPECT_EQ(got.type, r.target.type) << r.what;
    EXPECT_EQ(got.name, r.name) << r.what;
    EXPECT_EQ(got.person, r.person) << r.what;
    EXPECT_EQ(got.reach, r.reach) << r.what;
  }
}

TEST(routing_table_resolve, on_call_person_with_no_contact_resolves_to_no_reach) {
  auto t = compile_ok(example());
  ASSERT_NE(t, nullptr);
  const resolved_target got =
      t->resolve({target_type::schedule, "future", {}}, {}, utc(2027, 1, 2));
  EXPECT_EQ(got.person, "mute");
  EXPECT_EQ(got.reach, nullptr);
}

TEST(routing_table_resolve, project_label_follows_the_configured_ownership_label) {
  config::config c = example();
  c.ownership.label = "tenant";
  auto t = compile_ok(std::move(c));
  ASSERT_NE(t, nullptr);
  const label_set labels({{"project", "other"}, {"tenant", "deployment-prep"}});
  const resolved_target got = t->resolve({target_type::project, "", {}}, labels, utc(2026, 2, 1));
  EXPECT_EQ(got.name, "deployment-prep");
  EXPECT_EQ(got.reach, t->project_contact("deployment-prep"));
}

TEST(routing_table_resolve, the_person_on_call_changes_with_time) {
  auto t = compile_ok(example());
  ASSERT_NE(t, nullptr);
  const config::target oncall{target_type::schedule, "oncall", {}};
  struct row {
    sys_seconds at;
    std::string person;
  };
  const std::vector<row> rows = {
      {utc(2026, 1, 7, 15, 59, 59), ""},  // before the rotation starts
      {utc(2026, 1, 7, 16), "alice"},        {utc(2026, 1, 14, 15, 59, 59), "alice"},
      {utc(2026, 1, 14, 16), "bob"},  // the handoff instant belongs to the new shift
      {utc(2026, 1, 21, 15, 59, 59), "bob"}, {utc(2026, 1, 21, 16), "alice"},
  };
  for (const row& r : rows) {
    const resolved_target got = t->resolve(oncall, {}, r.at);
    EXPECT_EQ(got.person, r.person) << date::format("%F %T", r.at);
    EXPECT_EQ(got.reach, r.person.empty() ? nullptr : t->person_contact(r.person))
        << date::format("%F %T", r.at);
  }
}

TEST(routing_table_compile, errors_name_the_file_and_the_offending_node) {
  struct row {
    const char* what;
    void (*mutate)(config::config&);
    int line;
    const char* fragment;
  };
  const std::vector<row> rows = {
      {"bad route regex",
       [](config::config& c) {
         c.routes[0].match.push_back(m("instance", matcher_op::regex, "(unclosed", 41));
       },
       41, "(unclosed"},
      {"unknown receiver",
       [](config::config& c) {
         c.routes[1].notify.push_back({target_type::receiver, "nope", {52, 9}});
       },
       52, "nope"},
      {"unknown schedule",
       [](config::config& c) {
         c.routes[1].notify.push_back({target_type::schedule, "nosuch", {53, 9}});
       },
       53, "nosuch"},
      {"unknown layer member",
       [](config::config& c) {
         c.schedules[0].layers[0].members.push_back("mallory");
         c.schedules[0].layers[0].where = {20, 7};
       },
       20, "mallory"},
      {"unknown override person",
       [](config::config& c) {
         c.schedules[0].overrides.push_back(
             {"trudy", local(2026, 2, 1), local(2026, 2, 2), {25, 9}});
       },
       25, "trudy"},
      {"unknown time zone",
       [](config::config& c) {
         c.schedules[1].timezone = "Mars/Olympus_Mons";
         c.schedules[1].where = {30, 3};
       },
       30, "Mars/Olympus_Mons"},
      {"bad owned_regex",
       [](config::config& c) {
         c.ownership.owned_regex.push_back("[");
         c.ownership.where = {3, 1};
       },
       3, "owned_regex"},
  };
  for (const row& r : rows) {
    config::config c = example();
    r.mutate(c);
    const std::vector<config::diagnostic> errors = compile_errors(std::move(c));
    ASSERT_EQ(errors.size(), 1u) << r.what;
    EXPECT_EQ(errors[0].level, config::severity::error) << r.what;
    EXPECT_EQ(errors[0].file, "test.yaml") << r.what;
    EXPECT_EQ(errors[0].where.line, r.line) << r.what;
    EXPECT_NE(errors[0].message.find(r.fragment), std::string::npos)
        << r.what << ": " << errors[0].message;
  }
}

TEST(routing_table_compile, reports_every_error_not_only_the_first) {
  config::config c = example();
  c.routes[0].notify.push_back({target_type::receiver, "a", {10, 1}});
  c.routes[2].notify.push_back({target_type::receiver, "b", {20, 1}});
  const std::vector<config::diagnostic> errors = compile_errors(std::move(c));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].where.line, 10);
  EXPECT_EQ(errors[1].where.line, 20);
}

}  // namespace
}  // namespace alertrouter::routing
