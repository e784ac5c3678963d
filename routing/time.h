#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <date/date.h>

namespace alertrouter::routing {

// Instants in UTC. Alertmanager's timestamps carry nanoseconds; microseconds are enough to order
// them and keep year 1 (Alertmanager's zero `endsAt`) representable.
using timestamp = std::chrono::sys_time<std::chrono::microseconds>;
using sys_seconds = std::chrono::sys_seconds;

// Parses RFC 3339 (`2026-01-07T16:00:00Z`, `...T16:00:00.123456789+01:00`, lowercase t/z too).
// Fractional digits beyond microseconds are truncated. Nullopt on anything else. Pure.
std::optional<timestamp> parse_rfc3339(std::string_view text);

// `2026-01-07T16:00:00Z` (seconds) / `2026-01-07T16:00:00.123456Z` (when sub-second part != 0).
std::string format_rfc3339(sys_seconds t);
std::string format_rfc3339(timestamp t);
// Any other precision (sys_days, hours, nanoseconds, ...): floored to microseconds.
template <class Duration>
std::string format_rfc3339(std::chrono::sys_time<Duration> t) {
  return format_rfc3339(std::chrono::floor<std::chrono::microseconds>(t));
}

}  // namespace alertrouter::routing
