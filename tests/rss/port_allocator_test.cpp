// Port allocator properties: every port handed out sends its reply traffic
// to the wanted queue by the bit-serial reference hash; no port is handed out twice while held;
// a pool has the size the RETA predicts; a rank-deficient key shows as unreachable queues.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "shunt/rss.hpp"
#include "test_util.hpp"

namespace shunt::rss {
namespace {

using test::ip;
using test::reference_queue;

PortAllocator::Config config(NicModel model, IpAddress local, PortRange range, uint64_t seed = 1) {
    PortAllocator::Config c;
    c.model = std::move(model);
    c.local = local;
    c.range = range;
    c.seed = seed;
    return c;
}

// Brute force by the reference: ports of the range whose reply lands on `queue`.
std::set<uint16_t> brute_pool(const NicModel& m, const IpAddress& local, PortRange range,
                              const IpAddress& remote, uint16_t rport, uint32_t queue) {
    std::set<uint16_t> out;
    for (uint32_t p = range.lo; p <= range.hi; ++p)
        if (reference_queue(m, local, static_cast<uint16_t>(p), remote, rport) == queue)
            out.insert(static_cast<uint16_t>(p));
    return out;
}

std::vector<uint16_t> drain(PortAllocator& a, Target& t) {
    std::vector<uint16_t> got;
    while (auto p = a.acquire(t)) got.push_back(*p);
    return got;
}

TEST(PortRange, Parses) {
    const auto r = PortRange::parse("1024-2047");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->lo, 1024);
    EXPECT_EQ(r->hi, 2047);
    EXPECT_EQ(r->size(), 1024u);
    EXPECT_FALSE(PortRange::parse("2048-1024"));
    EXPECT_FALSE(PortRange::parse("1-65536"));
    EXPECT_FALSE(PortRange::parse("1024"));
    EXPECT_FALSE(PortRange::parse("a-b"));
}

TEST(PortAllocator, EveryPortLandsOnTheWantedQueueAndEachComesOnce) {
    const NicModel model = NicModel::make_default(8);
    const IpAddress local = ip("10.0.0.1"), remote = ip("10.0.0.2");
    const PortRange range{32768, 60999};
    PortAllocator a(config(model, local, range));
    size_t total = 0;
    for (uint32_t q = 0; q < 8; ++q) {
        Target t = a.target(remote, 80, q);
        const auto got = drain(a, t);
        const std::set<uint16_t> unique(got.begin(), got.end());
        EXPECT_EQ(unique.size(), got.size()) << "a port came twice while held";
        for (uint16_t p : got) {
            ASSERT_EQ(reference_queue(model, local, p, remote, 80), q) << "port " << p;
            ASSERT_TRUE(range.contains(p));
            ASSERT_TRUE(a.held(p));
        }
        EXPECT_EQ(unique, brute_pool(model, local, range, remote, 80, q));
        EXPECT_EQ(got.size(), a.pool_size(t));
        total += got.size();
    }
    EXPECT_EQ(total, range.size());  // the queues' pools partition the range
}

TEST(PortAllocator, Ipv6PortsLandOnTheWantedQueue) {
    const NicModel model{ToeplitzKey::microsoft(), Reta::round_robin(256, 6)};
    const IpAddress local = ip("fd00::1"), remote = ip("2001:db8::42");
    const PortRange range{40000, 45000};
    PortAllocator a(config(model, local, range));
    for (uint32_t q = 0; q < 6; ++q) {
        Target t = a.target(remote, 443, q);
        const auto got = drain(a, t);
        for (uint16_t p : got) ASSERT_EQ(reference_queue(model, local, p, remote, 443), q);
        EXPECT_EQ(std::set<uint16_t>(got.begin(), got.end()),
                  brute_pool(model, local, range, remote, 443, q));
    }
}

// docs/rss-algebra.md: P=10.0.0.1 -> S=10.0.0.2:80, MS key, RETA i % 8: 8192 ports per queue, and every
// 7-bit syndrome has 512 ports. Checked with the SyndromeIndex and c_r from the reference hash.
TEST(SyndromeIndex, PoolSizesOverTheFullPortSpace) {
    const NicModel model = NicModel::make_default(8);
    const PortMatrix m(model.key, Family::kV4, 7);
    const SyndromeIndex index(m, PortRange{0, 65535});
    for (uint32_t s = 0; s < 128; ++s) ASSERT_EQ(index.ports(s).size(), 512u);
    const uint32_t c =
        hash_reference(model.key, reply_tuple(ip("10.0.0.1"), 0, ip("10.0.0.2"), 80), true);
    for (uint32_t q = 0; q < 8; ++q) {
        size_t n = 0;
        for (uint32_t t : model.reta.indices_of(q)) n += index.ports(t ^ (c & 127)).size();
        EXPECT_EQ(n, 8192u);
    }
}

// Pool size = (#RETA entries of q) x 2^(16 - r) over ports 1..65535, minus port 0 if it would
// have belonged to q (port 0 has syndrome 0, so it maps to RETA index c_r).
TEST(PortAllocator, PoolSizeIsWhatTheRetaPredicts) {
    std::mt19937_64 rng(99);
    for (size_t reta_size : {4u, 16u, 128u, 512u, 4096u, 65536u}) {
        for (uint32_t queues : {1u, 3u, 8u}) {
            const NicModel model{ToeplitzKey::microsoft(), Reta::round_robin(reta_size, queues)};
            const IpAddress local = test::random_ip(rng, Family::kV4);
            PortAllocator a(config(model, local, PortRange{1, 65535}));
            ASSERT_TRUE(a.index().matrix().full_rank());
            const unsigned r = model.reta.log2_size();
            const IpAddress remote = test::random_ip(rng, Family::kV4);
            const auto rport = static_cast<uint16_t>(rng());
            const uint32_t c =
                hash_reference(model.key, reply_tuple(local, 0, remote, rport), true);
            for (uint32_t q = 0; q < queues; ++q) {
                Target t = a.target(remote, rport, q);
                size_t predicted = model.reta.indices_of(q).size() << (16 - r);
                if (model.reta.queue_of_hash(c) == q) --predicted;
                EXPECT_EQ(a.pool_size(t), predicted) << "reta " << reta_size << " q " << q;
                std::vector<uint16_t> pool;
                a.pool(t, pool);
                EXPECT_EQ(pool.size(), predicted);
            }
        }
    }
}

TEST(PortAllocator, ReleasedPortsComeBackAndOnlyThose) {
    const NicModel model = NicModel::make_default(4);
    const IpAddress local = ip("192.168.7.1"), remote = ip("192.168.7.2");
    PortAllocator a(config(model, local, PortRange{20000, 24095}));
    Target t = a.target(remote, 5000, 2);
    auto got = drain(a, t);
    ASSERT_FALSE(got.empty());
    EXPECT_FALSE(a.acquire(t)) << "exhausted pool must say so";
    std::set<uint16_t> released;
    for (size_t i = 0; i < got.size(); i += 3) {
        EXPECT_TRUE(a.release(got[i]));
        EXPECT_FALSE(a.held(got[i]));
        EXPECT_FALSE(a.release(got[i])) << "double release must be refused";
        released.insert(got[i]);
    }
    const auto again = drain(a, t);
    EXPECT_EQ(std::set<uint16_t>(again.begin(), again.end()), released);
    EXPECT_FALSE(a.release(19999));  // outside the range
    EXPECT_FALSE(a.release(30000));
}

TEST(PortAllocator, ExcludedPortsAreNeverHandedOut) {
    const NicModel model = NicModel::make_default(2);
    const IpAddress local = ip("10.1.0.1"), remote = ip("10.1.0.2");
    const PortRange range{50000, 51023};
    auto cfg = config(model, local, range);
    std::mt19937_64 rng(4);
    std::set<uint16_t> excluded;
    for (int i = 0; i < 200; ++i)
        excluded.insert(static_cast<uint16_t>(range.lo + rng() % range.size()));
    cfg.excluded.assign(excluded.begin(), excluded.end());
    PortAllocator a(std::move(cfg));
    for (uint32_t q = 0; q < 2; ++q) {
        Target t = a.target(remote, 8080, q);
        const auto got = drain(a, t);
        std::set<uint16_t> want = brute_pool(model, local, range, remote, 8080, q);
        for (uint16_t p : excluded) want.erase(p);
        EXPECT_EQ(std::set<uint16_t>(got.begin(), got.end()), want);
        for (uint16_t p : got) EXPECT_EQ(excluded.count(p), 0u);
        EXPECT_FALSE(a.release(*excluded.begin())) << "an excluded port is not held";
    }
}

// A server address change is a retarget: one hash; the ports then fit the new destination.
TEST(PortAllocator, RetargetFollowsTheServerAddress) {
    const NicModel model = NicModel::make_default(8);
    const IpAddress local = ip("10.0.0.1");
    const PortRange range{32768, 40959};
    PortAllocator a(config(model, local, range));
    Target t = a.target(ip("10.0.0.2"), 80, 5);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(a.acquire(t));
    std::mt19937_64 rng(8);
    for (int round = 0; round < 20; ++round) {
        const IpAddress remote = test::random_ip(rng, Family::kV4);
        const auto rport = static_cast<uint16_t>(rng());
        a.retarget(t, remote, rport);
        EXPECT_EQ(t.queue(), 5u);
        EXPECT_EQ(t.remote(), remote);
        std::vector<uint16_t> pool;
        a.pool(t, pool);
        EXPECT_EQ(std::set<uint16_t>(pool.begin(), pool.end()),
                  brute_pool(model, local, range, remote, rport, 5));
        for (int i = 0; i < 5; ++i) {
            const auto p = a.acquire(t);
            ASSERT_TRUE(p);
            EXPECT_EQ(reference_queue(model, local, *p, remote, rport), 5u);
        }
    }
}

TEST(PortAllocator, RankDeficientKeyLeavesUnreachableQueuesEmpty) {
    const NicModel model{*ToeplitzKey::from_bytes(std::vector<uint8_t>(40, 0xff)),
                         Reta::round_robin(16, 8)};
    const IpAddress local = ip("10.9.0.1"), remote = ip("10.9.0.2");
    const PortRange range{1024, 9215};
    PortAllocator a(config(model, local, range));
    EXPECT_EQ(a.index().matrix().rank(), 1u);
    const uint32_t c = hash_reference(model.key, reply_tuple(local, 0, remote, 7), true);
    const auto reach = reachable_queues(model, a.index().matrix(), c);
    ASSERT_EQ(reach.size(), 2u);
    size_t total = 0;
    for (uint32_t q = 0; q < 8; ++q) {
        Target t = a.target(remote, 7, q);
        const bool reachable = std::find(reach.begin(), reach.end(), q) != reach.end();
        const auto got = drain(a, t);
        EXPECT_EQ(!got.empty(), reachable) << "queue " << q;
        EXPECT_EQ(std::set<uint16_t>(got.begin(), got.end()),
                  brute_pool(model, local, range, remote, 7, q));
        total += got.size();
    }
    EXPECT_EQ(total, range.size());
}

TEST(PortAllocator, RejectsPortZeroAndMixedFamilies) {
    EXPECT_THROW(PortAllocator(config(NicModel::make_default(2), ip("10.0.0.1"), PortRange{0, 10})),
                 std::invalid_argument);
    PortAllocator a(config(NicModel::make_default(2), ip("10.0.0.1"), PortRange{1000, 2000}));
    EXPECT_THROW(a.target(ip("::1"), 80, 0), std::invalid_argument);
}

TEST(PortLease, ReturnsThePortOnDestruction) {
    PortAllocator a(config(NicModel::make_default(2), ip("10.0.0.1"), PortRange{1000, 1999}));
    Target t = a.target(ip("10.0.0.2"), 80, 1);
    const auto p = a.acquire(t);
    ASSERT_TRUE(p);
    {
        PortLease lease(a, *p);
        PortLease moved = std::move(lease);
        EXPECT_FALSE(lease);  // NOLINT(bugprone-use-after-move): checking the moved-from state
        EXPECT_TRUE(a.held(*p));
    }
    EXPECT_FALSE(a.held(*p));
}

// Threads share one allocator: each has its own Target (some the same queue and destination, so
// they contend on the same free lists). A test-side ownership flag per port must never be found
// set when a port is handed out, and every port must fit its thread's queue.
TEST(PortAllocator, ConcurrentShardsNeverShareAHeldPort) {
    const NicModel model = NicModel::make_default(4);
    const IpAddress local = ip("10.0.0.1");
    const PortRange range{10000, 14095};
    PortAllocator a(config(model, local, range, 0));
    const IpAddress servers[] = {ip("10.0.0.2"), ip("10.0.0.3")};
    std::vector<std::atomic<int>> owner(65536);
    std::atomic<int> errors{0};
    std::atomic<size_t> handed{0};
    constexpr int kThreads = 8;
    std::vector<std::thread> threads;
    for (int id = 0; id < kThreads; ++id) {
        threads.emplace_back([&, id] {
            std::mt19937_64 rng(static_cast<uint64_t>(id) + 1);
            const uint32_t queue = static_cast<uint32_t>(id % 4);
            Target t = a.target(servers[(id / 4) % 2], 80, queue);
            std::vector<uint16_t> mine;
            for (int round = 0; round < 300; ++round) {
                const size_t want = 1 + rng() % 64;
                for (size_t i = 0; i < want; ++i) {
                    const auto p = a.acquire(t);
                    if (!p) break;
                    int expected = 0;
                    if (!owner[*p].compare_exchange_strong(expected, id + 1)) ++errors;
                    if (reference_queue(model, local, *p, t.remote(), 80) != queue) ++errors;
                    mine.push_back(*p);
                    ++handed;
                }
                std::shuffle(mine.begin(), mine.end(), rng);
                const size_t keep = mine.size() / 2;
                while (mine.size() > keep) {
                    const uint16_t p = mine.back();
                    mine.pop_back();
                    owner[p].store(0);
                    if (!a.release(p)) ++errors;
                }
                if (round % 50 == 49) a.retarget(t, servers[rng() % 2], 80);
            }
            for (uint16_t p : mine) {
                owner[p].store(0);
                if (!a.release(p)) ++errors;
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(errors.load(), 0);
    EXPECT_GT(handed.load(), 10000u);
    for (uint32_t p = range.lo; p <= range.hi; ++p) ASSERT_FALSE(a.held(static_cast<uint16_t>(p)));
    // Everything came back: each queue's pool can be drained completely again.
    for (uint32_t q = 0; q < 4; ++q) {
        Target t = a.target(servers[0], 80, q);
        EXPECT_EQ(drain(a, t).size(), a.pool_size(t));
    }
}

}  // namespace
}  // namespace shunt::rss
