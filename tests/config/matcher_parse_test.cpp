#include "config/matcher_parse.h"

#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <string>
#include <variant>

namespace alertrouter::config {
namespace {

// One row: the text, and either the parsed matcher or a fragment the error must contain.
struct matcher_case {
  std::string text;
  std::string name;
  matcher_op op = matcher_op::equal;
  std::string value;
  std::string error;  // non-empty: parsing must fail with a message containing this

  friend void PrintTo(const matcher_case& c, std::ostream* os) { *os << c.text; }
};

matcher_case ok(std::string text, std::string name, matcher_op op, std::string value) {
  return {std::move(text), std::move(name), op, std::move(value), ""};
}

matcher_case bad(std::string text, std::string error) {
  return {std::move(text), "", matcher_op::equal, "", std::move(error)};
}

class parse_matcher_test : public ::testing::TestWithParam<matcher_case> {};

TEST_P(parse_matcher_test, parses_as_alertmanager_does) {
  const matcher_case& c = GetParam();
  const auto result = parse_matcher(c.text);
  if (c.error.empty()) {
    const auto* spec = std::get_if<matcher_spec>(&result);
    ASSERT_NE(spec, nullptr) << std::get<std::string>(result);
    EXPECT_EQ(spec->name, c.name);
    EXPECT_EQ(spec->op, c.op);
    EXPECT_EQ(spec->value, c.value);
  } else {
    const auto* message = std::get_if<std::string>(&result);
    ASSERT_NE(message, nullptr) << "parsed, but should fail with: " << c.error;
    EXPECT_NE(message->find(c.error), std::string::npos) << *message;
  }
}

using enum matcher_op;

INSTANTIATE_TEST_SUITE_P(
    operators, parse_matcher_test,
    ::testing::Values(ok(R"(severity="page")", "severity", equal, "page"),
                      ok(R"(severity!="page")", "severity", not_equal, "page"),
                      ok(R"(severity=~"critical|task")", "severity", regex, "critical|task"),
                      ok(R"(severity!~"warn.*")", "severity", not_regex, "warn.*"),
                      // `==` is `=` with a value starting with '=' (the operator is matched
                      // first-longest from =~, =, !=, !~).
                      ok(R"(a==b)", "a", equal, "=b"), ok(R"(a=~~b)", "a", regex, "~b")));

INSTANTIATE_TEST_SUITE_P(
    values, parse_matcher_test,
    ::testing::Values(
        // Bare values, whitespace around the parts, empty values.
        ok("team=wmcs", "team", equal, "wmcs"), ok("  team  =  wmcs  ", "team", equal, "wmcs"),
        ok("team = two words", "team", equal, "two words"),
        ok(R"(team=" padded ")", "team", equal, " padded "), ok(R"(team="")", "team", equal, ""),
        ok("team=", "team", equal, ""), ok("team!=", "team", not_equal, ""),
        ok("_private=x", "_private", equal, "x"), ok("Label_09=x", "Label_09", equal, "x"),
        ok(R"(summary="ünïcødé ✓")", "summary", equal, "ünïcødé ✓"),
        // Go-style escapes inside values: \" \\ \n; any other backslash stays literal, which is
        // what keeps regex escapes intact.
        ok(R"(a="say \"hi\"")", "a", equal, R"(say "hi")"),
        ok(R"(a="back\\slash")", "a", equal, R"(back\slash)"),
        ok(R"(a="line\nbreak")", "a", equal, "line\nbreak"),
        ok(R"(project=~"tools\..+")", "project", regex, R"(tools\..+)"),
        ok(R"(a="tab\t")", "a", equal, R"(tab\t)"),
        ok(R"(a=trailing\)", "a", equal, R"(trailing\)"),
        ok(R"(a=bare\"quote)", "a", equal, R"(bare"quote)"),
        ok("a=\"multi\nline\"", "a", equal, "multi\nline"),
        ok(R"(a=~"[a-z]+\d{2}")", "a", regex, R"([a-z]+\d{2})")));

INSTANTIATE_TEST_SUITE_P(
    errors, parse_matcher_test,
    ::testing::Values(
        bad("", "no label name"), bad("   ", "no label name"), bad(R"(="x")", "no label name"),
        bad("severity", "needs an operator"), bad("severity page", "needs an operator"),
        bad("a!b", "needs an operator"), bad(R"(a~="x")", "needs an operator"),
        bad(R"(1abc="x")", "invalid label name '1abc'"),
        bad(R"(foo.bar="x")", "invalid label name 'foo.bar'"),
        // Prometheus label names have no ':' (that is for metric names).
        bad(R"(foo:bar="x")", "invalid label name 'foo:bar'"),
        bad(R"(naïve="x")", "invalid label name"),
        bad(R"(a="unterminated)", "missing its closing double quote"),
        bad(R"(a="escaped at end\")", "missing its closing double quote"),
        bad(R"(a=in"side)", "unescaped double quote"), bad(R"(a="x"y")", "unescaped double quote"),
        bad(R"(a="x" "y")", "unescaped double quote"), bad("a=\"\xff\xfe\"", "not valid UTF-8"),
        bad("a=\"\xc0\xaf\"", "not valid UTF-8"),      // overlong '/'
        bad("a=\"\xed\xa0\x80\"", "not valid UTF-8"),  // a UTF-16 surrogate
        bad(R"(a=~"(")", "invalid regex '(' for 'a': missing )"),
        bad(R"(a!~"x{2,1}")", "invalid regex"), bad(R"(a=~"(?P<n>x")", "invalid regex"),
        bad(R"(a=~"\p{Nope}")", "invalid regex"),
        // Backreferences are not RE2 (nor Alertmanager) syntax.
        bad(R"(a=~"(x)\1")", "invalid regex")));

TEST(parse_matcher, equal_operator_does_not_validate_value_as_regex) {
  // Only =~ and !~ compile their value; `(` is an ordinary string for = and !=.
  for (const char* text : {R"(a="(")", R"(a!="(")"}) {
    EXPECT_TRUE(std::holds_alternative<matcher_spec>(parse_matcher(text))) << text;
  }
}

TEST(parse_matcher, regex_must_not_escape_its_anchors) {
  // `)|(` is valid once wrapped as ^(?:)|()$ (Go's regexp, and so Alertmanager, would accept it
  // and match unanchored); it is rejected, as routing::matcher rejects it at compile time.
  for (const char* text : {R"(a=~")|(")", R"(a!~"x)|(y")"}) {
    const auto result = parse_matcher(text);
    ASSERT_TRUE(std::holds_alternative<std::string>(result)) << text;
    EXPECT_NE(std::get<std::string>(result).find("invalid regex"), std::string::npos);
  }
  EXPECT_EQ(regex_error("(x)|(y)"), std::nullopt);
  EXPECT_NE(regex_error("x)|(y"), std::nullopt);
}

TEST(parse_matcher, leaves_position_for_the_loader) {
  const auto result = parse_matcher("a=b");
  ASSERT_TRUE(std::holds_alternative<matcher_spec>(result));
  EXPECT_EQ(std::get<matcher_spec>(result).where.line, 0);
  EXPECT_EQ(std::get<matcher_spec>(result).where.column, 0);
}

}  // namespace
}  // namespace alertrouter::config
