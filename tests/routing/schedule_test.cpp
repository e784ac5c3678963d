#include "routing/schedule.h"

#include <date/date.h>
#include <date/tz.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace alertrouter::routing {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using namespace std::chrono_literals;

constexpr seconds one_day = hours(24);
constexpr seconds one_week = hours(24 * 7);

date::year_month_day ymd(int y, unsigned m, unsigned d) {
  return date::year{y} / date::month{m} / date::day{d};
}
// Wall-clock time in a schedule's zone.
date::local_seconds local(int y, unsigned m, unsigned d, seconds tod = 0s) {
  return date::local_days{ymd(y, m, d)} + tod;
}
// An instant, spelled in UTC.
sys_seconds utc(int y, unsigned m, unsigned d, seconds tod = 0s) {
  return date::sys_days{ymd(y, m, d)} + tod;
}

config::layer make_layer(std::string name, std::vector<std::string> members,
                         date::local_seconds start, seconds shift,
                         std::optional<config::daily_window> active = std::nullopt) {
  config::layer l;
  l.name = std::move(name);
  l.members = std::move(members);
  l.start = start;
  l.shift = shift;
  l.active = active;
  return l;
}

config::schedule_override make_override(std::string person, date::local_seconds from,
                                        date::local_seconds to) {
  config::schedule_override o;
  o.person = std::move(person);
  o.from = from;
  o.to = to;
  return o;
}

config::schedule make_schedule(std::string zone, std::vector<config::layer> layers,
                               std::vector<config::schedule_override> overrides = {}) {
  config::schedule s;
  s.name = "test";
  s.timezone = std::move(zone);
  s.layers = std::move(layers);
  s.overrides = std::move(overrides);
  return s;
}

// Throws (failing the test) when compile() reports an error.
schedule compile_ok(const config::schedule& s) {
  auto r = schedule::compile(s);
  if (const auto* err = std::get_if<std::string>(&r)) ADD_FAILURE() << *err;
  return std::get<schedule>(std::move(r));
}

config::daily_window window(seconds begin, seconds end) { return config::daily_window{begin, end}; }

// --- compile ------------------------------------------------------------------------------

struct compile_error_case {
  const char* what;
  config::schedule spec;
  const char* message_part;
};

TEST(ScheduleCompile, RejectsBadSpecsWithAMessage) {
  const auto start = local(2026, 1, 7, 16h);
  const compile_error_case cases[] = {
      {"unknown zone",
       make_schedule("Mars/Olympus_Mons", {make_layer("l", {"a"}, start, one_week)}),
       "unknown time zone \"Mars/Olympus_Mons\""},
      {"no members", make_schedule("UTC", {make_layer("empty", {}, start, one_week)}),
       "layer empty: no members"},
      {"zero shift", make_schedule("UTC", {make_layer("z", {"a"}, start, 0s)}),
       "shift must be positive"},
      {"negative shift", make_schedule("UTC", {make_layer("n", {"a"}, start, -one_day)}),
       "shift must be positive"},
      {"empty window",
       make_schedule("UTC", {make_layer("w", {"a"}, start, one_week, window(3h, 3h))}),
       "daily window"},
      {"window beyond a day",
       make_schedule("UTC", {make_layer("w", {"a"}, start, one_week, window(3h, 25h))}),
       "daily window"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = schedule::compile(c.spec);
    ASSERT_TRUE(std::holds_alternative<std::string>(r));
    EXPECT_THAT(std::get<std::string>(r), ::testing::HasSubstr("schedule test"));
    EXPECT_THAT(std::get<std::string>(r), ::testing::HasSubstr(c.message_part));
  }
}

TEST(ScheduleCompile, KeepsNameAndZone) {
  auto spec = make_schedule("Europe/Berlin", {make_layer("l", {"a"}, local(2026, 1, 7), one_day)});
  spec.name = "clinic";
  const schedule s = compile_ok(spec);
  EXPECT_EQ(s.name(), "clinic");
  ASSERT_NE(s.zone(), nullptr);
  EXPECT_EQ(s.zone()->name(), "Europe/Berlin");
}

// --- a year of weekly Wednesday 16:00 handoffs ---------------------------------------------

struct weekly_zone_case {
  const char* zone;
  int standard_utc_hour;      // 16:00 local in winter, as a UTC hour
  int summer_utc_hour;        // 16:00 local in summer
  sys_seconds summer_begins;  // 2026's DST period, in UTC, per the zone's rules
  sys_seconds summer_ends;
};

TEST(ScheduleWeekly, AYearOfWednesdayHandoffsStayAt1600Local) {
  const weekly_zone_case cases[] = {
      {"Europe/Berlin", 15, 14, utc(2026, 3, 29, 1h), utc(2026, 10, 25, 1h)},
      {"America/New_York", 21, 20, utc(2026, 3, 8, 7h), utc(2026, 11, 1, 6h)},
  };
  const std::vector<std::string> members = {"alice", "bob", "carol"};
  constexpr int weeks = 60;  // 2026-01-07 .. 2027-03-03, before 2027's spring change
  for (const auto& c : cases) {
    SCOPED_TRACE(c.zone);
    const schedule s = compile_ok(
        make_schedule(c.zone, {make_layer("weekly", members, local(2026, 1, 7, 16h), one_week)}));

    // The expected handoff instants, from the hard-coded DST dates above (not from the tz
    // library): Wednesdays, at the UTC hour of 16:00 local on that date.
    std::vector<sys_seconds> handoff;
    for (int k = 0; k <= weeks; ++k) {
      const date::sys_days day = date::sys_days{ymd(2026, 1, 7)} + date::days{7 * k};
      const bool summer = day > c.summer_begins && day < c.summer_ends;
      handoff.push_back(day + hours(summer ? c.summer_utc_hour : c.standard_utc_hour));
    }

    int short_weeks = 0;
    int long_weeks = 0;
    for (int k = 0; k < weeks; ++k) {
      SCOPED_TRACE(k);
      const sys_seconds h = handoff[static_cast<std::size_t>(k)];
      const sys_seconds next = handoff[static_cast<std::size_t>(k + 1)];
      const on_call now = s.at(h);
      EXPECT_EQ(now.person, members[static_cast<std::size_t>(k % 3)]);
      EXPECT_EQ(now.layer, "weekly");
      EXPECT_FALSE(now.is_override);
      EXPECT_EQ(now.since, h);
      EXPECT_EQ(now.until, next);

      const on_call before = s.at(h - 1s);
      if (k == 0) {
        EXPECT_EQ(before.person, "");
        EXPECT_EQ(before.since, std::nullopt);
      } else {
        EXPECT_EQ(before.person, members[static_cast<std::size_t>((k + 2) % 3)]);
      }
      EXPECT_EQ(before.until, h);

      // The local wall clock at each handoff is Wednesday 16:00.
      const date::local_seconds l = s.zone()->to_local(h);
      const date::local_days l_day = date::floor<date::days>(l);
      EXPECT_EQ(date::weekday{l_day}, date::Wednesday);
      EXPECT_EQ(l - l_day, 16h);

      const auto length = next - h;
      if (length == 167h) ++short_weeks;
      if (length == 169h) ++long_weeks;
      if (length != 167h && length != 169h) {
        EXPECT_EQ(length, 168h);
      }
    }
    EXPECT_EQ(short_weeks, 1);
    EXPECT_EQ(long_weeks, 1);

    // The same year as a timeline: one stretch per shift, exactly at the handoffs.
    const auto line = s.timeline(handoff.front(), handoff.back());
    ASSERT_EQ(line.size(), static_cast<std::size_t>(weeks));
    for (std::size_t k = 0; k < line.size(); ++k) {
      EXPECT_EQ(line[k].start, handoff[k]);
      EXPECT_EQ(line[k].end, handoff[k + 1]);
      EXPECT_EQ(line[k].person, members[k % 3]);
    }
  }
}

// --- shifts spanning DST changes -----------------------------------------------------------

struct shift_span_case {
  const char* what;
  const char* zone;
  date::local_seconds start;
  seconds shift;
  sys_seconds probe;
  sys_seconds since;  // the shift containing `probe`, in UTC
  sys_seconds until;
  hours length;
};

TEST(ScheduleShifts, ShiftsAcrossDstChangesKeepLocalHandoffs) {
  const shift_span_case cases[] = {
      {"Berlin weekly, spring", "Europe/Berlin", local(2026, 1, 7, 16h), one_week,
       utc(2026, 3, 29, 12h), utc(2026, 3, 25, 15h), utc(2026, 4, 1, 14h), 167h},
      {"Berlin weekly, fall", "Europe/Berlin", local(2026, 1, 7, 16h), one_week,
       utc(2026, 10, 25, 12h), utc(2026, 10, 21, 14h), utc(2026, 10, 28, 15h), 169h},
      {"New York weekly, spring", "America/New_York", local(2026, 1, 7, 16h), one_week,
       utc(2026, 3, 8, 12h), utc(2026, 3, 4, 21h), utc(2026, 3, 11, 20h), 167h},
      {"New York weekly, fall", "America/New_York", local(2026, 1, 7, 16h), one_week,
       utc(2026, 11, 1, 12h), utc(2026, 10, 28, 20h), utc(2026, 11, 4, 21h), 169h},
      {"Berlin daily, spring", "Europe/Berlin", local(2026, 1, 7, 16h), one_day,
       utc(2026, 3, 29, 6h), utc(2026, 3, 28, 15h), utc(2026, 3, 29, 14h), 23h},
      {"New York daily, fall", "America/New_York", local(2026, 1, 7, 16h), one_day,
       utc(2026, 11, 1, 12h), utc(2026, 10, 31, 20h), utc(2026, 11, 1, 21h), 25h},
      {"Berlin 12h, spring", "Europe/Berlin", local(2026, 3, 1, 8h), 12h, utc(2026, 3, 29, 1h),
       utc(2026, 3, 28, 19h), utc(2026, 3, 29, 6h), 11h},
      {"Berlin 12h, fall", "Europe/Berlin", local(2026, 10, 1, 8h), 12h, utc(2026, 10, 25, 3h),
       utc(2026, 10, 24, 18h), utc(2026, 10, 25, 7h), 13h},
      {"New York 3d, spring", "America/New_York", local(2026, 3, 6, 16h), 3 * one_day,
       utc(2026, 3, 8, 12h), utc(2026, 3, 6, 21h), utc(2026, 3, 9, 20h), 71h},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const schedule s =
        compile_ok(make_schedule(c.zone, {make_layer("l", {"a", "b"}, c.start, c.shift)}));
    const on_call now = s.at(c.probe);
    EXPECT_EQ(now.since, c.since);
    EXPECT_EQ(now.until, c.until);
    EXPECT_EQ(c.until - c.since, c.length);
    EXPECT_NE(s.at(c.since - 1s).person, now.person);
    EXPECT_NE(s.at(c.until).person, now.person);
  }
}

// Shifts of 1d, 3d and 12h hand off at start + k*shift on the wall clock, member k mod n.
TEST(ScheduleShifts, RegularShiftLengthsRotateMembers) {
  struct length_case {
    const char* zone;
    seconds shift;
  };
  const length_case cases[] = {
      {"UTC", one_day},           {"UTC", 3 * one_day},           {"UTC", 12h},
      {"Europe/Berlin", one_day}, {"Europe/Berlin", 3 * one_day}, {"Europe/Berlin", 12h},
      {"America/New_York", 12h},
  };
  const std::vector<std::string> members = {"a", "b", "c", "d"};
  const date::local_seconds start = local(2026, 2, 20, 9h);
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.zone) + " " + std::to_string(c.shift.count()));
    const schedule s =
        compile_ok(make_schedule(c.zone, {make_layer("l", members, start, c.shift)}));
    const date::time_zone* zone = date::locate_zone(c.zone);
    const auto handoff = [&](int k) { return zone->to_sys(start + k * c.shift); };
    for (int k = 0; k < 120; ++k) {
      SCOPED_TRACE(k);
      const on_call now = s.at(handoff(k) + 1h);
      EXPECT_EQ(now.person, members[static_cast<std::size_t>(k % 4)]);
      EXPECT_EQ(now.since, handoff(k));
      EXPECT_EQ(now.until, handoff(k + 1));
    }
  }
}

TEST(ScheduleShifts, UtcScheduleHandsOffEvery168Hours) {
  const schedule s = compile_ok(make_schedule(
      "UTC", {make_layer("clinic", {"alice", "bob", "carol"}, local(2026, 1, 7, 16h), one_week)}));
  for (int k = 0; k < 60; ++k) {
    const sys_seconds h = utc(2026, 1, 7, 16h) + k * one_week;
    const on_call now = s.at(h + 3 * one_day);
    EXPECT_EQ(now.person,
              (std::vector<std::string>{"alice", "bob", "carol"})[static_cast<std::size_t>(k % 3)]);
    EXPECT_EQ(now.since, h);
    EXPECT_EQ(now.until, h + 168h);
  }
}

// --- nonexistent and ambiguous local handoff times -----------------------------------------

struct odd_local_case {
  const char* what;
  date::local_seconds start;
  seconds shift;
  std::vector<sys_seconds> handoffs;  // expected, in UTC; members rotate a, b, c, ...
};

TEST(ScheduleShifts, NonexistentAndAmbiguousHandoffsInBerlin) {
  const odd_local_case cases[] = {
      // 02:30 does not exist on 2026-03-29: the first shift starts when the gap ends (03:00
      // CEST = 01:00Z) and lasts until 02:30 CEST the next day (23.5h).
      {"starts in the gap",
       local(2026, 3, 29, 2h + 30min),
       one_day,
       {utc(2026, 3, 29, 1h), utc(2026, 3, 30, 30min), utc(2026, 3, 31, 30min)}},
      // A daily 02:30 rotation crossing the gap: that day's handoff is at the gap's end.
      {"crosses the gap",
       local(2026, 3, 27, 2h + 30min),
       one_day,
       {utc(2026, 3, 27, 1h + 30min), utc(2026, 3, 28, 1h + 30min), utc(2026, 3, 29, 1h),
        utc(2026, 3, 30, 30min)}},
      // 02:30 happens twice on 2026-10-25: the earlier one (CEST, 00:30Z) is the handoff.
      {"starts in the repeated hour",
       local(2026, 10, 25, 2h + 30min),
       one_day,
       {utc(2026, 10, 25, 30min), utc(2026, 10, 26, 1h + 30min)}},
      {"crosses the repeated hour",
       local(2026, 10, 23, 2h + 30min),
       one_day,
       {utc(2026, 10, 23, 30min), utc(2026, 10, 24, 30min), utc(2026, 10, 25, 30min),
        utc(2026, 10, 26, 1h + 30min)}},
      // Hourly shifts: 02:00 and 03:00 on the spring day both map to 01:00Z, so the 02:00
      // shift has no length and is skipped (c never serves); the hour after it goes to d.
      {"hourly through the gap",
       local(2026, 3, 29, 0h),
       1h,
       {utc(2026, 3, 28, 23h), utc(2026, 3, 29, 0h), utc(2026, 3, 29, 1h), utc(2026, 3, 29, 1h),
        utc(2026, 3, 29, 2h)}},
      // Hourly shifts on the fall day: 02:00 is taken at its first occurrence (00:00Z), so
      // the 02:00 shift lasts two hours, until 03:00 CET (02:00Z).
      {"hourly through the repeated hour",
       local(2026, 10, 25, 0h),
       1h,
       {utc(2026, 10, 24, 22h), utc(2026, 10, 24, 23h), utc(2026, 10, 25, 0h),
        utc(2026, 10, 25, 2h), utc(2026, 10, 25, 3h)}},
      // Half-hour shifts: 02:00 and 02:30 take their first occurrences, 03:00 is CET.
      {"half-hourly through the repeated hour",
       local(2026, 10, 25, 1h),
       30min,
       {utc(2026, 10, 24, 23h), utc(2026, 10, 24, 23h + 30min), utc(2026, 10, 25, 0h),
        utc(2026, 10, 25, 30min), utc(2026, 10, 25, 2h), utc(2026, 10, 25, 2h + 30min)}},
  };
  const std::vector<std::string> members = {"a", "b", "c", "d", "e", "f", "g"};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const schedule s =
        compile_ok(make_schedule("Europe/Berlin", {make_layer("l", members, c.start, c.shift)}));
    EXPECT_EQ(s.at(c.handoffs.front() - 1s).person, "") << "nobody before the first shift";
    for (std::size_t k = 0; k + 1 < c.handoffs.size(); ++k) {
      SCOPED_TRACE(k);
      if (c.handoffs[k] == c.handoffs[k + 1]) continue;  // a shift collapsed in the gap
      // Probe every quarter hour inside the shift; each must name member k.
      for (sys_seconds t = c.handoffs[k]; t < c.handoffs[k + 1]; t += 15min) {
        const on_call now = s.at(t);
        EXPECT_EQ(now.person, members[k]) << date::format("%FT%TZ", t);
        EXPECT_EQ(now.since, c.handoffs[k]);
        EXPECT_EQ(now.until, c.handoffs[k + 1]);
      }
      EXPECT_EQ(s.at(c.handoffs[k + 1] - 1s).person, members[k]);
    }
  }
}

// --- daily windows -------------------------------------------------------------------------

struct window_case {
  const char* zone;
  config::daily_window active;
  sys_seconds t;
  bool covered;
};

TEST(ScheduleWindows, CoverOnlyTheirLocalTimeOfDay) {
  const auto wrap = window(15h, 3h);
  const auto day = window(3h, 15h);
  const window_case cases[] = {
      // UTC, both kinds, edges exactly.
      {"UTC", wrap, utc(2026, 2, 10, 14h + 59min + 59s), false},
      {"UTC", wrap, utc(2026, 2, 10, 15h), true},
      {"UTC", wrap, utc(2026, 2, 10, 23h + 59min + 59s), true},
      {"UTC", wrap, utc(2026, 2, 11, 0h), true},
      {"UTC", wrap, utc(2026, 2, 11, 2h + 59min + 59s), true},
      {"UTC", wrap, utc(2026, 2, 11, 3h), false},
      {"UTC", day, utc(2026, 2, 11, 2h + 59min + 59s), false},
      {"UTC", day, utc(2026, 2, 11, 3h), true},
      {"UTC", day, utc(2026, 2, 11, 14h + 59min + 59s), true},
      {"UTC", day, utc(2026, 2, 11, 15h), false},
      // New York, winter: 15:00 EST = 20:00Z.
      {"America/New_York", wrap, utc(2026, 2, 10, 19h + 59min + 59s), false},
      {"America/New_York", wrap, utc(2026, 2, 10, 20h), true},
      {"America/New_York", day, utc(2026, 2, 10, 8h), true},
      {"America/New_York", day, utc(2026, 2, 10, 7h + 59min + 59s), false},
      // Spring forward (2026-03-08 02:00 EST -> 03:00 EDT at 07:00Z): 03:00 local is 07:00Z.
      {"America/New_York", wrap, utc(2026, 3, 8, 6h + 59min + 59s), true},
      {"America/New_York", wrap, utc(2026, 3, 8, 7h), false},
      {"America/New_York", day, utc(2026, 3, 8, 6h + 59min + 59s), false},
      {"America/New_York", day, utc(2026, 3, 8, 7h), true},
      {"America/New_York", day, utc(2026, 3, 8, 18h + 59min + 59s), true},  // 14:59:59 EDT
      {"America/New_York", day, utc(2026, 3, 8, 19h), false},
      // Fall back (2026-11-01 02:00 EDT -> 01:00 EST at 06:00Z): 03:00 EST is 08:00Z.
      {"America/New_York", wrap, utc(2026, 11, 1, 5h + 59min + 59s), true},
      {"America/New_York", wrap, utc(2026, 11, 1, 6h), true},
      {"America/New_York", wrap, utc(2026, 11, 1, 7h + 59min + 59s), true},
      {"America/New_York", wrap, utc(2026, 11, 1, 8h), false},
      {"America/New_York", day, utc(2026, 11, 1, 8h), true},
      // A window starting inside the repeated hour: in at 01:30 EDT, out when the clock falls
      // back to 01:00, in again at 01:30 EST.
      {"America/New_York", window(1h + 30min, 12h), utc(2026, 11, 1, 5h + 29min + 59s), false},
      {"America/New_York", window(1h + 30min, 12h), utc(2026, 11, 1, 5h + 30min), true},
      {"America/New_York", window(1h + 30min, 12h), utc(2026, 11, 1, 5h + 59min + 59s), true},
      {"America/New_York", window(1h + 30min, 12h), utc(2026, 11, 1, 6h), false},
      {"America/New_York", window(1h + 30min, 12h), utc(2026, 11, 1, 6h + 29min + 59s), false},
      {"America/New_York", window(1h + 30min, 12h), utc(2026, 11, 1, 6h + 30min), true},
      // A window starting inside the gap opens when the gap ends.
      {"America/New_York", window(2h + 30min, 12h), utc(2026, 3, 8, 6h + 59min + 59s), false},
      {"America/New_York", window(2h + 30min, 12h), utc(2026, 3, 8, 7h), true},
      // Berlin, spring forward (02:00 CET -> 03:00 CEST at 01:00Z).
      {"Europe/Berlin", wrap, utc(2026, 3, 29, 0h + 59min + 59s), true},
      {"Europe/Berlin", wrap, utc(2026, 3, 29, 1h), false},
      {"Europe/Berlin", day, utc(2026, 3, 29, 1h), true},
      {"Europe/Berlin", day, utc(2026, 3, 29, 13h), false},  // 15:00 CEST
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.zone) + " " + date::format("%FT%TZ", c.t) + " window " +
                 std::to_string(c.active.begin.count()) + "-" +
                 std::to_string(c.active.end.count()));
    const schedule s = compile_ok(
        make_schedule(c.zone, {make_layer("w", {"wendy"}, local(2026, 1, 1), one_week, c.active)}));
    const on_call now = s.at(c.t);
    EXPECT_EQ(now.person, c.covered ? "wendy" : "");
    EXPECT_EQ(now.layer, c.covered ? "w" : "");
  }
}

struct window_span_case {
  const char* what;
  const char* zone;
  config::daily_window active;
  sys_seconds probe;
  sys_seconds since;
  sys_seconds until;
};

TEST(ScheduleWindows, SinceAndUntilAreTheWindowEdges) {
  const window_span_case cases[] = {
      {"UTC wrap", "UTC", window(15h, 3h), utc(2026, 2, 10, 22h), utc(2026, 2, 10, 15h),
       utc(2026, 2, 11, 3h)},
      {"UTC gap between windows", "UTC", window(15h, 3h), utc(2026, 2, 10, 9h),
       utc(2026, 2, 10, 3h), utc(2026, 2, 10, 15h)},
      {"New York spring night is 11h", "America/New_York", window(15h, 3h), utc(2026, 3, 8, 3h),
       utc(2026, 3, 7, 20h), utc(2026, 3, 8, 7h)},
      {"New York fall night is 13h", "America/New_York", window(15h, 3h), utc(2026, 11, 1, 3h),
       utc(2026, 10, 31, 19h), utc(2026, 11, 1, 8h)},
      {"New York fall day", "America/New_York", window(3h, 15h), utc(2026, 11, 1, 12h),
       utc(2026, 11, 1, 8h), utc(2026, 11, 1, 20h)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const schedule s = compile_ok(
        make_schedule(c.zone, {make_layer("w", {"wendy"}, local(2026, 1, 1), one_week, c.active)}));
    const on_call now = s.at(c.probe);
    EXPECT_EQ(now.since, c.since);
    EXPECT_EQ(now.until, c.until);
  }
}

TEST(ScheduleWindows, RepeatedHourTimelineFollowsTimeOfDay) {
  const schedule s = compile_ok(make_schedule(
      "America/New_York",
      {make_layer("w", {"wendy"}, local(2026, 1, 1), one_week, window(1h + 30min, 12h))}));
  const auto line = s.timeline(utc(2026, 11, 1, 5h), utc(2026, 11, 1, 7h));
  ASSERT_EQ(line.size(), 4u);
  const sys_seconds edges[] = {utc(2026, 11, 1, 5h), utc(2026, 11, 1, 5h + 30min),
                               utc(2026, 11, 1, 6h), utc(2026, 11, 1, 6h + 30min),
                               utc(2026, 11, 1, 7h)};
  const char* people[] = {"", "wendy", "", "wendy"};
  for (std::size_t i = 0; i < line.size(); ++i) {
    EXPECT_EQ(line[i].start, edges[i]);
    EXPECT_EQ(line[i].end, edges[i + 1]);
    EXPECT_EQ(line[i].person, people[i]);
  }
}

// --- follow the sun (the issue's `oncall` sample) ------------------------------------------

config::schedule oncall_sample() {
  return make_schedule(
      "America/New_York",
      {make_layer("emea", {"dave", "erin"}, local(2026, 1, 7, 16h), one_week, window(3h, 15h)),
       make_layer("amer", {"frank", "grace"}, local(2026, 1, 7, 16h), one_week, window(15h, 3h))},
      {make_override("heidi", local(2026, 12, 24), local(2026, 12, 27))});
}

TEST(ScheduleFollowTheSun, TwoWindowedLayersCoverTheWholeYear) {
  const schedule s = compile_ok(oncall_sample());
  const sys_seconds from = utc(2026, 1, 8, 5h);  // 2026-01-08 00:00 EST, both layers started
  const sys_seconds to = utc(2027, 1, 8, 5h);
  const auto line = s.timeline(from, to);
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.front().start, from);
  EXPECT_EQ(line.back().end, to);
  int overrides = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    SCOPED_TRACE(date::format("%FT%TZ", line[i].start));
    EXPECT_FALSE(line[i].person.empty()) << "coverage gap";
    EXPECT_LT(line[i].start, line[i].end);
    if (i > 0) {
      EXPECT_EQ(line[i].start, line[i - 1].end);
      EXPECT_FALSE(line[i].person == line[i - 1].person && line[i].layer == line[i - 1].layer &&
                   line[i].is_override == line[i - 1].is_override)
          << "adjacent equal stretches must be merged";
    }
    if (line[i].is_override) {
      ++overrides;
      EXPECT_EQ(line[i].person, "heidi");
      EXPECT_EQ(line[i].start, utc(2026, 12, 24, 5h));
      EXPECT_EQ(line[i].end, utc(2026, 12, 27, 5h));
    } else {
      EXPECT_LE(line[i].end - line[i].start, 13h);  // a window; 13h on the fall-back night
      const seconds tod = s.zone()->to_local(line[i].start) -
                          date::floor<date::days>(s.zone()->to_local(line[i].start));
      // Stretches begin at a window's opening, at 16:00 (a handoff inside amer's window) or at
      // midnight (the range start, or the end of the override).
      if (line[i].layer == "emea") {
        EXPECT_EQ(tod, 3h);
      }
      if (line[i].layer == "amer") {
        EXPECT_TRUE(tod == 15h || tod == 16h || tod == 0s) << tod.count();
      }
    }
  }
  EXPECT_EQ(overrides, 1);
}

struct sun_case {
  const char* what;
  sys_seconds t;
  const char* person;
  const char* layer;
  sys_seconds since;
  sys_seconds until;
};

TEST(ScheduleFollowTheSun, HandoffsInsideAndOutsideWindows) {
  const schedule s = compile_ok(oncall_sample());
  const sun_case cases[] = {
      // 2026-01-14 is the second Wednesday: amer hands off frank -> grace at 16:00 EST (21:00Z)
      // inside its window; emea's handoff at 16:00 is outside its window, so erin first
      // appears at 03:00 the next morning.
      {"amer before the handoff", utc(2026, 1, 14, 20h + 30min), "frank", "amer",
       utc(2026, 1, 14, 20h), utc(2026, 1, 14, 21h)},
      {"amer at the handoff", utc(2026, 1, 14, 21h), "grace", "amer", utc(2026, 1, 14, 21h),
       utc(2026, 1, 15, 8h)},
      {"emea last morning of dave", utc(2026, 1, 14, 10h), "dave", "emea", utc(2026, 1, 14, 8h),
       utc(2026, 1, 14, 20h)},
      {"emea first morning of erin", utc(2026, 1, 15, 8h), "erin", "emea", utc(2026, 1, 15, 8h),
       utc(2026, 1, 15, 20h)},
      // Spring forward: emea's 03:00 EDT is 07:00Z.
      {"amer on the short night", utc(2026, 3, 8, 6h + 59min + 59s), "frank", "amer",
       utc(2026, 3, 7, 20h), utc(2026, 3, 8, 7h)},
      {"emea on the short night", utc(2026, 3, 8, 7h), "dave", "emea", utc(2026, 3, 8, 7h),
       utc(2026, 3, 8, 19h)},
      {"override", utc(2026, 12, 25, 12h), "heidi", "", utc(2026, 12, 24, 5h),
       utc(2026, 12, 27, 5h)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const on_call now = s.at(c.t);
    EXPECT_EQ(now.person, c.person);
    EXPECT_EQ(now.layer, c.layer);
    EXPECT_EQ(now.is_override, std::string(c.layer).empty());
    EXPECT_EQ(now.since, c.since);
    EXPECT_EQ(now.until, c.until);
  }
}

// --- overrides -----------------------------------------------------------------------------

struct override_case {
  const char* what;
  std::vector<config::schedule_override> overrides;
  sys_seconds t;
  const char* person;
  bool is_override;
  sys_seconds since;
  sys_seconds until;
};

TEST(ScheduleOverrides, AtShiftEdgesAndOverlapping) {
  // Weekly UTC rotation a, b, c handing off Wednesdays 16:00; 2026-01-14 16:00Z is a -> b.
  const sys_seconds handoff = utc(2026, 1, 14, 16h);
  const auto ending_at_handoff =
      make_override("xavier", local(2026, 1, 10), local(2026, 1, 14, 16h));
  const auto starting_at_handoff =
      make_override("yvonne", local(2026, 1, 14, 16h), local(2026, 1, 15));
  const auto p = make_override("pat", local(2026, 1, 10), local(2026, 1, 12));
  const auto q = make_override("quinn", local(2026, 1, 11), local(2026, 1, 13));
  const auto a_covering = make_override("a", local(2026, 1, 9), local(2026, 1, 10));
  const override_case cases[] = {
      {"ending at handoff: last second",
       {ending_at_handoff},
       handoff - 1s,
       "xavier",
       true,
       utc(2026, 1, 10),
       handoff},
      {"ending at handoff: the new member takes over",
       {ending_at_handoff},
       handoff,
       "b",
       false,
       handoff,
       utc(2026, 1, 21, 16h)},
      {"starting at handoff: old member until then",
       {starting_at_handoff},
       handoff - 1s,
       "a",
       false,
       utc(2026, 1, 7, 16h),
       handoff},
      {"starting at handoff",
       {starting_at_handoff},
       handoff,
       "yvonne",
       true,
       handoff,
       utc(2026, 1, 15)},
      {"starting at handoff: new member after it",
       {starting_at_handoff},
       utc(2026, 1, 15),
       "b",
       false,
       utc(2026, 1, 15),
       utc(2026, 1, 21, 16h)},
      {"overlap: first only",
       {p, q},
       utc(2026, 1, 10, 12h),
       "pat",
       true,
       utc(2026, 1, 10),
       utc(2026, 1, 11)},
      {"overlap: later-listed wins",
       {p, q},
       utc(2026, 1, 11, 12h),
       "quinn",
       true,
       utc(2026, 1, 11),
       utc(2026, 1, 13)},
      {"overlap: order reversed",
       {q, p},
       utc(2026, 1, 11, 12h),
       "pat",
       true,
       utc(2026, 1, 10),
       utc(2026, 1, 12)},
      {"overlap: reversed, tail",
       {q, p},
       utc(2026, 1, 12, 12h),
       "quinn",
       true,
       utc(2026, 1, 12),
       utc(2026, 1, 13)},
      // Same person as the layer's, but an override: a different answer with its own edges.
      {"override of the member on shift",
       {a_covering},
       utc(2026, 1, 9, 12h),
       "a",
       true,
       utc(2026, 1, 9),
       utc(2026, 1, 10)},
      {"after the same-person override",
       {a_covering},
       utc(2026, 1, 10, 12h),
       "a",
       false,
       utc(2026, 1, 10),
       handoff},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const schedule s = compile_ok(make_schedule(
        "UTC", {make_layer("l", {"a", "b", "c"}, local(2026, 1, 7, 16h), one_week)}, c.overrides));
    const on_call now = s.at(c.t);
    EXPECT_EQ(now.person, c.person);
    EXPECT_EQ(now.is_override, c.is_override);
    EXPECT_EQ(now.layer, c.is_override ? "" : "l");
    EXPECT_EQ(now.since, c.since);
    EXPECT_EQ(now.until, c.until);
  }
}

TEST(ScheduleOverrides, LocalBoundsFollowTheZoneAndWorkWithoutLayers) {
  // Berlin, winter: a local-midnight override is 23:00Z the day before.
  const schedule s = compile_ok(make_schedule(
      "Europe/Berlin", {}, {make_override("heidi", local(2026, 12, 24), local(2026, 12, 27))}));
  EXPECT_EQ(s.at(utc(2026, 12, 23, 22h + 59min + 59s)).person, "");
  const on_call now = s.at(utc(2026, 12, 23, 23h));
  EXPECT_EQ(now.person, "heidi");
  EXPECT_TRUE(now.is_override);
  EXPECT_EQ(now.since, utc(2026, 12, 23, 23h));
  EXPECT_EQ(now.until, utc(2026, 12, 26, 23h));
  EXPECT_EQ(s.at(utc(2026, 12, 26, 23h)).person, "");
}

// --- nobody before start; horizon ----------------------------------------------------------

TEST(ScheduleStart, NobodyBeforeStart) {
  const schedule s = compile_ok(make_schedule(
      "Europe/Berlin", {make_layer("l", {"a", "b"}, local(2026, 1, 7, 16h), one_week)}));
  const sys_seconds start = utc(2026, 1, 7, 15h);
  const on_call before = s.at(start - 1s);
  EXPECT_EQ(before.person, "");
  EXPECT_EQ(before.layer, "");
  EXPECT_FALSE(before.is_override);
  EXPECT_EQ(before.since, std::nullopt);  // nobody for the whole year before
  EXPECT_EQ(before.until, start);

  const on_call far = s.at(start - hours(24 * 400));
  EXPECT_EQ(far.person, "");
  EXPECT_EQ(far.until, std::nullopt) << "start is beyond the one-year horizon";

  const on_call first = s.at(start);
  EXPECT_EQ(first.person, "a");
  EXPECT_EQ(first.since, start);
}

TEST(ScheduleStart, SingleMemberNeverChangesWithinTheHorizon) {
  const schedule s =
      compile_ok(make_schedule("UTC", {make_layer("solo", {"sam"}, local(2020, 1, 1), one_day)}));
  const on_call now = s.at(utc(2026, 6, 1));
  EXPECT_EQ(now.person, "sam");
  EXPECT_EQ(now.since, std::nullopt);
  EXPECT_EQ(now.until, std::nullopt);
}

// --- layer order ---------------------------------------------------------------------------

TEST(ScheduleLayers, FirstCoveringLayerWins) {
  const schedule s = compile_ok(make_schedule(
      "UTC", {make_layer("day", {"dora"}, local(2026, 1, 1), one_week, window(9h, 17h)),
              make_layer("backstop", {"bert"}, local(2026, 1, 1), one_week)}));
  const on_call morning = s.at(utc(2026, 2, 2, 8h));
  EXPECT_EQ(morning.person, "bert");
  EXPECT_EQ(morning.layer, "backstop");
  EXPECT_EQ(morning.since, utc(2026, 2, 1, 17h));
  EXPECT_EQ(morning.until, utc(2026, 2, 2, 9h));
  const on_call noon = s.at(utc(2026, 2, 2, 12h));
  EXPECT_EQ(noon.person, "dora");
  EXPECT_EQ(noon.layer, "day");
}

// --- timeline ------------------------------------------------------------------------------

TEST(ScheduleTimeline, MergesSamePersonAndCoversTheRangeExactly) {
  // Members a, a, b: the first two weekly shifts merge into one two-week stretch.
  const schedule s = compile_ok(
      make_schedule("UTC", {make_layer("l", {"a", "a", "b"}, local(2026, 1, 7, 16h), one_week)}));
  const sys_seconds from = utc(2026, 1, 5);  // before start: a gap first
  const sys_seconds to = utc(2026, 2, 1, 12h);
  const auto line = s.timeline(from, to);
  ASSERT_EQ(line.size(), 4u);
  EXPECT_EQ(line[0].start, from);
  EXPECT_EQ(line[0].end, utc(2026, 1, 7, 16h));
  EXPECT_EQ(line[0].person, "");
  EXPECT_EQ(line[0].layer, "");
  EXPECT_EQ(line[1].start, utc(2026, 1, 7, 16h));
  EXPECT_EQ(line[1].end, utc(2026, 1, 21, 16h));
  EXPECT_EQ(line[1].person, "a");
  EXPECT_EQ(line[1].layer, "l");
  EXPECT_EQ(line[2].start, utc(2026, 1, 21, 16h));
  EXPECT_EQ(line[2].end, utc(2026, 1, 28, 16h));
  EXPECT_EQ(line[2].person, "b");
  EXPECT_EQ(line[3].start, utc(2026, 1, 28, 16h));
  EXPECT_EQ(line[3].end, to);  // cut at `to`, mid-shift
  EXPECT_EQ(line[3].person, "a");

  // at() agrees: the merged stretch is one answer.
  const on_call now = s.at(utc(2026, 1, 10));
  EXPECT_EQ(now.since, utc(2026, 1, 7, 16h));
  EXPECT_EQ(now.until, utc(2026, 1, 21, 16h));
}

TEST(ScheduleTimeline, EmptyOrInvertedRangeGivesNothingAndOneSecondGivesOneStretch) {
  const schedule s = compile_ok(oncall_sample());
  EXPECT_TRUE(s.timeline(utc(2026, 5, 1), utc(2026, 5, 1)).empty());
  EXPECT_TRUE(s.timeline(utc(2026, 5, 2), utc(2026, 5, 1)).empty());
  const auto one = s.timeline(utc(2026, 5, 1, 12h), utc(2026, 5, 1, 12h) + 1s);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].person, s.at(utc(2026, 5, 1, 12h)).person);
}

// Every stretch of a timeline agrees with at() at its start and its last second, and its
// bounds are at()'s since/until when not cut by the range.
TEST(ScheduleTimeline, AgreesWithAt) {
  const schedule s = compile_ok(oncall_sample());
  const sys_seconds from = utc(2026, 2, 25, 7h + 13min);
  const sys_seconds to = utc(2026, 3, 20);
  const auto line = s.timeline(from, to);
  ASSERT_GT(line.size(), 40u);
  for (const shift& st : line) {
    SCOPED_TRACE(date::format("%FT%TZ", st.start));
    const on_call first = s.at(st.start);
    const on_call last = s.at(st.end - 1s);
    EXPECT_EQ(first.person, st.person);
    EXPECT_EQ(first.layer, st.layer);
    EXPECT_EQ(last.person, st.person);
    if (st.start != from) {
      EXPECT_EQ(first.since, st.start);
    }
    if (st.end != to) {
      EXPECT_EQ(last.until, st.end);
    }
  }
}

// --- against a brute-force reference -------------------------------------------------------

struct reference_answer {
  std::string person;
  std::string layer;
  bool is_override = false;
  bool operator==(const reference_answer&) const = default;
};

// The rules of issue 2 evaluated literally at one instant, with date's own local->sys mapping
// (choose::earliest; nonexistent times map to the end of the gap) and a plain bisection for the
// shift index.
reference_answer reference(const config::schedule& spec, sys_seconds t) {
  const date::time_zone* zone = date::locate_zone(spec.timezone);
  const auto to_sys = [&](date::local_seconds l) {
    return zone->to_sys(l, date::choose::earliest);
  };
  for (auto o = spec.overrides.rbegin(); o != spec.overrides.rend(); ++o) {
    if (to_sys(o->from) <= t && t < to_sys(o->to)) return {o->person, "", true};
  }
  const date::local_seconds l = zone->to_local(t);
  const seconds tod = l - date::floor<date::days>(l);
  for (const config::layer& layer : spec.layers) {
    if (layer.active) {
      const config::daily_window& w = *layer.active;
      const bool in =
          w.begin < w.end ? (w.begin <= tod && tod < w.end) : (tod >= w.begin || tod < w.end);
      if (!in) continue;
    }
    long long lo = -1;       // last k known to have started (-1: none)
    long long hi = 1 << 24;  // a k known not to have started
    while (hi - lo > 1) {
      const long long mid = (lo + hi) / 2;
      if (to_sys(layer.start + mid * layer.shift) <= t) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    if (lo < 0) continue;
    return {layer.members[static_cast<std::size_t>(lo) % layer.members.size()], layer.name, false};
  }
  return {};
}

TEST(ScheduleReference, AgreesWithBruteForceAroundDstChanges) {
  std::vector<config::schedule> specs;
  specs.push_back(oncall_sample());
  specs.push_back(make_schedule(
      "America/New_York",
      {make_layer("odd", {"a", "b", "c"}, local(2026, 1, 1, 1h + 30min), 30min,
                  window(1h + 15min, 2h + 45min)),
       make_layer("daily", {"d", "e"}, local(2026, 1, 1, 2h + 30min), one_day)},
      {make_override("o", local(2026, 11, 1, 1h + 10min), local(2026, 11, 1, 1h + 50min))}));
  specs.push_back(make_schedule(
      "Europe/Berlin",
      {make_layer("half", {"a", "b", "c", "d", "e"}, local(2026, 1, 1), 90min, window(22h, 4h)),
       make_layer("daily", {"f", "g"}, local(2026, 1, 1, 2h + 30min), one_day, window(2h, 3h)),
       make_layer("rest", {"h"}, local(2026, 1, 1), one_week)}));
  const sys_seconds changes[] = {utc(2026, 3, 8, 7h), utc(2026, 11, 1, 6h), utc(2026, 3, 29, 1h),
                                 utc(2026, 10, 25, 1h)};
  for (const config::schedule& spec : specs) {
    SCOPED_TRACE(spec.timezone + " " + spec.layers.front().name);
    const schedule s = compile_ok(spec);
    for (const sys_seconds change : changes) {
      for (sys_seconds t = change - 30h; t < change + 30h; t += 7min) {
        SCOPED_TRACE(date::format("%FT%TZ", t));
        const on_call got = s.at(t);
        const reference_answer want = reference(spec, t);
        ASSERT_EQ((reference_answer{got.person, got.layer, got.is_override}), want);
        // since/until are where the reference answer changes.
        ASSERT_TRUE(got.since && got.until);
        EXPECT_EQ(reference(spec, *got.since), want);
        EXPECT_NE(reference(spec, *got.since - 1s), want);
        EXPECT_EQ(reference(spec, *got.until - 1s), want);
        EXPECT_NE(reference(spec, *got.until), want);
      }
    }
  }
}

}  // namespace
}  // namespace alertrouter::routing
