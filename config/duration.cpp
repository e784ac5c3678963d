#include "config/duration.h"

#include <array>
#include <cstdint>
#include <limits>

namespace alertrouter::config {
namespace {

struct unit {
  std::string_view suffix;
  std::int64_t size;  // in the resolution of the table it is in (seconds or milliseconds)
};

// Largest first: parsing requires this order and formatting emits it.
constexpr std::array<unit, 5> second_units{{
    {"w", 7 * 24 * 3600},
    {"d", 24 * 3600},
    {"h", 3600},
    {"m", 60},
    {"s", 1},
}};

constexpr std::array<unit, 6> millisecond_units{{
    {"w", 7 * 24 * 3600 * 1000LL},
    {"d", 24 * 3600 * 1000LL},
    {"h", 3600 * 1000LL},
    {"m", 60 * 1000LL},
    {"s", 1000},
    {"ms", 1},
}};

template <std::size_t n>
std::optional<std::int64_t> parse_terms(std::string_view text, const std::array<unit, n>& units) {
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
    // The unit is the whole run up to the next digit, so `1ms` is one term (`ms`), never `1m`
    // followed by a stray `s`.
    const std::size_t suffix_begin = i;
    while (i < text.size() && (text[i] < '0' || text[i] > '9')) ++i;
    const std::string_view suffix = text.substr(suffix_begin, i - suffix_begin);
    std::size_t u = next_unit;
    while (u < units.size() && units[u].suffix != suffix) ++u;
    if (u == units.size()) return std::nullopt;  // unknown, repeated or out-of-order unit
    next_unit = u + 1;
    if (number > max / units[u].size) return std::nullopt;
    const std::int64_t term = number * units[u].size;
    if (total > max - term) return std::nullopt;
    total += term;
  }
  return total;
}

template <std::size_t n>
std::string format_terms(std::int64_t count, const std::array<unit, n>& units) {
  if (count == 0) return "0" + std::string(units.back().suffix);
  std::string out;
  // Work on the magnitude as unsigned so that the most negative value does not overflow.
  std::uint64_t rest = static_cast<std::uint64_t>(count);
  if (count < 0) {
    out.push_back('-');
    rest = 0 - rest;
  }
  for (const unit& u : units) {
    const auto size = static_cast<std::uint64_t>(u.size);
    if (rest >= size) {
      out += std::to_string(rest / size);
      out += u.suffix;
      rest %= size;
    }
  }
  return out;
}

}  // namespace

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  const auto count = parse_terms(text, second_units);
  if (!count) return std::nullopt;
  return std::chrono::seconds(*count);
}

std::optional<std::chrono::milliseconds> parse_duration_ms(std::string_view text) {
  const auto count = parse_terms(text, millisecond_units);
  if (!count) return std::nullopt;
  return std::chrono::milliseconds(*count);
}

std::string format_duration(std::chrono::seconds d) {
  return format_terms(d.count(), second_units);
}

std::string format_duration_ms(std::chrono::milliseconds d) {
  return format_terms(d.count(), millisecond_units);
}

}  // namespace alertrouter::config
