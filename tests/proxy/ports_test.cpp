// Source port choice for a shard: the ports its targets hand out send their reply traffic to a
// queue that the shard's CPU serves, checked with the bit-serial reference hash; a server move
// keeps that true; an exhausted pool says so instead of handing out a misaligned port.
#include <gtest/gtest.h>

#include "proxy/model.hpp"
#include "proxy/shard.hpp"

namespace shunt::proxy {
namespace {

RssModel four_queues_two_cpus() {
    RssModel m;
    m.nic = rss::NicModel::make_default(4, 128);
    m.queue_cpu = {0, 1, 0, 1};
    return m;
}

rss::PortAllocator::Config alloc_config(const RssModel& m, rss::PortRange range) {
    rss::PortAllocator::Config c;
    c.model = m.nic;
    c.local = *rss::IpAddress::parse("10.0.0.1");
    c.range = range;
    c.seed = 7;
    return c;
}

int cpu_of_reply(const RssModel& m, uint16_t local_port, const SockAddr& remote) {
    const auto t = rss::reply_tuple(*rss::IpAddress::parse("10.0.0.1"), local_port, remote.ip(), remote.port());
    const uint32_t q = m.nic.reta.queue_of_hash(rss::hash_reference(m.nic.key, t, true));
    return m.queue_cpu[q];
}

TEST(Ports, TargetsCoverTheCpusQueues) {
    const auto m = four_queues_two_cpus();
    rss::PortAllocator alloc(alloc_config(m, {40000, 40999}));
    const auto remote = make_sockaddr(*rss::IpAddress::parse("10.0.0.2"), 80);
    for (int cpu : {0, 1}) {
        const auto targets = shard_targets(m, cpu, alloc, remote);
        ASSERT_EQ(targets.size(), 2u);
        for (const auto& t : targets) EXPECT_EQ(m.queue_cpu[t.queue()], cpu);
    }
    EXPECT_TRUE(shard_targets(m, 5, alloc, remote).empty());
}

TEST(Ports, EveryHandedOutPortIsAlignedAndStaysSoAfterAMove) {
    const auto m = four_queues_two_cpus();
    rss::PortAllocator alloc(alloc_config(m, {40000, 40999}));
    auto remote = make_sockaddr(*rss::IpAddress::parse("10.0.0.2"), 80);
    for (int cpu : {0, 1}) {
        auto targets = shard_targets(m, cpu, alloc, remote);
        std::vector<uint16_t> held;
        for (auto& t : targets)
            for (int k = 0; k < 50; ++k) {
                const auto p = alloc.acquire(t);
                ASSERT_TRUE(p);
                EXPECT_EQ(cpu_of_reply(m, *p, remote), cpu) << "port " << *p;
                held.push_back(*p);
            }
        const auto moved = make_sockaddr(*rss::IpAddress::parse("192.168.7.9"), 8443);
        for (auto& t : targets) {
            alloc.retarget(t, moved.ip(), moved.port());
            for (int k = 0; k < 50; ++k) {
                const auto p = alloc.acquire(t);
                ASSERT_TRUE(p);
                EXPECT_EQ(cpu_of_reply(m, *p, moved), cpu) << "port " << *p << " after the move";
                held.push_back(*p);
            }
        }
        for (uint16_t p : held) EXPECT_TRUE(alloc.release(p));
    }
}

TEST(Ports, ExhaustionIsReportedNotMisaligned) {
    const auto m = four_queues_two_cpus();
    rss::PortAllocator alloc(alloc_config(m, {40000, 40063}));  // 64 ports, ~16 per queue
    const auto remote = make_sockaddr(*rss::IpAddress::parse("10.0.0.2"), 80);
    auto targets = shard_targets(m, 0, alloc, remote);
    size_t got = 0, pool = 0;
    for (auto& t : targets) {
        pool += alloc.pool_size(t);
        while (const auto p = alloc.acquire(t)) {
            EXPECT_EQ(cpu_of_reply(m, *p, remote), 0);
            ++got;
        }
        EXPECT_FALSE(alloc.acquire(t));
    }
    EXPECT_EQ(got, pool);
    EXPECT_GT(got, 0u);
    EXPECT_LT(got, 64u);
}

}  // namespace
}  // namespace shunt::proxy
