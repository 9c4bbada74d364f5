// Toeplitz hash: the published verification suite (docs/rss-algebra.md), the derived extra
// vectors there, the key formats, linearity, and fast path == bit-serial reference.
#include <gtest/gtest.h>

#include <random>

#include "shunt/rss.hpp"
#include "test_util.hpp"

namespace shunt::rss {
namespace {

using test::ip;

struct Vector {
    const char* src;
    uint16_t sport;
    const char* dst;
    uint16_t dport;
    uint32_t addr_only;
    uint32_t with_ports;
};

// docs/rss-algebra.md (82599 datasheet 7.1.2.8.3 / Microsoft "Verifying the RSS Hash Calculation").
// Input order is Source, Destination, Source port, Destination port.
constexpr Vector kVectors[] = {
    {"66.9.149.187", 2794, "161.142.100.80", 1766, 0x323e8fc2, 0x51ccc178},
    {"199.92.111.2", 14230, "65.69.140.83", 4739, 0xd718262a, 0xc626b0ea},
    {"24.19.198.95", 12898, "12.22.207.184", 38024, 0xd2d0a5de, 0x5c2b394a},
    {"38.27.205.30", 48228, "209.142.163.6", 2217, 0x82989176, 0xafc7327f},
    {"153.39.163.191", 44251, "202.188.127.2", 1303, 0x5d1809c5, 0x10e828a2},
    {"3ffe:2501:200:1fff::7", 2794, "3ffe:2501:200:3::1", 1766, 0x2cc18cd5, 0x40207d3d},
    {"3ffe:501:8::260:97ff:fe40:efab", 14230, "ff02::1", 4739, 0x0f0c461c, 0xdde51bbf},
    {"3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251, "fe80::200:f8ff:fe21:67cf", 38024, 0x4b61e985,
     0x02d1feef},
};

FlowTuple tuple(const Vector& v) {
    return FlowTuple{ip(v.src), ip(v.dst), v.sport, v.dport};
}

TEST(Toeplitz, MicrosoftVerificationSuiteReference) {
    const ToeplitzKey key = ToeplitzKey::microsoft();
    int checked = 0;
    for (const auto& v : kVectors) {
        SCOPED_TRACE(v.src);
        EXPECT_EQ(hash_reference(key, tuple(v), false), v.addr_only);
        EXPECT_EQ(hash_reference(key, tuple(v), true), v.with_ports);
        checked += 2;
    }
    EXPECT_EQ(checked, 16);
}

TEST(Toeplitz, MicrosoftVerificationSuiteFastPath) {
    const ToeplitzHasher h(ToeplitzKey::microsoft());
    for (const auto& v : kVectors) {
        SCOPED_TRACE(v.src);
        EXPECT_EQ(h.hash(tuple(v), false), v.addr_only);
        EXPECT_EQ(h.hash(tuple(v), true), v.with_ports);
    }
}

TEST(Toeplitz, ExtraVectors) {
    const ToeplitzKey ms = ToeplitzKey::microsoft();
    const FlowTuple fwd{ip("10.0.0.1"), ip("10.0.0.2"), 1234, 80};
    const FlowTuple rev{ip("10.0.0.2"), ip("10.0.0.1"), 80, 1234};
    EXPECT_EQ(hash_reference(ms, fwd, true), 0xe7c0c84au);
    EXPECT_EQ(hash_reference(ms, rev, true), 0x845c295bu);
    EXPECT_EQ(hash_reference(ms, FlowTuple{ip("10.0.0.2"), ip("10.0.0.1"), 80, 0}, true),
              0xdec5462bu);

    const ToeplitzKey sym = ToeplitzKey::symmetric();
    EXPECT_EQ(hash_reference(sym, fwd, true), 0xc78dc78du);
    EXPECT_EQ(hash_reference(sym, rev, true), 0xc78dc78du);
    const ToeplitzHasher hs(sym);
    EXPECT_EQ(hs.hash(fwd, true), 0xc78dc78du);
    EXPECT_EQ(hs.hash(rev, true), 0xc78dc78du);
}

TEST(ToeplitzKey, ParsesEthtoolAndPlainHex) {
    const std::string plain = ToeplitzKey::microsoft().to_hex();
    EXPECT_EQ(plain,
              "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa");
    const auto a = ToeplitzKey::parse_hex(plain);
    ASSERT_TRUE(a);
    EXPECT_EQ(*a, ToeplitzKey::microsoft());
    const auto b = ToeplitzKey::parse_hex(ToeplitzKey::microsoft().to_hex(':'));
    ASSERT_TRUE(b);
    EXPECT_EQ(*b, ToeplitzKey::microsoft());
    EXPECT_EQ(b->to_hex(':').substr(0, 8), "6d:5a:56");
}

TEST(ToeplitzKey, RejectsBadLengthsAndDigits) {
    EXPECT_FALSE(ToeplitzKey::parse_hex(std::string(78, 'a')));   // 39 bytes
    EXPECT_TRUE(ToeplitzKey::parse_hex(std::string(80, 'a')));    // 40
    EXPECT_TRUE(ToeplitzKey::parse_hex(std::string(120, 'a')));   // 60
    EXPECT_FALSE(ToeplitzKey::parse_hex(std::string(122, 'a')));  // 61
    EXPECT_FALSE(ToeplitzKey::parse_hex(std::string(81, 'a')));   // odd digit count
    EXPECT_FALSE(ToeplitzKey::parse_hex(std::string(79, 'a') + "g"));
    EXPECT_FALSE(ToeplitzKey::parse_hex("6:d5a"));
}

TEST(ToeplitzKey, WindowReadsKeyBitsMsbFirst) {
    const ToeplitzKey k = ToeplitzKey::microsoft();
    EXPECT_EQ(k.window(0), 0x6d5a56dau);
    EXPECT_EQ(k.window(8), 0x5a56da25u);
    EXPECT_EQ(k.window(4), 0xd5a56da2u);
    EXPECT_EQ(k.window(320 - 8), 0xfa000000u);  // past the end reads as zero
}

TEST(Toeplitz, InputLongerThanKeyAllowsIsRejected) {
    const ToeplitzKey k = ToeplitzKey::microsoft();
    std::vector<uint8_t> in(37, 1);
    EXPECT_THROW(toeplitz_reference(k, in), std::invalid_argument);
    EXPECT_THROW(ToeplitzHasher(k).hash(in), std::invalid_argument);
    in.resize(36);
    EXPECT_NO_THROW(toeplitz_reference(k, in));
}

TEST(Toeplitz, MixedFamiliesAreRejected) {
    const FlowTuple t{ip("10.0.0.1"), ip("::1"), 1, 2};
    EXPECT_THROW(hash_reference(ToeplitzKey::microsoft(), t, true), std::invalid_argument);
}

TEST(Toeplitz, IsLinearOverGf2) {
    std::mt19937_64 rng(7);
    const ToeplitzKey key = test::random_key(rng, 52);
    for (int i = 0; i < 2000; ++i) {
        std::array<uint8_t, 36> a{}, b{}, x{};
        for (size_t j = 0; j < 36; ++j) {
            a[j] = static_cast<uint8_t>(rng());
            b[j] = static_cast<uint8_t>(rng());
            x[j] = a[j] ^ b[j];
        }
        ASSERT_EQ(toeplitz_reference(key, x),
                  toeplitz_reference(key, a) ^ toeplitz_reference(key, b));
    }
}

// Acceptance: the fast path equals the reference on a million random tuples, over random keys of
// every allowed length, both families, with and without ports.
TEST(Toeplitz, FastPathEqualsReferenceOnAMillionRandomTuples) {
    std::mt19937_64 rng(20261121);
    constexpr int kKeys = 21;  // lengths 40..60
    constexpr int kPerKey = 1'000'000 / kKeys + 1;
    size_t compared = 0;
    for (int k = 0; k < kKeys; ++k) {
        const ToeplitzKey key = test::random_key(rng, kMinKeyBytes + static_cast<size_t>(k));
        const ToeplitzHasher fast(key);
        for (int i = 0; i < kPerKey; ++i) {
            const Family f = (i & 1) ? Family::kV6 : Family::kV4;
            const bool ports = (i & 2) != 0;
            const FlowTuple t{test::random_ip(rng, f), test::random_ip(rng, f),
                              static_cast<uint16_t>(rng()), static_cast<uint16_t>(rng())};
            const uint32_t want = hash_reference(key, t, ports);
            const uint32_t got = fast.hash(t, ports);
            if (want != got) {
                FAIL() << "key " << key.to_hex() << " tuple " << t.src.to_string() << " "
                       << t.dst.to_string() << " " << t.sport << " " << t.dport;
            }
            ++compared;
        }
    }
    EXPECT_GE(compared, 1'000'000u);
}

}  // namespace
}  // namespace shunt::rss
