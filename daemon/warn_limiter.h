#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace alertrouter::daemon {

// Rate limit for the warn lines a client can cause, one per request or connection (refused,
// unauthorized, malformed, timed out): a flood must not bury the rest of the log, nor trip
// journald's own rate limit, which drops lines blindly. A token bucket: `per_second` lines on
// average, bursts of up to 10 times that. What it holds back is counted, and the next line it
// lets through carries the count. The events themselves are counted by their own metrics
// whatever this says. Not thread-safe: one per thread (the io thread).
class warn_limiter {
 public:
  using clock = std::chrono::steady_clock;

  // `per_second` 0: no limit.
  explicit warn_limiter(unsigned per_second, clock::time_point now = clock::now())
      : per_second_(per_second), tokens_(10.0 * per_second), refilled_(now) {}

  // The line to write for `line` now, or nullopt to hold it back (then counted).
  std::optional<std::string> admit(std::string line, clock::time_point now = clock::now()) {
    if (per_second_ != 0) {
      const double rate = per_second_;
      const double elapsed = std::chrono::duration<double>(now - refilled_).count();
      tokens_ = std::min(10.0 * rate, tokens_ + std::max(elapsed, 0.0) * rate);
      refilled_ = now;
      if (tokens_ < 1) {
        ++suppressed_;
        ++unreported_;
        return std::nullopt;
      }
      tokens_ -= 1;
    }
    if (unreported_ != 0) {
      line += " (and " + std::to_string(unreported_) +
              " similar warnings suppressed before this one: over " + std::to_string(per_second_) +
              "/s)";
      unreported_ = 0;
    }
    return line;
  }

  // Lines held back since construction.
  std::uint64_t suppressed() const { return suppressed_; }

 private:
  const unsigned per_second_;
  double tokens_;
  clock::time_point refilled_;
  std::uint64_t suppressed_ = 0;
  std::uint64_t unreported_ = 0;  // held back since the last line let through
};

}  // namespace alertrouter::daemon
