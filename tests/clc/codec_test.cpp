// Every message type survives encode -> decode unchanged, in every shape the layout allows.
#include <gtest/gtest.h>

#include "clc/builders.hpp"
#include "clc/codec.hpp"

namespace shunt::clc {
namespace {

template <class T>
void expect_round_trip(const T& m) {
    const auto bytes = encode(m);
    auto back = decode(bytes);
    ASSERT_TRUE(back) << back.error().message();
    ASSERT_TRUE(std::holds_alternative<T>(*back));
    EXPECT_EQ(std::get<T>(*back), m);
    EXPECT_EQ(encode(*back), bytes);
}

Eid eid_of(char c) { return pad_blank(std::string(5, c)); }

Proposal full_v2_proposal(SmcType typev1, SmcType typev2, size_t n_eids, size_t n_gids, size_t n_v6) {
    Proposal p;
    p.version = 2;
    p.typev1 = typev1;
    p.typev2 = typev2;
    p.peer_id = {1, 2, 3, 4, 5, 6, 7, 8};
    p.roce_gid[15] = 9;
    p.roce_mac = {0xa, 0xb, 0xc, 0xd, 0xe, 0xf};
    if (indicates_d(typev1)) p.ism_gid = 0x1111222233334444ULL;
    p.ism_chid = 0x0102;
    if (typev1 != SmcType::None) {
        p.ip_prefix.ipv4_subnet = {10, 1, 0, 0};
        p.ip_prefix.ipv4_prefix_len = 16;
        for (size_t i = 0; i < n_v6; ++i) {
            Ipv6Prefix x;
            x.prefix[0] = static_cast<uint8_t>(0x20 + i);
            x.prefix_len = static_cast<uint8_t>(48 + i);
            p.ip_prefix.ipv6.push_back(x);
        }
    }
    if (typev2 != SmcType::None) {
        p.v2.release = 1;
        p.v2.seid_enabled = true;
        p.v2.roce_v2_gid[0] = 0xfe;
        p.v2.max_conns = 255;
        p.v2.max_links = 2;
        p.v2.feature_mask = 0x0001;
        for (size_t i = 0; i < n_eids; ++i) p.v2.ueids.push_back(eid_of(static_cast<char>('A' + i)));
        if (indicates_d(typev2)) {
            p.v2.seid = pad_blank("IBM-SYSZ-ISMSEID00000000ABCD");
            for (size_t i = 0; i < n_gids; ++i)
                p.v2.gids.push_back({0x1000 + i, static_cast<uint16_t>(i % 2 ? 0xFFFF : 0x0100 + i)});
        }
    }
    return p;
}

TEST(ClcCodec, ProposalV2AllShapesRoundTrip) {
    const SmcType types[] = {SmcType::R, SmcType::D, SmcType::None, SmcType::Both};
    for (SmcType t1 : types)
        for (SmcType t2 : types)
            for (size_t n : {size_t{0}, size_t{1}, size_t{8}}) {
                SCOPED_TRACE(testing::Message() << "typev1=" << int(t1) << " typev2=" << int(t2) << " n=" << n);
                expect_round_trip(full_v2_proposal(t1, t2, n, n, n));
            }
}

TEST(ClcCodec, LargestProposalIsTheMaximumLength) {
    const auto bytes = encode(full_v2_proposal(SmcType::Both, SmcType::Both, 8, 8, 8));
    EXPECT_EQ(bytes.size(), kMaxMessageLen);
}

TEST(ClcCodec, ProposalV1RoundTrips) {
    for (SmcType t1 : {SmcType::R, SmcType::D, SmcType::Both}) {
        Proposal p = full_v2_proposal(t1, SmcType::None, 0, 0, 3);
        p.version = 1;
        if (!indicates_d(t1)) p.ism_chid = 0;  // no SMC-D area on the wire
        expect_round_trip(p);
    }
}

TEST(ClcCodec, AcceptConfirmRoundTrip) {
    for (MsgType t : {MsgType::Accept, MsgType::Confirm})
        for (uint8_t version : {1, 2})
            for (bool fc : {false, true})
                for (uint8_t release : {0, 1}) {
                    AcceptConfirm m;
                    m.type = t;
                    m.version = version;
                    m.first_contact = fc;
                    m.gid = 0x0102030405060708ULL;
                    m.dmb_token = 0x1112131415161718ULL;
                    m.dmbe_size = 6;
                    m.link_id = 0xdeadbeef;
                    if (version == 2) {
                        m.chid = 0xFFFF;
                        m.eid = eid_of('X');
                        m.gid_ext = 0x2122232425262728ULL;
                        if (fc) {
                            m.fce.release = release;
                            m.fce.os_type = 15;
                            m.fce.hostname = pad_blank("a-very-long-host-name-that-is-cut-at-32");
                            m.fce.feature_mask = release ? 0x0001 : 0;
                        }
                    }
                    if (version == 1 || !fc) m.fce = {};
                    SCOPED_TRACE(testing::Message() << int(t) << " v" << int(version) << " fc=" << fc
                                                    << " rel=" << int(release));
                    expect_round_trip(m);
                }
}

TEST(ClcCodec, DeclineRoundTrip) {
    for (uint8_t version : {1, 2}) {
        Decline d;
        d.version = version;
        d.diagnosis = 0x03030007;
        d.peer_id = {9, 8, 7, 6, 5, 4, 3, 2};
        d.os_type = version == 2 ? 2 : 0;
        if (version == 2) d.more_diagnosis = {1, 2, 3, 4};
        expect_round_trip(d);
    }
}

TEST(ClcCodec, EncodeRejectsTooManyEntries) {
    Proposal p = full_v2_proposal(SmcType::None, SmcType::D, 1, 8, 0);
    p.v2.gids.push_back({1, 1});
    EXPECT_THROW(encode(p), std::length_error);
    AcceptConfirm a;
    a.dmbe_size = 7;
    EXPECT_THROW(encode(a), std::invalid_argument);
}

TEST(ClcCodec, EmulatedEntryWithoutPairNamesNoDevice) {
    V2Extension v2;
    v2.gids = {{1, 0x0100}, {2, 0xFFFF}, {3, 0x0200}, {4, 0xFF00}, {5, 0xFF00}, {6, 0xFFFF}};
    const auto devs = smcd_devices(v2);
    ASSERT_EQ(devs.size(), 3u);
    EXPECT_EQ(devs[0], (SmcdDevice{0x0100, 1, 0}));
    EXPECT_EQ(devs[1], (SmcdDevice{0x0200, 3, 0}));
    EXPECT_EQ(devs[2], (SmcdDevice{0xFF00, 4, 5}));
}

TEST(ClcCodec, UeidRules) {
    Eid e;
    EXPECT_TRUE(make_ueid("SHUNT", e));
    EXPECT_EQ(trim_blank(e), "SHUNT");
    EXPECT_TRUE(make_ueid("A1.B-2", e));
    EXPECT_TRUE(make_ueid(std::string(32, 'Z'), e));
    EXPECT_FALSE(make_ueid("", e));
    EXPECT_FALSE(make_ueid(std::string(33, 'Z'), e));
    EXPECT_FALSE(make_ueid("-LEADING", e));
    EXPECT_FALSE(make_ueid("lower", e));
    EXPECT_FALSE(make_ueid("SPACE IN", e));
}

TEST(ClcCodec, DmbeSizeCompression) {
    EXPECT_EQ(compress_dmbe_size(1), 0);
    EXPECT_EQ(compress_dmbe_size(16 * 1024), 0);
    EXPECT_EQ(compress_dmbe_size(16 * 1024 + 1), 1);
    EXPECT_EQ(compress_dmbe_size(64 * 1024), 2);
    EXPECT_EQ(compress_dmbe_size(1024 * 1024), 6);
    EXPECT_EQ(compress_dmbe_size(64 * 1024 * 1024), 6);
    for (uint8_t c = 0; c <= kMaxDmbeSize; ++c) EXPECT_EQ(compress_dmbe_size(dmbe_bytes(c)), c);
}

}  // namespace
}  // namespace shunt::clc
