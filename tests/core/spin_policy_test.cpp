// SpinPolicy: spins only while recent waits end within the budget, probes now and then while
// it sleeps, and caps the time lost to empty spins.
#include "core/spin.hpp"

#include <gtest/gtest.h>

namespace shunt {
namespace {

using namespace std::chrono_literals;
using Clock = SpinPolicy::Clock;

// Feeds `n` waits of `wait` each, starting at `t` (advanced); returns how many were planned
// with a spin.
int feed(SpinPolicy& p, Clock::time_point& t, int n, std::chrono::nanoseconds wait, bool spinning_hits = true) {
    int spins = 0;
    for (int i = 0; i < n; ++i) {
        const auto limit = p.plan(t);
        const bool spun = limit.count() > 0;
        spins += spun;
        const bool hit = spun && spinning_hits && wait <= limit;
        const auto spent = !spun ? 0ns : hit ? wait : limit;
        p.record(t, t + wait, spent, hit);
        t += wait + 5us;  // the work between waits
    }
    return spins;
}

TEST(SpinPolicy, ZeroBudgetNeverSpins) {
    SpinPolicy p{0us};
    auto t = Clock::now();
    EXPECT_EQ(feed(p, t, 100, 100ns), 0);
}

TEST(SpinPolicy, ShortWaitsKeepSpinning) {
    SpinPolicy p{10us};
    auto t = Clock::now();
    EXPECT_EQ(feed(p, t, 1000, 300ns), 1000);
    EXPECT_GT(p.hit_rate(), 1000u);
}

TEST(SpinPolicy, LongWaitsStopSpinningSoonAndProbeRarely) {
    SpinPolicy p{10us};
    auto t = Clock::now();
    const int first = feed(p, t, 20, 200us);
    EXPECT_LE(first, 8);  // a handful of misses turn it off
    const int later = feed(p, t, 1600, 200us);
    EXPECT_GE(later, 1600 / static_cast<int>(SpinPolicy::kProbeEvery) / 2);  // probes go on
    EXPECT_LE(later, 1600 / static_cast<int>(SpinPolicy::kProbeEvery) + 1);
}

TEST(SpinPolicy, LearnsAChangeOfPaceBothWays) {
    SpinPolicy p{10us};
    auto t = Clock::now();
    feed(p, t, 200, 500us);
    EXPECT_LT(p.hit_rate(), 512u);
    // The peer speeds up: probes hit and spinning comes back.
    feed(p, t, 200, 1us);
    EXPECT_GE(p.hit_rate(), 512u);
    EXPECT_EQ(feed(p, t, 100, 1us), 100);
    // And slows down again.
    feed(p, t, 50, 500us);
    EXPECT_LT(p.hit_rate(), 512u);
}

TEST(SpinPolicy, EmptySpinsAreCappedWhateverTheHistory) {
    // Waits that would be hits by their length, but every spin ends empty (the event comes
    // from elsewhere): the bucket runs dry and spinning stops at the cap's share of time.
    SpinPolicy p{50us};
    auto t = Clock::now();
    std::chrono::nanoseconds spun{};
    Clock::duration elapsed{};
    for (int i = 0; i < 20000; ++i) {
        const auto start = t;
        const auto limit = p.plan(t);
        p.record(t, t + 40us, limit, false);  // spun the whole limit, found nothing
        spun += limit;
        t += 60us;
        elapsed += t - start;
    }
    const double share = static_cast<double>(spun.count()) / static_cast<double>(std::chrono::nanoseconds(elapsed).count());
    EXPECT_LE(share, SpinPolicy::kEmptySpinShare / 1024.0 + 0.01);
    EXPECT_GT(share, 0.0);
}

TEST(SpinPolicy, SpinUntilStopsAtTheLimitOrWhenReady) {
    int calls = 0;
    EXPECT_TRUE(spin_until(1s, [&] { return ++calls == 10; }));
    EXPECT_EQ(calls, 10);
    const auto t0 = Clock::now();
    EXPECT_FALSE(spin_until(200us, [] { return false; }));
    EXPECT_GE(Clock::now() - t0, 200us);
    EXPECT_FALSE(spin_until(0ns, [] { return true; }));
}

}  // namespace
}  // namespace shunt
