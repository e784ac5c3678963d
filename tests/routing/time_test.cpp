#include "routing/time.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace alertrouter::routing {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::minutes;
using std::chrono::seconds;

timestamp at(date::year_month_day ymd, hours h = hours{0}, minutes m = minutes{0},
             seconds s = seconds{0}, microseconds us = microseconds{0}) {
  return timestamp{date::sys_days{ymd}} + h + m + s + us;
}

using date::literals::operator""_y;
using date::literals::dec;
using date::literals::feb;
using date::literals::jan;
using date::literals::mar;

struct parse_case {
  std::string text;
  timestamp want;
};

TEST(ParseRfc3339, AcceptsValidForms) {
  const parse_case cases[] = {
      {"2026-01-07T16:00:00Z", at(2026_y / jan / 7, hours{16})},
      {"2026-01-07t16:00:00z", at(2026_y / jan / 7, hours{16})},
      {"2026-01-07T16:00:00+01:00", at(2026_y / jan / 7, hours{15})},
      {"2026-01-07T16:00:00-05:30", at(2026_y / jan / 7, hours{21}, minutes{30})},
      {"2026-01-07T00:30:00+01:00", at(2026_y / jan / 6, hours{23}, minutes{30})},
      {"2026-01-07T16:00:00.5Z", at(2026_y / jan / 7, hours{16}, {}, {}, microseconds{500000})},
      {"2026-01-07T16:00:00.123456Z",
       at(2026_y / jan / 7, hours{16}, {}, {}, microseconds{123456})},
      // Alertmanager sends nanoseconds; digits beyond microseconds are truncated.
      {"2026-01-07T16:00:00.123456789+01:00",
       at(2026_y / jan / 7, hours{15}, {}, {}, microseconds{123456})},
      {"2024-02-29T23:59:59Z", at(2024_y / feb / 29, hours{23}, minutes{59}, seconds{59})},
      {"2000-02-29T00:00:00Z", at(2000_y / feb / 29)},
      {"1970-01-01T00:00:00Z", timestamp{}},
      {"2026-12-31T23:59:59.999999Z",
       at(2026_y / dec / 31, hours{23}, minutes{59}, seconds{59}, microseconds{999999})},
      {"2026-03-01T00:00:00-00:00", at(2026_y / mar / 1)},
  };
  for (const auto& c : cases) {
    const auto got = parse_rfc3339(c.text);
    ASSERT_TRUE(got.has_value()) << c.text;
    EXPECT_EQ(*got, c.want) << c.text;
  }
}

TEST(ParseRfc3339, AcceptsAlertmanagersZeroTime) {
  // Go's zero time.Time, which Alertmanager sends as endsAt of a firing alert.
  const auto got = parse_rfc3339("0001-01-01T00:00:00Z");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, timestamp{date::sys_days{date::year{1} / jan / 1}});
  EXPECT_EQ(got->time_since_epoch(), seconds{-62135596800});
}

TEST(ParseRfc3339, RejectsEverythingElse) {
  const std::string bad[] = {
      "",
      "garbage",
      "2026-01-07",
      "2026-01-07T16:00:00",           // no offset
      "2026-01-07T16:00Z",             // no seconds
      "2026-01-07 16:00:00Z",          // space instead of T
      "2026-1-07T16:00:00Z",           // short month
      "26-01-07T16:00:00Z",            // short year
      "2026-13-01T00:00:00Z",          // month 13
      "2026-00-01T00:00:00Z",          // month 0
      "2026-01-00T00:00:00Z",          // day 0
      "2026-01-32T00:00:00Z",          // day 32
      "2026-02-30T00:00:00Z",          // Feb 30
      "2026-02-29T00:00:00Z",          // not a leap year
      "1900-02-29T00:00:00Z",          // century, not a leap year
      "2026-04-31T00:00:00Z",          // April has 30 days
      "2026-01-07T24:00:00Z",          // hour 24
      "2026-01-07T16:60:00Z",          // minute 60
      "2026-01-07T16:00:60Z",          // leap second, rejected like Go
      "2026-01-07T16:00:00.Z",         // dot without digits
      "2026-01-07T16:00:00.12a3Z",     // junk in fraction
      "2026-01-07T16:00:00+24:00",     // offset hour out of range
      "2026-01-07T16:00:00+01:60",     // offset minute out of range
      "2026-01-07T16:00:00+0100",      // offset without colon
      "2026-01-07T16:00:00+01",        // short offset
      "2026-01-07T16:00:00Z ",         // trailing space
      " 2026-01-07T16:00:00Z",         // leading space
      "2026-01-07T16:00:00ZZ",         // trailing junk
      "2026-01-07T16:00:00+01:00:00",  // trailing junk after offset
      "+2026-01-07T16:00:00Z",
      "2026-01-07T16:00:00UTC",
      "2026-01-07T-1:00:00Z",
      std::string("2026-01-07T16:00:00\0Z", 21),
  };
  for (const auto& text : bad) {
    EXPECT_FALSE(parse_rfc3339(text).has_value()) << "accepted: " << text;
  }
}

TEST(FormatRfc3339, SecondsAndMicroseconds) {
  EXPECT_EQ(format_rfc3339(date::sys_days{2026_y / jan / 7} + hours{16}), "2026-01-07T16:00:00Z");
  EXPECT_EQ(format_rfc3339(at(2026_y / jan / 7, hours{16}, minutes{5}, seconds{9})),
            "2026-01-07T16:05:09Z");
  EXPECT_EQ(format_rfc3339(at(2026_y / jan / 7, hours{16}, {}, {}, microseconds{123456})),
            "2026-01-07T16:00:00.123456Z");
  EXPECT_EQ(format_rfc3339(at(2026_y / jan / 7, {}, {}, {}, microseconds{5})),
            "2026-01-07T00:00:00.000005Z");
  EXPECT_EQ(format_rfc3339(timestamp{}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(timestamp{} - microseconds{1}), "1969-12-31T23:59:59.999999Z");
}

// format_rfc3339 writes its digits by hand for years 0 to 9999; printf's spelling is the
// reference, over times spread from year -50 to 10050 (those outside still go through printf).
TEST(FormatRfc3339, AgreesWithPrintfAcrossTheYears) {
  auto reference = [](timestamp t) {
    const auto day = date::floor<date::days>(t);
    const date::year_month_day ymd{day};
    const long long micros = (t - day).count();
    const long long secs = micros / 1'000'000, frac = micros % 1'000'000;
    char buf[64];
    const int n =
        frac != 0 ? std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ",
                                  static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                                  static_cast<unsigned>(ymd.day()), secs / 3600, secs / 60 % 60,
                                  secs % 60, frac)
                  : std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lldZ",
                                  static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                                  static_cast<unsigned>(ymd.day()), secs / 3600, secs / 60 % 60,
                                  secs % 60);
    return std::string(buf, static_cast<std::size_t>(n));
  };
  const timestamp first = date::sys_days{date::year{-50} / jan / 1};
  const timestamp last = date::sys_days{date::year{10050} / jan / 1};
  const long long span = (last - first).count();
  std::uint64_t rng = 7;
  for (int i = 0; i < 20000; ++i) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    timestamp t =
        first + microseconds{static_cast<long long>(rng % static_cast<std::uint64_t>(span))};
    if (i % 3 == 0) t = date::floor<seconds>(t);  // whole seconds: no fraction written
    ASSERT_EQ(format_rfc3339(t), reference(t)) << i;
  }
}

TEST(FormatRfc3339, OtherPrecisionsAreFlooredToMicroseconds) {
  EXPECT_EQ(format_rfc3339(date::sys_days{2026_y / mar / 1}), "2026-03-01T00:00:00Z");
  const auto ns = std::chrono::sys_time<std::chrono::nanoseconds>{} - std::chrono::nanoseconds{1};
  EXPECT_EQ(format_rfc3339(ns), "1969-12-31T23:59:59.999999Z");
}

TEST(FormatRfc3339, ZeroTimeOfAlertmanagerRoundTrips) {
  const auto zero = parse_rfc3339("0001-01-01T00:00:00Z");
  ASSERT_TRUE(zero.has_value());
  EXPECT_EQ(format_rfc3339(*zero), "0001-01-01T00:00:00Z");
}

TEST(FormatRfc3339, RoundTripsThroughParse) {
  const std::string texts[] = {"2026-01-07T16:00:00Z", "2024-02-29T23:59:59.000001Z",
                               "1999-12-31T23:59:59.5Z", "2038-01-19T03:14:08Z"};
  for (const auto& text : texts) {
    const auto t = parse_rfc3339(text);
    ASSERT_TRUE(t.has_value()) << text;
    const auto again = parse_rfc3339(format_rfc3339(*t));
    ASSERT_TRUE(again.has_value()) << text;
    EXPECT_EQ(*again, *t) << text;
  }
  // Offsets are normalised to UTC.
  const auto t = parse_rfc3339("2026-03-29T02:30:00+02:00");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(format_rfc3339(*t), "2026-03-29T00:30:00Z");
}

}  // namespace
}  // namespace alertrouter::routing
