// The guard's rate limiter: per-key sliding windows of requests and tokens, the lifetime quota,
// reservations settled to what was used, and exactness under eight threads. No torch.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "guard_fixture.h"
#include "retort/guard.h"

namespace retort {
namespace {

using namespace guard_testing;

// ---- RateLimiter ---------------------------------------------------------------------

std::string header(const LimitDecision& d, const std::string& name) {
  for (const auto& [k, v] : d.headers)
    if (k == name) return v;
  return "(none)";
}

TEST(RateLimiter, RpmAdmitsExactlyNThenRefusesUntilTheOldestLeavesTheWindow) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("alice", {/*rpm=*/3, 0, 0}).first;
  RateLimiter limiter(g.keys);
  EXPECT_TRUE(limiter.reserve(key, 10, 1000.0).ok);
  EXPECT_TRUE(limiter.reserve(key, 10, 1000.5).ok);
  const LimitDecision third = limiter.reserve(key, 10, 1001.0);
  ASSERT_TRUE(third.ok);
  EXPECT_EQ(header(third, "x-ratelimit-limit-requests"), "3");
  EXPECT_EQ(header(third, "x-ratelimit-remaining-requests"), "0");
  EXPECT_EQ(header(third, "x-ratelimit-reset-requests"), "60.000s");
  EXPECT_EQ(header(third, "x-ratelimit-limit-tokens"), "(none)");  // no tpm set

  const LimitDecision fourth = limiter.reserve(key, 10, 1010.0);
  EXPECT_FALSE(fourth.ok);
  EXPECT_EQ(fourth.code, "rate_limit_exceeded");
  EXPECT_NEAR(fourth.retry_after, 50.0, 1e-9);  // the request at 1000 leaves at 1060
  EXPECT_NE(fourth.message.find(
                "rate limit of 3 requests per minute reached for key 'alice'; retry after 50 s"),
            std::string::npos)
      << fourth.message;
  EXPECT_EQ(fourth.reservation.ticket, 0);
  EXPECT_EQ(header(fourth, "x-ratelimit-remaining-requests"), "0");
  EXPECT_EQ(header(fourth, "x-ratelimit-reset-requests"), "51.000s");

  // A refusal is not counted: at 1060 the first request has left, one slot is free.
  const LimitDecision later = limiter.reserve(key, 10, 1059.9);
  EXPECT_FALSE(later.ok);
  EXPECT_NEAR(later.retry_after, 0.1, 1e-9);
  EXPECT_TRUE(limiter.reserve(key, 10, 1060.0).ok);
  const LimitDecision next = limiter.reserve(key, 10, 1060.2);
  EXPECT_FALSE(next.ok);
  EXPECT_NEAR(next.retry_after, 0.3, 1e-9);  // the one at 1000.5 leaves at 1060.5
  EXPECT_TRUE(limiter.reserve(key, 10, 1060.5).ok);
  EXPECT_TRUE(limiter.reserve(key, 10, 1061.0).ok);
  EXPECT_FALSE(limiter.reserve(key, 10, 1061.0).ok);
}

TEST(RateLimiter, RetryAfterIsAtLeastOneMillisecond) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("alice", {/*rpm=*/1, 0, 0}).first;
  RateLimiter limiter(g.keys);
  ASSERT_TRUE(limiter.reserve(key, 0, 1000.0).ok);
  const LimitDecision d = limiter.reserve(key, 0, 1059.99999999);
  EXPECT_FALSE(d.ok);
  EXPECT_DOUBLE_EQ(d.retry_after, 0.001);
}

TEST(RateLimiter, TpmCountsReservationsInFlight) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("alice", {0, /*tpm=*/100, 0}).first;
  RateLimiter limiter(g.keys);
  const LimitDecision a = limiter.reserve(key, 60, 1000.0);
  ASSERT_TRUE(a.ok);
  EXPECT_EQ(a.reservation.tokens, 60);
  EXPECT_EQ(header(a, "x-ratelimit-limit-tokens"), "100");
  EXPECT_EQ(header(a, "x-ratelimit-remaining-tokens"), "40");
  EXPECT_EQ(header(a, "x-ratelimit-reset-tokens"), "60.000s");
  const LimitDecision b = limiter.reserve(key, 50, 1010.0);  // 60 in flight + 50 > 100
  EXPECT_FALSE(b.ok);
  EXPECT_EQ(b.code, "rate_limit_exceeded");
  EXPECT_NEAR(b.retry_after, 50.0, 1e-9);
  EXPECT_NE(b.message.find("rate limit of 100 tokens per minute reached for key 'alice'"),
            std::string::npos)
      << b.message;
  EXPECT_TRUE(limiter.reserve(key, 40, 1010.0).ok);  // exactly 100
  EXPECT_FALSE(limiter.reserve(key, 1, 1010.0).ok);
  limiter.release(a.reservation);
  EXPECT_TRUE(limiter.reserve(key, 60, 1011.0).ok);  // the released 60 are free again
}

TEST(RateLimiter, SettleReplacesTheReservationByWhatWasUsed) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("alice", {0, /*tpm=*/100, 0}).first;
  RateLimiter limiter(g.keys);
  const LimitDecision a = limiter.reserve(key, 80, 1000.0);
  ASSERT_TRUE(a.ok);
  EXPECT_FALSE(limiter.reserve(key, 80, 1001.0).ok);
  limiter.settle(a.reservation, 20);
  EXPECT_EQ(g.keys.find("alice")->used_tokens, 20);
  const LimitDecision b = limiter.reserve(key, 80, 1001.0);  // 20 settled + 80 = 100
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(header(b, "x-ratelimit-remaining-tokens"), "0");
  // The 20 settled tokens count at 1000 (when reserved): they leave the window at 1060.
  limiter.settle(b.reservation, 80);
  EXPECT_FALSE(limiter.reserve(key, 20, 1059.0).ok);
  const LimitDecision c = limiter.reserve(key, 20, 1060.0);
  EXPECT_TRUE(c.ok) << c.message;
}

TEST(RateLimiter, SettlingTwiceCountsOnceAndTicketZeroIsIgnored) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("alice", {0, /*tpm=*/100, /*quota_tokens=*/1000}).first;
  RateLimiter limiter(g.keys);
  const LimitDecision a = limiter.reserve(key, 100, 1000.0);
  ASSERT_TRUE(a.ok);
  limiter.settle(a.reservation, 50);
  limiter.settle(a.reservation, 50);
  limiter.release(a.reservation);
  limiter.settle(Reservation{}, 500);
  limiter.release(Reservation{});
  EXPECT_EQ(g.keys.find("alice")->used_tokens, 50);
  EXPECT_TRUE(limiter.reserve(key, 50, 1001.0).ok);  // 50 settled + 50 = 100
  EXPECT_FALSE(limiter.reserve(key, 1, 1001.0).ok);
}

TEST(RateLimiter, ReleasedRequestStillCountsAgainstRpm) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("alice", {/*rpm=*/1, /*tpm=*/100, 0}).first;
  RateLimiter limiter(g.keys);
  const LimitDecision a = limiter.reserve(key, 100, 1000.0);
  ASSERT_TRUE(a.ok);
  limiter.release(a.reservation);
  EXPECT_EQ(g.keys.find("alice")->used_tokens, 0);
  const LimitDecision b = limiter.reserve(key, 1, 1030.0);
  EXPECT_FALSE(b.ok);
  EXPECT_NE(b.message.find("1 requests per minute"), std::string::npos) << b.message;
  EXPECT_NEAR(b.retry_after, 30.0, 1e-9);
}

TEST(RateLimiter, RequestAboveTheTpmCanNeverPass) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("alice", {0, /*tpm=*/100, 0}).first;
  RateLimiter limiter(g.keys);
  const LimitDecision d = limiter.reserve(key, 101, 1000.0);
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.code, "rate_limit_exceeded");
  EXPECT_DOUBLE_EQ(d.retry_after, 60.0);
  EXPECT_NE(d.message.find("can never pass"), std::string::npos) << d.message;
  EXPECT_NE(d.message.find("101"), std::string::npos) << d.message;
  EXPECT_NE(d.message.find("100 tokens per minute"), std::string::npos) << d.message;
  EXPECT_TRUE(limiter.reserve(key, 100, 1000.0).ok);
}

TEST(RateLimiter, QuotaCountsInFlightAndSurvivesARestart) {
  TempDir dir;
  const fs::path file = dir.path / "serve.db";
  std::string clear;
  {
    Guard g(file);
    clear = g.keys.create("alice", {0, 0, /*quota_tokens=*/100}).second;
    RateLimiter limiter(g.keys);
    const ApiKey key = *g.keys.authenticate(clear);
    const LimitDecision a = limiter.reserve(key, 70, 1000.0);
    ASSERT_TRUE(a.ok);
    const LimitDecision b = limiter.reserve(key, 40, 1000.0);  // 70 in flight + 40 > 100
    EXPECT_FALSE(b.ok);
    EXPECT_EQ(b.code, "insufficient_quota");
    EXPECT_EQ(b.retry_after, 0);
    EXPECT_NE(b.message.find("quota of 100 tokens"), std::string::npos) << b.message;
    limiter.settle(a.reservation, 70);
  }
  Guard g(file);  // a restarted server: a new limiter reads the durable total
  RateLimiter limiter(g.keys);
  const ApiKey key = *g.keys.authenticate(clear);
  EXPECT_EQ(key.used_tokens, 70);
  const LimitDecision c = limiter.reserve(key, 31, 5.0);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.code, "insufficient_quota");
  EXPECT_NE(c.message.find("30 tokens left"), std::string::npos) << c.message;
  const LimitDecision d = limiter.reserve(key, 30, 5.0);
  ASSERT_TRUE(d.ok) << d.message;
  limiter.settle(d.reservation, 30);
  EXPECT_EQ(g.keys.find("alice")->used_tokens, 100);
  EXPECT_EQ(limiter.reserve(key, 0, 6.0).code, "insufficient_quota");  // nothing left at all
}

TEST(RateLimiter, UnlimitedKeyPassesWithoutHeaders) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("free", {}).first;
  RateLimiter limiter(g.keys);
  for (int i = 0; i < 1000; ++i) {
    const LimitDecision d = limiter.reserve(key, 1000000, 1000.0);
    ASSERT_TRUE(d.ok);
    EXPECT_TRUE(d.headers.empty());
  }
}

TEST(RateLimiter, EightThreadsGetExactlyTheRpmWithinOneWindow) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("busy", {/*rpm=*/50, /*tpm=*/0, /*quota_tokens=*/0}).first;
  RateLimiter limiter(g.keys);
  std::atomic<int> passed{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const double now = 1000.0 + 0.01 * (t * 25 + i) / 200.0;  // all within one second
        const LimitDecision d = limiter.reserve(key, 3, now);
        if (d.ok) {
          ++passed;
          limiter.settle(d.reservation, 2, now);
        } else {
          ++refused;
          EXPECT_EQ(d.code, "rate_limit_exceeded");
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(passed.load(), 50);
  EXPECT_EQ(refused.load(), 150);
  EXPECT_EQ(g.keys.find("busy")->used_tokens, 100);
}

}  // namespace
}  // namespace retort
