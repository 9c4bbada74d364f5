// RETA, port matrix and key rank (docs/rss-algebra.md). The algebra is checked against the
// bit-serial reference hash, never against numbers computed by the code under test.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "shunt/rss.hpp"
#include "test_util.hpp"

namespace shunt::rss {
namespace {

using test::ip;

TEST(Reta, RoundRobinAndIndexLists) {
    const Reta r = Reta::round_robin(128, 6);
    EXPECT_EQ(r.size(), 128u);
    EXPECT_EQ(r.log2_size(), 7u);
    EXPECT_EQ(r.mask(), 127u);
    EXPECT_EQ(r.queue_count(), 6u);
    EXPECT_EQ(r.queue_of_hash(0xffffff85u), 0x05u % 6);  // index 5
    // docs/rss-algebra.md: 6 queues over 128 entries own 22,22,21,21,21,21 entries.
    const size_t want[] = {22, 22, 21, 21, 21, 21};
    size_t total = 0;
    for (uint32_t q = 0; q < 6; ++q) {
        const auto idx = r.indices_of(q);
        EXPECT_EQ(idx.size(), want[q]);
        for (uint32_t i : idx) EXPECT_EQ(r[i], q);
        total += idx.size();
    }
    EXPECT_EQ(total, 128u);
    EXPECT_TRUE(r.indices_of(6).empty());
}

TEST(Reta, RejectsSizesThatAreNotPowersOfTwoInRange) {
    EXPECT_THROW(Reta::round_robin(2, 1), std::invalid_argument);
    EXPECT_THROW(Reta::round_robin(96, 4), std::invalid_argument);
    EXPECT_THROW(Reta::round_robin(131072, 4), std::invalid_argument);
    EXPECT_THROW(Reta::round_robin(128, 0), std::invalid_argument);
    EXPECT_THROW(Reta::from_entries({0, 1, 2, 0xffffffffu}), std::invalid_argument);
    EXPECT_NO_THROW(Reta::round_robin(4, 4));
    EXPECT_NO_THROW(Reta::round_robin(65536, 64));
}

// H(tuple with port p) = H(tuple with port 0) XOR M·p, for random tuples, keys and families.
TEST(PortMatrix, ColumnsGiveThePortsContributionToTheHash) {
    std::mt19937_64 rng(11);
    for (int k = 0; k < 20; ++k) {
        const ToeplitzKey key = test::random_key(rng, 40 + static_cast<size_t>(k));
        for (Family f : {Family::kV4, Family::kV6}) {
            const PortMatrix m(key, f, 7);
            for (int i = 0; i < 200; ++i) {
                const IpAddress local = test::random_ip(rng, f), remote = test::random_ip(rng, f);
                const auto rport = static_cast<uint16_t>(rng());
                const auto p = static_cast<uint16_t>(rng());
                const uint32_t c = hash_reference(key, reply_tuple(local, 0, remote, rport), true);
                const uint32_t h = hash_reference(key, reply_tuple(local, p, remote, rport), true);
                ASSERT_EQ(h, c ^ m.apply32(p));
                ASSERT_EQ(h & m.row_mask(), (c ^ m.syndrome(p)) & m.row_mask());
            }
        }
    }
}

// The rank equals log2 of the number of distinct syndromes over all 65536 ports.
size_t distinct_syndromes(const PortMatrix& m) {
    std::set<uint32_t> s;
    for (uint32_t p = 0; p < 65536; ++p) s.insert(m.syndrome(static_cast<uint16_t>(p)));
    return s.size();
}

TEST(PortMatrix, RankMatchesTheNumberOfReachableSyndromes) {
    std::mt19937_64 rng(3);
    for (int k = 0; k < 30; ++k) {
        const ToeplitzKey key = test::random_key(rng, 52);
        for (unsigned r : {2u, 7u, 9u, 12u, 16u}) {
            const PortMatrix m(key, Family::kV4, r);
            ASSERT_EQ(distinct_syndromes(m), size_t{1} << m.rank()) << "r=" << r;
        }
    }
}

// docs/rss-algebra.md: the Microsoft key and the 0x6d5a key have full rank for r = 7..11, both families.
TEST(PortMatrix, KnownKeysHaveFullRank) {
    for (const ToeplitzKey& key : {ToeplitzKey::microsoft(), ToeplitzKey::symmetric()}) {
        for (Family f : {Family::kV4, Family::kV6}) {
            for (unsigned r = 7; r <= 11; ++r) {
                const PortMatrix m(key, f, r);
                EXPECT_EQ(m.rank(), r) << key.to_hex() << " r=" << r;
                EXPECT_TRUE(m.full_rank());
            }
        }
    }
}

// A key whose bits are all ones makes every column 0xffffffff: rank 1.
ToeplitzKey all_ones_key() {
    return *ToeplitzKey::from_bytes(std::vector<uint8_t>(40, 0xff));
}

// A key that is zero over the key bits the local port's columns use (IPv4: bits 80..127): every
// syndrome is 0, rank 0.
ToeplitzKey zero_port_window_key() {
    const ToeplitzKey ms = ToeplitzKey::microsoft();
    std::vector<uint8_t> b(ms.bytes().begin(), ms.bytes().end());
    for (size_t i = 10; i < 16; ++i) b[i] = 0;
    return *ToeplitzKey::from_bytes(b);
}

TEST(PortMatrix, RankDeficientKeysAreDetected) {
    const PortMatrix ones(all_ones_key(), Family::kV4, 7);
    EXPECT_EQ(ones.rank(), 1u);
    EXPECT_FALSE(ones.full_rank());
    EXPECT_EQ(distinct_syndromes(ones), 2u);

    const PortMatrix zero(zero_port_window_key(), Family::kV4, 7);
    EXPECT_EQ(zero.rank(), 0u);
    EXPECT_EQ(distinct_syndromes(zero), 1u);
}

TEST(PortMatrix, ReduceIsConstantExactlyOnCosets) {
    const PortMatrix m(all_ones_key(), Family::kV4, 4);  // column space {0, 0xf}
    for (uint32_t a = 0; a < 16; ++a)
        for (uint32_t b = 0; b < 16; ++b)
            EXPECT_EQ(m.reduce(a) == m.reduce(b), (a ^ b) == 0 || (a ^ b) == 0xf) << a << " " << b;
}

TEST(Reachability, FullRankReachesEveryQueue) {
    const NicModel model = NicModel::make_default(8);
    const Reachability r = analyze_reachability(model, Family::kV4);
    EXPECT_EQ(r.rank, 7u);
    EXPECT_EQ(r.reachable_indices, 128u);
    EXPECT_EQ(r.always.size(), 8u);
    EXPECT_TRUE(r.sometimes.empty());
    EXPECT_TRUE(r.never.empty());
}

// Rank 1 with RETA i % 8 over 4 index bits: the reachable indices from one destination are
// {t, t ^ 0xf}, so each destination reaches exactly two queues; which two depends on it.
TEST(Reachability, RankDeficientKeyReachesFewerQueuesAndItShows) {
    NicModel model{all_ones_key(), Reta::round_robin(16, 8)};
    const Reachability r = analyze_reachability(model, Family::kV4);
    EXPECT_EQ(r.rank, 1u);
    EXPECT_EQ(r.reachable_indices, 2u);
    EXPECT_TRUE(r.always.empty());
    EXPECT_EQ(r.sometimes.size(), 8u);

    // Per destination, compare with brute force over all ports by the reference hash.
    const PortMatrix m(model.key, Family::kV4, 4);
    std::mt19937_64 rng(5);
    for (int i = 0; i < 5; ++i) {
        const IpAddress local = test::random_ip(rng, Family::kV4);
        const IpAddress remote = test::random_ip(rng, Family::kV4);
        const auto rport = static_cast<uint16_t>(rng());
        std::set<uint32_t> brute;
        for (uint32_t p = 0; p < 65536; p += 7)  // a spread subset suffices: only 2 queues exist
            brute.insert(
                test::reference_queue(model, local, static_cast<uint16_t>(p), remote, rport));
        const uint32_t c = hash_reference(model.key, reply_tuple(local, 0, remote, rport), true);
        const auto got = reachable_queues(model, m, c);
        EXPECT_EQ(std::set<uint32_t>(got.begin(), got.end()), brute);
        EXPECT_EQ(got.size(), 2u);
    }
}

TEST(Reachability, QueueWithoutRetaEntryIsReportedAsNever) {
    NicModel model{ToeplitzKey::microsoft(), Reta::from_entries({0, 2, 0, 2, 0, 2, 0, 2})};
    const Reachability r = analyze_reachability(model, Family::kV6);
    EXPECT_EQ(r.never, std::vector<uint32_t>{1});
    EXPECT_EQ(r.always, (std::vector<uint32_t>{0, 2}));
}

}  // namespace
}  // namespace shunt::rss
