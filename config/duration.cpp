#include "config/duration.h"

#include <array>
#include <cstdint>
#include <limits>

namespace alertrouter::config {
namespace {

struct unit {
  char suffix;
  std::int64_t seconds;
};

// Largest first: parse_duration requires this order and format_duration emits it.
constexpr std::array<unit, 5> units{{
    {'w', 7 * 24 * 3600},
    {'d', 24 * 3600},
    {'h', 3600},
    {'m', 60},
    {'s', 1},
}};

}  // namespace

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
  std::int64_t total = 0;
  std::size_t next_unit = 0;  // index into `units` of the smallest unit still allowed
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t number = 0;
    const std::size_t digits_begin = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      const int digit = text[i] - '0';
      if (number > (max - digit) / 10) return std::nullopt;
      number = number * 10 + digit;
      ++i;
    }
    if (i == digits_begin || i == text.size()) return std::nullopt;  // no digits, or no unit
    const char suffix = text[i++];
    std::size_t u = next_unit;
    while (u < units.size() && units[u].suffix != suffix) ++u;
    if (u == units.size()) return std::nullopt;  // unknown, repeated or out-of-order unit
    next_unit = u + 1;
    if (number > max / units[u].seconds) return std::nullopt;
    const std::int64_t term = number * units[u].seconds;
    if (total > max - term) return std::nullopt;
    total += term;
  }
  return std::chrono::seconds(total);
}

std::string format_duration(std::chrono::seconds d) {
  const std::int64_t count = d.count();
  if (count == 0) return "0s";
  std::string out;
  // Work on the magnitude as unsigned so that the most negative value does not overflow.
  std::uint64_t rest = static_cast<std::uint64_t>(count);
  if (count < 0) {
    out.push_back('-');
    rest = 0 - rest;
  }
  for (const unit& u : units) {
    const auto size = static_cast<std::uint64_t>(u.seconds);
    if (rest >= size) {
      out += std::to_string(rest / size);
      out.push_back(u.suffix);
      rest %= size;
    }
  }
  return out;
}

}  // namespace alertrouter::config
