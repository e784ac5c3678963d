#include "daemon/ctl.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "routing/time.h"

namespace alertrouter::daemon {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using routing::sys_seconds;

// A small team: weekly clinic duty in UTC handing off Wednesdays 16:00, and a day-time-only
// schedule that leaves nights uncovered.
constexpr const char* kConfig = R"(timezone: UTC
ownership:
  label: project
  owned: [tools, paws]
  infrastructure: ['team="wmcs"']
people:
  alice: {webhook: "http://127.0.0.1:9000/alice"}
  bob: {webhook: "http://127.0.0.1:9000/bob", irc: bob}
  carol: {email: carol@example.org}
schedules:
  clinic:
    layers:
      - members: [alice, bob, carol]
        start: 2026-01-07T16:00
        shift: 1w
    overrides:
      # bob is on call that week anyway (a swap that was undone): not a handoff.
      - {person: bob, from: 2026-12-20T00:00, to: 2026-12-21T00:00}
  daytime:
    layers:
      - name: office
        members: [carol]
        start: 2026-01-07T00:00
        shift: 1d
        active: "09:00-17:00"
receivers:
  cloud-feed: {webhook: "http://127.0.0.1:9000/feed"}
projects:
  deployment-prep: {webhook: "http://127.0.0.1:9000/deployment-prep"}
routes:
  - name: owned-page
    match: ['ownership="owned"', 'severity="page"']
    notify: [schedule:clinic, receiver:cloud-feed]
  - name: user-projects
    match: ['ownership="user"']
    notify: [project]
  - name: fallback
    notify: [receiver:cloud-feed]
)";

sys_seconds at(const char* rfc3339) {
  return std::chrono::floor<std::chrono::seconds>(*routing::parse_rfc3339(rfc3339));
}

class ctl_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("alertrouterctl_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    config_ = write("alertrouter.yaml", kConfig);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }

  std::filesystem::path dir_;
  std::string config_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(ctl_test, check_config_accepts_a_valid_file_with_a_summary_line) {
  EXPECT_EQ(check_config(config_, at("2026-11-26T12:00:00Z"), out_, err_), 0);
  EXPECT_THAT(out_.str(), HasSubstr(config_ + ": OK: 3 people, 2 schedules, 1 receivers, "
                                              "1 projects, 3 routes"));
}

TEST_F(ctl_test, check_config_warns_about_coverage_gaps_but_succeeds) {
  EXPECT_EQ(check_config(config_, at("2026-11-26T12:00:00Z"), out_, err_), 0);
  // The daytime schedule leaves 17:00-09:00 uncovered; the first gap starts the same evening.
  // One warning per schedule: the first gap, and how many follow in the 8 weeks.
  EXPECT_THAT(err_.str(), HasSubstr("warning: schedule 'daytime' has nobody on call from "
                                    "2026-11-26T17:00:00Z to 2026-11-27T09:00:00Z (and 55 more "
                                    "gaps in the next 8 weeks)\n"));
  EXPECT_THAT(err_.str(), Not(HasSubstr("schedule 'clinic' has nobody")));
}

TEST_F(ctl_test, check_config_reports_every_error_with_its_position) {
  const std::string bad = write("bad.yaml", R"(people:
  alice: {webhook: "http://127.0.0.1:9000/alice"}
schedules:
  clinic:
    layers:
      - members: [alice, mallory]
        start: 2026-01-07T16:00
        shift: 1fortnight
routes:
  - name: all
    notify: [receiver:nowhere]
)");
  EXPECT_EQ(check_config(bad, at("2026-11-26T12:00:00Z"), out_, err_), 1);
  EXPECT_EQ(out_.str(), "");
  EXPECT_THAT(err_.str(), HasSubstr(bad + ":6:"));   // unknown person mallory
  EXPECT_THAT(err_.str(), HasSubstr(bad + ":8:"));   // bad duration
  EXPECT_THAT(err_.str(), HasSubstr(bad + ":11:"));  // unknown receiver
}

TEST_F(ctl_test, check_config_fails_on_a_missing_file) {
  EXPECT_EQ(check_config((dir_ / "missing.yaml").string(), at("2026-11-26T12:00:00Z"), out_, err_),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("missing.yaml"));
}

TEST_F(ctl_test, oncall_prints_person_and_shift_bounds_per_schedule) {
  oncall_options o{config_, at("2026-11-26T12:00:00Z"), std::nullopt, false};
  ASSERT_EQ(oncall(o, out_, err_), 0) << err_.str();
  // 46 weekly handoffs since 2026-01-07: member 46 mod 3 = bob.
  EXPECT_THAT(out_.str(), HasSubstr("clinic bob 2026-11-25T16:00:00Z 2026-12-02T16:00:00Z\n"));
  EXPECT_THAT(out_.str(), HasSubstr("daytime carol 2026-11-26T09:00:00Z 2026-11-26T17:00:00Z\n"));
}

TEST_F(ctl_test, oncall_prints_a_dash_for_nobody) {
  oncall_options o{config_, at("2026-11-26T20:00:00Z"), std::string("daytime"), false};
  ASSERT_EQ(oncall(o, out_, err_), 0) << err_.str();
  EXPECT_EQ(out_.str(), "daytime - 2026-11-26T17:00:00Z 2026-11-27T09:00:00Z\n");
}

TEST_F(ctl_test, oncall_handoff_instant_belongs_to_the_new_shift) {
  oncall_options o{config_, at("2026-12-02T16:00:00Z"), std::string("clinic"), false};
  ASSERT_EQ(oncall(o, out_, err_), 0) << err_.str();
  EXPECT_EQ(out_.str(), "clinic carol 2026-12-02T16:00:00Z 2026-12-09T16:00:00Z\n");
}

TEST_F(ctl_test, oncall_json_has_person_layer_and_bounds) {
  oncall_options o{config_, at("2026-11-26T12:00:00Z"), std::string("clinic"), true};
  ASSERT_EQ(oncall(o, out_, err_), 0) << err_.str();
  const boost::json::value doc = boost::json::parse(out_.str());
  ASSERT_EQ(doc.as_array().size(), 1u);
  const auto& row = doc.as_array()[0].as_object();
  EXPECT_EQ(row.at("schedule").as_string(), "clinic");
  EXPECT_EQ(row.at("person").as_string(), "bob");
  EXPECT_EQ(row.at("layer").as_string(), "layer-1");
  EXPECT_EQ(row.at("override").as_bool(), false);
  EXPECT_EQ(row.at("since").as_string(), "2026-11-25T16:00:00Z");
  EXPECT_EQ(row.at("until").as_string(), "2026-12-02T16:00:00Z");
}

TEST_F(ctl_test, oncall_rejects_an_unknown_schedule) {
  oncall_options o{config_, at("2026-11-26T12:00:00Z"), std::string("nosuch"), false};
  EXPECT_EQ(oncall(o, out_, err_), 1);
  EXPECT_THAT(err_.str(), HasSubstr("unknown schedule 'nosuch'"));
}

TEST_F(ctl_test, schedule_lists_the_coming_weekly_shifts) {
  schedule_options o{config_, "clinic", at("2026-11-26T12:00:00Z"), 3, false};
  ASSERT_EQ(schedule(o, out_, err_), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "2026-11-26T12:00:00Z 2026-12-02T16:00:00Z bob\n"
            "2026-12-02T16:00:00Z 2026-12-09T16:00:00Z carol\n"
            "2026-12-09T16:00:00Z 2026-12-16T16:00:00Z alice\n"
            "2026-12-16T16:00:00Z 2026-12-17T12:00:00Z bob\n");
}

TEST_F(ctl_test, schedule_text_merges_stretches_of_the_same_person) {
  schedule_options o{config_, "clinic", at("2026-12-16T16:00:00Z"), 1, false};
  ASSERT_EQ(schedule(o, out_, err_), 0) << err_.str();
  EXPECT_EQ(out_.str(), "2026-12-16T16:00:00Z 2026-12-23T16:00:00Z bob\n");

  // The JSON keeps the detail: the layer, then the override, then the layer again.
  std::ostringstream json_out;
  o.json = true;
  ASSERT_EQ(schedule(o, json_out, err_), 0) << err_.str();
  const auto rows = boost::json::parse(json_out.str()).as_array();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].as_object().at("override").as_bool(), true);
  EXPECT_EQ(rows[1].as_object().at("start").as_string(), "2026-12-20T00:00:00Z");
  EXPECT_EQ(rows[1].as_object().at("person").as_string(), "bob");
}

TEST_F(ctl_test, schedule_json_marks_gaps_with_null) {
  schedule_options o{config_, "daytime", at("2026-11-26T00:00:00Z"), 1, true};
  ASSERT_EQ(schedule(o, out_, err_), 0) << err_.str();
  const auto rows = boost::json::parse(out_.str()).as_array();
  ASSERT_GE(rows.size(), 3u);
  EXPECT_TRUE(rows[0].as_object().at("person").is_null());
  EXPECT_EQ(rows[0].as_object().at("end").as_string(), "2026-11-26T09:00:00Z");
  EXPECT_EQ(rows[1].as_object().at("person").as_string(), "carol");
  EXPECT_EQ(rows[1].as_object().at("layer").as_string(), "office");
}

TEST_F(ctl_test, route_test_owned_page_resolves_the_person_on_call) {
  route_test_options o{config_, at("2026-11-26T12:00:00Z"),
                       {"alertname=CephClusterInError", "severity=page", "project=tools"},
                       false};
  ASSERT_EQ(route_test(o, out_, err_), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("ownership: owned\n"));
  EXPECT_THAT(out_.str(), HasSubstr("route owned-page\n"));
  EXPECT_THAT(out_.str(), HasSubstr("schedule:clinic -> bob (webhook http://127.0.0.1:9000/bob, "
                                    "irc bob)"));
  EXPECT_THAT(out_.str(), HasSubstr("receiver:cloud-feed -> webhook http://127.0.0.1:9000/feed\n"));
  EXPECT_THAT(out_.str(), Not(HasSubstr("route fallback")));
}

TEST_F(ctl_test, route_test_user_project_goes_to_its_contacts_only) {
  route_test_options o{config_, at("2026-11-26T12:00:00Z"),
                       {"alertname=InstanceDown", "severity=page", "project=deployment-prep"},
                       true};
  ASSERT_EQ(route_test(o, out_, err_), 0) << err_.str();
  const auto doc = boost::json::parse(out_.str()).as_object();
  EXPECT_EQ(doc.at("ownership").as_string(), "user");
  EXPECT_EQ(doc.at("labels").as_object().at("ownership").as_string(), "user");
  const auto& routes = doc.at("routes").as_array();
  ASSERT_EQ(routes.size(), 1u);
  EXPECT_EQ(routes[0].as_object().at("name").as_string(), "user-projects");
  const auto& target = routes[0].as_object().at("targets").as_array()[0].as_object();
  EXPECT_EQ(target.at("target").as_string(), "project");
  EXPECT_EQ(target.at("project").as_string(), "deployment-prep");
  EXPECT_EQ(target.at("contact").as_object().at("webhook").as_string(),
            "http://127.0.0.1:9000/deployment-prep");
}

TEST_F(ctl_test, route_test_infrastructure_without_project_is_owned) {
  route_test_options o{config_, at("2026-11-26T12:00:00Z"),
                       {"alertname=HostBGPDown", "severity=page", "team=wmcs"}, false};
  ASSERT_EQ(route_test(o, out_, err_), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("ownership: owned\n"));
  EXPECT_THAT(out_.str(), HasSubstr("schedule:clinic -> bob"));
}

TEST_F(ctl_test, route_test_rejects_malformed_labels) {
  route_test_options o{config_, at("2026-11-26T12:00:00Z"), {"severity"}, false};
  EXPECT_EQ(route_test(o, out_, err_), 2);
  EXPECT_THAT(err_.str(), HasSubstr("expected LABEL=VALUE"));
}

}  // namespace
}  // namespace alertrouter::daemon
