// Lane placement: least-loaded and hashed choice, stickiness while unacked, any lane count; and
// lane source ports that put N lanes on N distinct RX queues of a (fake) 8-queue NIC.
#include <gtest/gtest.h>

#include <set>

#include "core/inet.hpp"
#include "core/tcp.hpp"
#include "rds/lane_ports.hpp"
#include "rds/placement.hpp"

namespace shunt::rds {
namespace {

TEST(RdsPlacement, LeastLoadedSpreadsSixteenPairsEvenlyOverEightLanes) {
    LanePlacement p(PlacementPolicy::LeastLoaded, 0x0a4d0002, 8);
    std::vector<int> pairs_per_lane(8);
    for (uint16_t i = 0; i < 16; ++i) ++pairs_per_lane[p.place({static_cast<uint16_t>(4001 + i), 4001}, 8192)];
    for (int lane = 0; lane < 8; ++lane) EXPECT_EQ(pairs_per_lane[lane], 2) << "lane " << lane;
}

TEST(RdsPlacement, PairKeepsItsLaneWhileUnackedAndMayMoveAfter) {
    LanePlacement p(PlacementPolicy::LeastLoaded, 1, 4);
    const PairKey a{1, 2};
    const uint16_t lane = p.place(a, 100);
    // Load every other lane less than a's lane would be, then keep sending on a.
    for (int i = 0; i < 10; ++i) EXPECT_EQ(p.place(a, 1 << 20), lane) << "moved with unacked messages";
    EXPECT_EQ(p.unacked(a), 11u);
    p.release(a, 10, 10 << 20);
    EXPECT_EQ(p.place(a, 1), lane) << "still one unacked";
    p.release(a, 2, 101);
    EXPECT_EQ(p.unacked(a), 0u);
    EXPECT_EQ(p.active_pairs(lane), 0u);
    // Another pair now takes a lane; a fresh choice for `a` avoids it.
    const uint16_t other = p.place({3, 4}, 1);
    EXPECT_NE(p.place(a, 1), other);
}

TEST(RdsPlacement, HashCoversAnyLaneCountAndIncludesTheDestination) {
    for (uint16_t lanes : {1, 3, 7, 8, 12}) {
        std::set<uint16_t> seen;
        for (uint16_t port = 1; port < 400; ++port) {
            const uint16_t l = LanePlacement::hash_lane(port, 0x0a000001, 80, lanes);
            ASSERT_LT(l, lanes);
            seen.insert(l);
        }
        EXPECT_EQ(seen.size(), lanes) << "lanes=" << lanes;
    }
    int differs = 0;
    for (uint16_t port = 1; port < 100; ++port)
        differs += LanePlacement::hash_lane(port, 0x0a000001, 80, 8) != LanePlacement::hash_lane(port, 0x0a000002, 80, 8);
    EXPECT_GT(differs, 50) << "the destination address must change the lane";
    LanePlacement p(PlacementPolicy::Hash, 0x0a000001, 12);
    EXPECT_EQ(p.place({7, 9}, 1), LanePlacement::hash_lane(7, 0x0a000001, 9, 12));
}

TEST(RdsPlacement, LaneCountChangesOnlyWithNothingUnacked) {
    LanePlacement p(PlacementPolicy::LeastLoaded, 1, 8);
    p.place({1, 2}, 5);
    EXPECT_THROW(p.set_lanes(4), std::logic_error);
    p.clear();
    p.set_lanes(4);
    EXPECT_EQ(p.lanes(), 4);
    EXPECT_THROW(p.set_lanes(0), std::invalid_argument);
}

// With a visible RSS model of 8 queues, 8 lanes get source ports whose reply traffic lands on 8
// distinct queues, as the model's own Toeplitz hash and RETA compute it.
TEST(RdsLanePorts, EightLanesLandOnEightDistinctQueues) {
    UniqueFd listener = tcp_listen("127.0.0.1", 0);
    const uint16_t rport = local_endpoint(listener.get())->port;
    LanePorts::Config c;
    c.local = *rss::IpAddress::parse("127.0.0.1");
    c.range = rss::PortRange{41000, 41999};
    c.model = rss::NicModel::make_default(8);
    c.model_source = "fake 8-queue NIC";
    LanePorts ports(c);
    ASSERT_TRUE(ports.rss_aligned());
    EXPECT_EQ(ports.queues(), 8u);
    rss::ToeplitzHasher hasher(c.model->key);
    std::set<uint32_t> queues;
    std::vector<LanePorts::Opened> open;
    for (uint16_t lane = 0; lane < 8; ++lane) {
        LanePorts::Opened o = ports.open(c.local, rport, lane);
        ASSERT_GE(o.get(), 0);
        EXPECT_TRUE(c.range->contains(o.port));
        const uint32_t h = hasher.hash(rss::reply_tuple(c.local, o.port, c.local, rport), true);
        const uint32_t q = c.model->reta.queue_of_hash(h);
        EXPECT_EQ(static_cast<int>(q), o.queue);
        queues.insert(q);
        open.push_back(std::move(o));
    }
    EXPECT_EQ(queues.size(), 8u);
    EXPECT_NE(ports.describe().find("8 RX queues"), std::string::npos) << ports.describe();
}

// Knowing the peer's model too (here 6 queues there, 8 here): lane i's port lands its replies on
// local queue i mod 8 and its forward traffic on peer queue i mod 6, checked by hashing both
// tuples with each model.
TEST(RdsLanePorts, PortsFitTheLocalAndThePeerQueues) {
    UniqueFd listener = tcp_listen("127.0.0.1", 0);
    const uint16_t rport = local_endpoint(listener.get())->port;
    LanePorts::Config c;
    c.local = *rss::IpAddress::parse("127.0.0.1");
    c.range = rss::PortRange{43000, 46999};
    c.model = rss::NicModel::make_default(8);
    c.peer_model = rss::NicModel::make_default(6);
    LanePorts ports(c);
    rss::ToeplitzHasher local_hash(c.model->key), peer_hash(c.peer_model->key);
    std::set<int> peer_queues;
    std::vector<LanePorts::Opened> open;
    for (uint16_t lane = 0; lane < 6; ++lane) {
        LanePorts::Opened o = ports.open(c.local, rport, lane);
        const auto reply = rss::reply_tuple(c.local, o.port, c.local, rport);
        const rss::FlowTuple forward{c.local, c.local, o.port, rport};
        EXPECT_EQ(static_cast<int>(c.model->reta.queue_of_hash(local_hash.hash(reply, true))), lane % 8);
        EXPECT_EQ(static_cast<int>(c.peer_model->reta.queue_of_hash(peer_hash.hash(forward, true))), lane % 6);
        EXPECT_EQ(o.queue, lane % 8);
        EXPECT_EQ(o.peer_queue, lane % 6);
        peer_queues.insert(o.peer_queue);
        open.push_back(std::move(o));
    }
    EXPECT_EQ(peer_queues.size(), 6u);
    EXPECT_NE(ports.describe().find("peer NICs: 6 RX queues"), std::string::npos) << ports.describe();
}

TEST(RdsLanePorts, WithoutAModelPortsComeFromTheRangeInTurn) {
    UniqueFd listener = tcp_listen("127.0.0.1", 0);
    const uint16_t rport = local_endpoint(listener.get())->port;
    LanePorts::Config c;
    c.local = *rss::IpAddress::parse("127.0.0.1");
    c.range = rss::PortRange{42100, 42103};
    c.model_source = "lo has no usable RSS model";
    LanePorts ports(c);
    EXPECT_FALSE(ports.rss_aligned());
    std::set<uint16_t> used;
    std::vector<LanePorts::Opened> open;
    for (uint16_t lane = 0; lane < 4; ++lane) {
        open.push_back(ports.open(c.local, rport, lane));
        EXPECT_TRUE(c.range->contains(open.back().port));
        used.insert(open.back().port);
    }
    EXPECT_EQ(used.size(), 4u);
    EXPECT_NE(ports.describe().find("42100-42103"), std::string::npos);
}

}  // namespace
}  // namespace shunt::rds
