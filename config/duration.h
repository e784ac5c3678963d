#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace alertrouter::config {

// Parses a duration as written in the configuration: one or more `<integer><unit>` terms with
// units s, m, h, d, w (e.g. `30s`, `15m`, `2h`, `1d`, `1w`, `1h30m`). As in Prometheus, units
// appear at most once and from largest to smallest (`30m1h` and `1m1m` are rejected, which
// catches typos). Nullopt on anything else, on zero-length input, on a bare number and on
// overflow. `ms` is not a unit here (see parse_duration_ms). Pure.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);

// The same grammar at millisecond resolution, with `ms` as the smallest unit: `500ms`, `5s`,
// `1m30s`, `1s500ms`. Every text parse_duration accepts means the same here, except that the
// range is 1000 times smaller (up to about 292 million years); beyond it, nullopt. Pure.
std::optional<std::chrono::milliseconds> parse_duration_ms(std::string_view text);

// The inverse, in the largest exact units: 604800s -> "1w", 5400s -> "1h30m", 0 -> "0s";
// negative durations get a leading '-'. parse_duration(format_duration(d)) == d for d >= 0.
std::string format_duration(std::chrono::seconds d);

// The same with `ms` as the smallest unit: 1500ms -> "1s500ms", 60000ms -> "1m", 0 -> "0ms".
// parse_duration_ms(format_duration_ms(d)) == d for d >= 0.
std::string format_duration_ms(std::chrono::milliseconds d);

}  // namespace alertrouter::config
