#include "config/duration.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <string>

namespace alertrouter::config {
namespace {

using std::chrono::seconds;

struct parse_case {
  std::string text;
  std::optional<std::int64_t> seconds;
  friend void PrintTo(const parse_case& c, std::ostream* os) { *os << '"' << c.text << '"'; }
};

class parse_duration_test : public ::testing::TestWithParam<parse_case> {};

TEST_P(parse_duration_test, parses_or_rejects) {
  const parse_case& c = GetParam();
  const auto d = parse_duration(c.text);
  if (c.seconds) {
    ASSERT_TRUE(d.has_value()) << c.text;
    EXPECT_EQ(d->count(), *c.seconds) << c.text;
  } else {
    EXPECT_FALSE(d.has_value()) << c.text << " parsed as " << d->count() << "s";
  }
}

// Shared with the millisecond parser below, which must agree on every one of these.
const parse_case second_cases[] = {
    // The units, one at a time.
    parse_case{"30s", 30}, parse_case{"15m", 900}, parse_case{"2h", 7200}, parse_case{"1d", 86400},
    parse_case{"1w", 604800}, parse_case{"0s", 0}, parse_case{"0w", 0}, parse_case{"90m", 5400},
    parse_case{"007s", 7},
    // Combinations, largest unit first.
    parse_case{"1h30m", 5400}, parse_case{"1w2d", 777600}, parse_case{"1d12h", 129600},
    parse_case{"1w1d1h1m1s", 604800 + 86400 + 3600 + 60 + 1}, parse_case{"2m30s", 150},
    // Rejected: empty, bare numbers, unknown units, signs, spaces, fractions.
    parse_case{"", std::nullopt}, parse_case{"5", std::nullopt}, parse_case{"0", std::nullopt},
    parse_case{"s", std::nullopt}, parse_case{"1y", std::nullopt}, parse_case{"-1h", std::nullopt},
    parse_case{"+1h", std::nullopt}, parse_case{"1 h", std::nullopt},
    parse_case{" 1h", std::nullopt}, parse_case{"1h ", std::nullopt},
    parse_case{"1.5h", std::nullopt}, parse_case{"1H", std::nullopt},
    parse_case{"h1", std::nullopt}, parse_case{"1h30", std::nullopt},
    // Units out of order or repeated: typos, not durations.
    parse_case{"30m1h", std::nullopt}, parse_case{"1m1m", std::nullopt},
    parse_case{"1s1w", std::nullopt},
    // Overflow of the number or of the sum.
    parse_case{"9223372036854775807s", std::numeric_limits<std::int64_t>::max()},
    parse_case{"9223372036854775808s", std::nullopt}, parse_case{"15250284452473w", std::nullopt},
    parse_case{"99999999999999999999999s", std::nullopt},
    parse_case{"15250284452470w9223372036854775807s", std::nullopt},
    // Milliseconds are not a unit at second resolution, whole or not.
    parse_case{"1ms", std::nullopt}, parse_case{"500ms", std::nullopt},
    parse_case{"1000ms", std::nullopt}, parse_case{"1s500ms", std::nullopt}};

INSTANTIATE_TEST_SUITE_P(table, parse_duration_test, ::testing::ValuesIn(second_cases));

class parse_duration_ms_test : public ::testing::TestWithParam<parse_case> {};

// Here parse_case::seconds holds milliseconds.
TEST_P(parse_duration_ms_test, parses_or_rejects) {
  const parse_case& c = GetParam();
  const auto d = parse_duration_ms(c.text);
  if (c.seconds) {
    ASSERT_TRUE(d.has_value()) << c.text;
    EXPECT_EQ(d->count(), *c.seconds) << c.text;
  } else {
    EXPECT_FALSE(d.has_value()) << c.text << " parsed as " << d->count() << "ms";
  }
}

INSTANTIATE_TEST_SUITE_P(
    table, parse_duration_ms_test,
    ::testing::Values(parse_case{"500ms", 500}, parse_case{"1ms", 1}, parse_case{"0ms", 0},
                      parse_case{"100ms", 100}, parse_case{"5s", 5000}, parse_case{"1m", 60000},
                      parse_case{"1w", 604800000}, parse_case{"1s500ms", 1500},
                      parse_case{"1m30s", 90000}, parse_case{"1m1ms", 60001},
                      parse_case{"1w1d1h1m1s1ms", 694861001}, parse_case{"60000ms", 60000},
                      // Rejected: bare numbers, wrong case, spaces, unknown or out-of-order units.
                      parse_case{"500", std::nullopt}, parse_case{"ms", std::nullopt},
                      parse_case{"500MS", std::nullopt}, parse_case{"500 ms", std::nullopt},
                      parse_case{"500ms ", std::nullopt}, parse_case{"1.5s", std::nullopt},
                      parse_case{"500us", std::nullopt}, parse_case{"1mss", std::nullopt},
                      parse_case{"1sm", std::nullopt}, parse_case{"1ms1s", std::nullopt},
                      parse_case{"1ms1ms", std::nullopt}, parse_case{"1ms30", std::nullopt},
                      parse_case{"-500ms", std::nullopt},
                      // Overflow, now at millisecond resolution.
                      parse_case{"9223372036854775807ms", std::numeric_limits<std::int64_t>::max()},
                      parse_case{"9223372036854775808ms", std::nullopt},
                      parse_case{"9223372036854775807s", std::nullopt},
                      parse_case{"9223372036854775s808ms", std::nullopt},
                      parse_case{"9223372036854775s", 9223372036854775000}));

TEST(parse_duration_ms, agrees_with_parse_duration_on_every_second_case) {
  for (const parse_case& c : second_cases) {
    const auto ms = parse_duration_ms(c.text);
    if (c.seconds && *c.seconds <= std::numeric_limits<std::int64_t>::max() / 1000) {
      ASSERT_TRUE(ms.has_value()) << c.text;
      EXPECT_EQ(ms->count(), *c.seconds * 1000) << c.text;
    } else if (!c.seconds && c.text.find("ms") == std::string::npos) {
      // Rejected at second resolution for a reason other than the unit ms: rejected here too.
      EXPECT_FALSE(ms.has_value()) << c.text;
    }
  }
}

struct format_case {
  std::int64_t seconds;
  std::string text;
  friend void PrintTo(const format_case& c, std::ostream* os) { *os << c.seconds << "s"; }
};

class format_duration_test : public ::testing::TestWithParam<format_case> {};

TEST_P(format_duration_test, formats_in_largest_exact_units) {
  const format_case& c = GetParam();
  EXPECT_EQ(format_duration(seconds(c.seconds)), c.text);
}

INSTANTIATE_TEST_SUITE_P(table, format_duration_test,
                         ::testing::Values(format_case{0, "0s"}, format_case{30, "30s"},
                                           format_case{60, "1m"}, format_case{900, "15m"},
                                           format_case{5400, "1h30m"}, format_case{7200, "2h"},
                                           format_case{86400, "1d"}, format_case{604800, "1w"},
                                           format_case{691200, "1w1d"},
                                           format_case{1209600 + 3661, "2w1h1m1s"},
                                           format_case{-5400, "-1h30m"}));

TEST(format_duration, most_negative_value_does_not_overflow) {
  const std::string text = format_duration(seconds(std::numeric_limits<std::int64_t>::min()));
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.front(), '-');
  // The magnitude is one more than the largest parsable value, so re-parsing the tail fails
  // cleanly rather than wrapping.
  EXPECT_FALSE(parse_duration(std::string_view(text).substr(1)).has_value());
}

struct format_ms_case {
  std::int64_t milliseconds;
  std::string text;
  friend void PrintTo(const format_ms_case& c, std::ostream* os) { *os << c.milliseconds << "ms"; }
};

class format_duration_ms_test : public ::testing::TestWithParam<format_ms_case> {};

TEST_P(format_duration_ms_test, formats_in_largest_exact_units) {
  const format_ms_case& c = GetParam();
  EXPECT_EQ(format_duration_ms(std::chrono::milliseconds(c.milliseconds)), c.text);
}

INSTANTIATE_TEST_SUITE_P(table, format_duration_ms_test,
                         ::testing::Values(format_ms_case{0, "0ms"}, format_ms_case{1, "1ms"},
                                           format_ms_case{500, "500ms"}, format_ms_case{1000, "1s"},
                                           format_ms_case{1500, "1s500ms"},
                                           format_ms_case{60000, "1m"},
                                           format_ms_case{90000, "1m30s"},
                                           format_ms_case{604800000, "1w"},
                                           format_ms_case{-1500, "-1s500ms"}));

TEST(duration, format_then_parse_round_trips) {
  const std::int64_t values[] = {0,
                                 1,
                                 59,
                                 61,
                                 3599,
                                 3601,
                                 86399,
                                 86401,
                                 604799,
                                 604801,
                                 1234567,
                                 987654321,
                                 std::numeric_limits<std::int64_t>::max()};
  for (std::int64_t s : values) {
    const std::string text = format_duration(seconds(s));
    const auto back = parse_duration(text);
    ASSERT_TRUE(back.has_value()) << s << " -> " << text;
    EXPECT_EQ(back->count(), s) << text;
  }
}

TEST(duration, format_then_parse_round_trips_in_milliseconds) {
  const std::int64_t values[] = {0,
                                 1,
                                 999,
                                 1000,
                                 1001,
                                 59999,
                                 60001,
                                 3600001,
                                 86400999,
                                 604800001,
                                 1234567,
                                 98765432,
                                 std::numeric_limits<std::int64_t>::max()};
  for (std::int64_t ms : values) {
    const std::string text = format_duration_ms(std::chrono::milliseconds(ms));
    const auto back = parse_duration_ms(text);
    ASSERT_TRUE(back.has_value()) << ms << " -> " << text;
    EXPECT_EQ(back->count(), ms) << text;
  }
}

}  // namespace
}  // namespace alertrouter::config
