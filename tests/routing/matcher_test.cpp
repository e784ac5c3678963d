#include "routing/matcher.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace alertrouter::routing {
namespace {

using config::matcher_op;

config::matcher_spec spec(std::string name, matcher_op op, std::string value) {
  config::matcher_spec s;
  s.name = std::move(name);
  s.op = op;
  s.value = std::move(value);
  return s;
}

matcher compiled(const config::matcher_spec& s) {
  auto result = matcher::compile(s);
  if (auto* error = std::get_if<std::string>(&result)) {
    ADD_FAILURE() << "compile failed: " << *error;
  }
  return std::get<matcher>(std::move(result));
}

struct match_case {
  const char* what;
  config::matcher_spec spec;
  label_set labels;
  bool want;
};

// Alertmanager's documented matcher semantics (docs/configuration.md "<matcher>" and
// pkg/labels/matcher.go): exact string comparison, regexes anchored at both ends, a missing
// label compared as the empty string.
TEST(Matcher, AlertmanagerSemantics) {
  const label_set ceph{{"alertname", "CephClusterInError"},
                       {"severity", "page"},
                       {"team", "wmcs"},
                       {"service", "ceph,cloudvps"},
                       {"instance", "cloudvirt1031:9100"}};
  const label_set tools{{"alertname", "ToolforgeKubernetesNodeNotReady"},
                        {"project", "tools"},
                        {"severity", "warning"}};
  const label_set unicode{{"summary", "Ünïcødé ✓ 日本"}, {"team", "wmcs"}};
  const match_case cases[] = {
      // =
      {"equal matches", spec("severity", matcher_op::equal, "page"), ceph, true},
      {"equal is exact", spec("severity", matcher_op::equal, "pag"), ceph, false},
      {"equal is case sensitive", spec("severity", matcher_op::equal, "Page"), ceph, false},
      {"equal missing label vs empty", spec("project", matcher_op::equal, ""), ceph, true},
      {"equal missing label vs value", spec("project", matcher_op::equal, "tools"), ceph, false},
      {"equal empty vs present label", spec("severity", matcher_op::equal, ""), ceph, false},
      // !=
      {"not equal differs", spec("severity", matcher_op::not_equal, "critical"), ceph, true},
      {"not equal same", spec("severity", matcher_op::not_equal, "page"), ceph, false},
      {"not equal missing vs value", spec("project", matcher_op::not_equal, "tools"), ceph, true},
      {"not equal missing vs empty", spec("project", matcher_op::not_equal, ""), ceph, false},
      {"not equal present vs empty", spec("project", matcher_op::not_equal, ""), tools, true},
      // =~ anchored at both ends
      {"regex alternation", spec("severity", matcher_op::regex, "critical|page"), ceph, true},
      {"regex is anchored at end", spec("project", matcher_op::regex, "tool"), tools, false},
      {"regex is anchored at start", spec("project", matcher_op::regex, "ools"), tools, false},
      {"regex foo does not match foobar", spec("x", matcher_op::regex, "foo"),
       label_set{{"x", "foobar"}}, false},
      {"regex foo does not match barfoo", spec("x", matcher_op::regex, "foo"),
       label_set{{"x", "barfoo"}}, false},
      {"regex foo matches foo", spec("x", matcher_op::regex, "foo"), label_set{{"x", "foo"}}, true},
      {"regex alternation anchored as a whole", spec("x", matcher_op::regex, "a|b"),
       label_set{{"x", "ab"}}, false},
      {"regex prefix wildcard", spec("instance", matcher_op::regex, "cloudvirt.*"), ceph, true},
      {"regex character class", spec("instance", matcher_op::regex, "cloudvirt10[0-9]{2}:9100"),
       ceph, true},
      {"regex .* matches missing label", spec("project", matcher_op::regex, ".*"), ceph, true},
      {"regex .+ does not match missing label", spec("project", matcher_op::regex, ".+"), ceph,
       false},
      {"regex empty matches missing", spec("project", matcher_op::regex, ""), ceph, true},
      {"regex dot does not match newline", spec("x", matcher_op::regex, "a.b"),
       label_set{{"x", "a\nb"}}, false},
      // !~
      {"not regex no match", spec("severity", matcher_op::not_regex, "warning|info"), ceph, true},
      {"not regex match", spec("severity", matcher_op::not_regex, "pa.e"), ceph, false},
      {"not regex anchored", spec("severity", matcher_op::not_regex, "pa"), ceph, true},
      {"not regex .+ with missing label", spec("project", matcher_op::not_regex, ".+"), ceph, true},
      {"not regex .* with missing label", spec("project", matcher_op::not_regex, ".*"), ceph,
       false},
      {"not regex empty with missing label", spec("project", matcher_op::not_regex, ""), ceph,
       false},
      // Unicode: RE2 in UTF-8 mode, so `.` is one code point, not one byte.
      {"unicode equal", spec("summary", matcher_op::equal, "Ünïcødé ✓ 日本"), unicode, true},
      {"unicode regex per code point", spec("summary", matcher_op::regex, "Ünïc.d. . .本"), unicode,
       true},
      {"unicode dot is one code point", spec("x", matcher_op::regex, "."), label_set{{"x", "日"}},
       true},
      {"unicode class", spec("x", matcher_op::regex, "\\p{Han}+"), label_set{{"x", "日本"}}, true},
      {"unicode not regex", spec("summary", matcher_op::not_regex, ".*✓.*"), unicode, false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(compiled(c.spec).matches(c.labels), c.want) << c.what;
  }
}

TEST(Matcher, InvalidRegexFailsToCompileWithMessage) {
  for (const char* bad : {"(", "a)", "[z-a]", "*", "a{2,1}", "(?P<n>a"}) {
    const auto result = matcher::compile(spec("x", matcher_op::regex, bad));
    const auto* error = std::get_if<std::string>(&result);
    ASSERT_NE(error, nullptr) << bad;
    EXPECT_NE(error->find(bad), std::string::npos) << *error;
  }
  // The anchoring wrapper cannot be escaped by a crafted pattern.
  const auto escape = matcher::compile(spec("x", matcher_op::not_regex, "a)|(b"));
  EXPECT_TRUE(std::holds_alternative<std::string>(escape));
}

TEST(Matcher, EqualityNeverCompilesItsValueAsRegex) {
  // `(` is not a valid regex, but = and != compare strings.
  const matcher m = compiled(spec("x", matcher_op::equal, "("));
  EXPECT_TRUE(m.matches(label_set{{"x", "("}}));
  EXPECT_TRUE(compiled(spec("x", matcher_op::not_equal, ".*")).matches(label_set{{"x", "a"}}));
}

TEST(Matcher, CopiesShareTheCompiledRegex) {
  const matcher a = compiled(spec("severity", matcher_op::regex, "critical|task"));
  const matcher b = a;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_TRUE(b.matches(label_set{{"severity", "task"}}));
  EXPECT_FALSE(b.matches(label_set{{"severity", "taskforce"}}));
  EXPECT_EQ(b.spec().value, "critical|task");
}

TEST(Matcher, ToStringLikeAlertmanager) {
  struct {
    config::matcher_spec spec;
    const char* want;
  } cases[] = {
      {spec("severity", matcher_op::equal, "page"), R"(severity="page")"},
      {spec("severity", matcher_op::not_equal, "page"), R"(severity!="page")"},
      {spec("severity", matcher_op::regex, "critical|task"), R"(severity=~"critical|task")"},
      {spec("project", matcher_op::not_regex, "tools\\..+"), R"(project!~"tools\\..+")"},
      {spec("summary", matcher_op::equal, "say \"hi\"\nnow"), R"(summary="say \"hi\"\nnow")"},
      {spec("x", matcher_op::equal, ""), R"(x="")"},
      {spec("x", matcher_op::equal, "日本"), "x=\"日本\""},
      // Names that are not Prometheus label names are quoted.
      {spec("my label", matcher_op::equal, "v"), R"("my label"="v")"},
      {spec("9lives", matcher_op::equal, "v"), R"("9lives"="v")"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(compiled(c.spec).to_string(), c.want);
  }
}

TEST(MatchesAll, EveryMatcherMustMatch) {
  const std::vector<matcher> ms = {compiled(spec("team", matcher_op::equal, "wmcs")),
                                   compiled(spec("severity", matcher_op::regex, "page|critical"))};
  EXPECT_TRUE(matches_all(ms, label_set{{"team", "wmcs"}, {"severity", "page"}}));
  EXPECT_FALSE(matches_all(ms, label_set{{"team", "wmcs"}, {"severity", "warning"}}));
  EXPECT_FALSE(matches_all(ms, label_set{{"team", "other"}, {"severity", "page"}}));
  EXPECT_FALSE(matches_all(ms, label_set{}));
  EXPECT_TRUE(matches_all({}, label_set{}));
  EXPECT_TRUE(matches_all({}, label_set{{"anything", "at all"}}));
}

}  // namespace
}  // namespace alertrouter::routing
