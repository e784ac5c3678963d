#include "daemon/warn_limiter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

namespace alertrouter::daemon {
namespace {

using namespace std::chrono_literals;
using clock_type = warn_limiter::clock;

TEST(WarnLimiter, LetsABurstThroughThenTheRateAndCountsTheRest) {
  const clock_type::time_point t0{};
  warn_limiter limit(2, t0);  // 2 per second, bursts of 20
  int through = 0;
  for (int i = 0; i < 50; ++i) through += limit.admit("line", t0).has_value() ? 1 : 0;
  EXPECT_EQ(through, 20);
  EXPECT_EQ(limit.suppressed(), 30u);

  // Half a second later one token is back: the next line goes through, carrying the count.
  EXPECT_EQ(limit.admit("line", t0 + 499ms), std::nullopt);
  const std::optional<std::string> next = limit.admit("next", t0 + 1000ms);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, "next (and 31 similar warnings suppressed before this one: over 2/s)");
  EXPECT_EQ(limit.suppressed(), 31u);
  // The count is given once.
  EXPECT_EQ(limit.admit("again", t0 + 1500ms), std::optional<std::string>("again"));
}

TEST(WarnLimiter, RefillsUpToTheBurstOnly) {
  const clock_type::time_point t0{};
  warn_limiter limit(1, t0);  // bursts of 10
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(limit.admit("x", t0).has_value());
  ASSERT_FALSE(limit.admit("x", t0).has_value());
  // An hour idle refills ten tokens, not 3600.
  int through = 0;
  for (int i = 0; i < 100; ++i) through += limit.admit("x", t0 + 1h).has_value() ? 1 : 0;
  EXPECT_EQ(through, 10);
}

TEST(WarnLimiter, AClockGoingBackRefillsNothing) {
  const clock_type::time_point t0 = clock_type::time_point{} + 10s;
  warn_limiter limit(1, t0);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(limit.admit("x", t0).has_value());
  EXPECT_FALSE(limit.admit("x", t0 - 5s).has_value());
  EXPECT_FALSE(limit.admit("x", t0 - 5s + 500ms).has_value());
  EXPECT_TRUE(limit.admit("x", t0 - 5s + 1000ms).has_value());
}

TEST(WarnLimiter, ZeroMeansNoLimit) {
  warn_limiter limit(0);
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(limit.admit("x"), std::optional<std::string>("x"));
  EXPECT_EQ(limit.suppressed(), 0u);
}

}  // namespace
}  // namespace alertrouter::daemon
