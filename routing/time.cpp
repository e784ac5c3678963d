#include "routing/time.h"

#include <cstdint>
#include <cstdio>

namespace alertrouter::routing {
namespace {

// Reads exactly `n` ASCII digits at `p` into `out`. False on anything else.
bool read_digits(std::string_view text, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > text.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<timestamp> parse_rfc3339(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.F+](Z|+HH:MM|-HH:MM). Fixed positions up to the seconds.
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < 20) return std::nullopt;
  if (!read_digits(text, 0, 4, year) || text[4] != '-' || !read_digits(text, 5, 2, month) ||
      text[7] != '-' || !read_digits(text, 8, 2, day) || (text[10] != 'T' && text[10] != 't') ||
      !read_digits(text, 11, 2, hour) || text[13] != ':' || !read_digits(text, 14, 2, minute) ||
      text[16] != ':' || !read_digits(text, 17, 2, second)) {
    return std::nullopt;
  }
  // Go's time.Parse (which produced Alertmanager's timestamps) rejects leap second 60 as well.
  if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
  const date::year_month_day ymd{date::year{year}, date::month{static_cast<unsigned>(month)},
                                 date::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) return std::nullopt;  // month 13, Feb 30, Feb 29 in a common year, ...

  std::size_t pos = 19;
  std::int64_t micros = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const std::size_t first = pos;
    int kept = 0;
    while (pos < text.size() && is_digit(text[pos])) {
      if (kept < 6) {
        micros = micros * 10 + (text[pos] - '0');
        ++kept;
      }
      ++pos;
    }
    if (pos == first) return std::nullopt;  // "." needs at least one digit
    for (; kept < 6; ++kept) micros *= 10;
  }

  if (pos >= text.size()) return std::nullopt;
  int offset_minutes = 0;
  const char zone = text[pos];
  if (zone == 'Z' || zone == 'z') {
    ++pos;
  } else if (zone == '+' || zone == '-') {
    int oh = 0, om = 0;
    if (!read_digits(text, pos + 1, 2, oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !read_digits(text, pos + 4, 2, om)) {
      return std::nullopt;
    }
    if (oh > 23 || om > 59) return std::nullopt;
    offset_minutes = (oh * 60 + om) * (zone == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;

  // Local time minus its offset is UTC.
  return timestamp{date::sys_days{ymd}} + std::chrono::hours{hour} +
         std::chrono::minutes{minute - offset_minutes} + std::chrono::seconds{second} +
         std::chrono::microseconds{micros};
}

std::string format_rfc3339(timestamp t) {
  const auto day = date::floor<date::days>(t);
  const date::year_month_day ymd{day};
  const auto since_midnight = t - day;  // non-negative thanks to floor
  const auto micros = since_midnight.count();
  const long long secs = micros / 1'000'000;
  const long long frac = micros % 1'000'000;
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) {  // rare enough for printf, which spells them as it always did
    char buf[48];
    const int n =
        frac != 0
            ? std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ", year,
                            static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                            secs / 3600, secs / 60 % 60, secs % 60, frac)
            : std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lldZ", year,
                            static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                            secs / 3600, secs / 60 % 60, secs % 60);
    return std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  // Written digit by digit: every notification formats its alerts' times, and snprintf was a
  // third of encoding one.
  char buf[27];  // YYYY-MM-DDTHH:MM:SS.ffffffZ
  auto put = [&buf](std::size_t at, long long v, int digits) {
    for (int i = digits - 1; i >= 0; --i) {
      buf[at + static_cast<std::size_t>(i)] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  };
  put(0, year, 4);
  buf[4] = '-';
  put(5, static_cast<unsigned>(ymd.month()), 2);
  buf[7] = '-';
  put(8, static_cast<unsigned>(ymd.day()), 2);
  buf[10] = 'T';
  put(11, secs / 3600, 2);
  buf[13] = ':';
  put(14, secs / 60 % 60, 2);
  buf[16] = ':';
  put(17, secs % 60, 2);
  if (frac == 0) {
    buf[19] = 'Z';
    return std::string(buf, 20);
  }
  buf[19] = '.';
  put(20, frac, 6);
  buf[26] = 'Z';
  return std::string(buf, 27);
}

std::string format_rfc3339(sys_seconds t) {
  return format_rfc3339(std::chrono::time_point_cast<std::chrono::microseconds>(t));
}

}  // namespace alertrouter::routing
