// Byte-exact vectors assembled field by field from docs/wire-format.md, compared with what the encoder
// writes and what the decoder reads back.
#include <gtest/gtest.h>

#include "clc/builders.hpp"
#include "clc/codec.hpp"
#include "hex.hpp"

namespace shunt::clc {
namespace {
using test::cat;
using test::hex;
using test::text;
using test::zeros;

constexpr Gid128 kGid{0x0123456789abcdefULL, 0xfedcba9876543210ULL};

Eid ueid(std::string_view s) {
    Eid e;
    EXPECT_TRUE(make_ueid(s, e));
    return e;
}

// §4.6: Linux x86 loopback-ism-only client with one UEID: 224 bytes.
std::vector<uint8_t> loopback_proposal_224() {
    return cat({
        hex("E2D4C3D9 | 01 | 00E0 | 26"),              // header: SMCR, Proposal, length 224, v2 D/N
        zeros(8), zeros(16), zeros(6),                 // peer id, RoCE GID, RoCE MAC
        hex("0000"),                                   // iparea_offset 0: no prefix area
        zeros(8), hex("0000"), hex("001C"), zeros(28), // SMC-D area: no v1 ISM, v2_ext_offset 28
        hex("01 02 00 10 0000 0040"),                  // v2 ext: 1 EID, 2 GIDs, release 1, smcd off 64
        zeros(16), hex("00 00 0001"), zeros(12),       // RoCEv2 GID, max conns/links, feature mask
        text("SHUNT-TEST", 32),                        // UEID
        zeros(32), zeros(16),                          // SEID, reserved
        hex("0123456789ABCDEF FFFF"),                  // GID high half, CHID 0xFFFF
        hex("FEDCBA9876543210 FFFF"),                  // gid_ext, CHID 0xFFFF
        hex("E2D4C3D9"),                               // trailer
    });
}

// §5.1/§5.2: SMC-Dv2 first-contact Accept with the release-1 FCE: 130 bytes.
std::vector<uint8_t> first_contact_accept_130() {
    return cat({
        hex("E2D4C3C4 | 02 | 0082 | 29"),  // SMCD, Accept, 130, v2 + first contact + D
        hex("0123456789ABCDEF"),           // sender GID (high)
        hex("1122334455667788"),           // DMB token
        hex("00 20 0000"),                 // DMBE idx 0, size 2 (64 KiB)
        hex("00000000"),                   // link id
        hex("FFFF"),                       // CHID
        text("SHUNT-TEST", 32),            // negotiated EID
        hex("FEDCBA9876543210"),           // gid_ext
        hex("00 21 0000"),                 // FCE: os Linux (2), release 1
        text("host-a", 32),                // hostname
        hex("00 00 0001"), zeros(4), zeros(8),  // max conns/links, features, vendor, reserved
        hex("E2D4C3C4"),
    });
}

TEST(ClcVectors, LoopbackProposalIs224BytesExactly) {
    const Eid ueids[] = {ueid("SHUNT-TEST")};
    const auto bytes = encode(loopback_proposal(kGid, ueids));
    const auto want = loopback_proposal_224();
    ASSERT_EQ(want.size(), 224u);
    EXPECT_EQ(bytes, want);

    auto decoded = decode(want);
    ASSERT_TRUE(decoded) << decoded.error().message();
    const auto& p = std::get<Proposal>(*decoded);
    EXPECT_EQ(p.version, 2);
    EXPECT_EQ(p.typev1, SmcType::None);
    EXPECT_EQ(p.typev2, SmcType::D);
    EXPECT_EQ(p.v2.release, 1);
    EXPECT_EQ(p.v2.feature_mask, 0x0001);
    ASSERT_EQ(p.v2.ueids.size(), 1u);
    EXPECT_EQ(trim_blank(p.v2.ueids[0]), "SHUNT-TEST");
    const auto devs = smcd_devices(p.v2);
    ASSERT_EQ(devs.size(), 1u);
    EXPECT_EQ(devs[0], (SmcdDevice{0xFFFF, kGid.hi, kGid.lo}));
}

TEST(ClcVectors, LoopbackProposalWithoutUeidIs192Bytes) {
    EXPECT_EQ(encode(loopback_proposal(kGid, {})).size(), 192u);
}

TEST(ClcVectors, FirstContactAcceptIs130BytesExactly) {
    const BufferOffer dmb{0x1122334455667788ULL, 2};
    const auto bytes = encode(loopback_accept(kGid, ueid("SHUNT-TEST"), dmb, true, pad_blank("host-a")));
    const auto want = first_contact_accept_130();
    ASSERT_EQ(want.size(), 130u);
    EXPECT_EQ(bytes, want);

    auto decoded = decode(want);
    ASSERT_TRUE(decoded) << decoded.error().message();
    const auto& a = std::get<AcceptConfirm>(*decoded);
    EXPECT_EQ(a.type, MsgType::Accept);
    EXPECT_TRUE(a.first_contact);
    EXPECT_EQ(a.gid, kGid.hi);
    EXPECT_EQ(a.gid_ext, kGid.lo);
    EXPECT_EQ(a.dmb_token, 0x1122334455667788ULL);
    EXPECT_EQ(a.dmbe_size, 2);
    EXPECT_EQ(a.chid, 0xFFFF);
    EXPECT_EQ(a.fce.os_type, 2);
    EXPECT_EQ(a.fce.release, 1);
    EXPECT_EQ(trim_blank(a.fce.hostname), "host-a");
}

TEST(ClcVectors, ConfirmNotFirstContactIs78Bytes) {
    const BufferOffer dmb{0xAABBCCDDEEFF0011ULL, 0};
    const auto bytes = encode(loopback_confirm(kGid, ueid("SHUNT-TEST"), dmb, false, {}));
    const auto want = cat({
        hex("E2D4C3C4 03 004E 21"), hex("0123456789ABCDEF"), hex("AABBCCDDEEFF0011"),
        hex("00 00 0000 00000000 FFFF"), text("SHUNT-TEST", 32), hex("FEDCBA9876543210"),
        hex("E2D4C3C4"),
    });
    ASSERT_EQ(want.size(), 78u);
    EXPECT_EQ(bytes, want);
}

TEST(ClcVectors, DeclineV2Is44Bytes) {
    const auto bytes = encode(decline(0x03030007));
    const auto want = cat({hex("E2D4C3D9 04 002C 20"), zeros(8), hex("03030007"), hex("20 000000"),
                           zeros(16), hex("E2D4C3D9")});
    ASSERT_EQ(want.size(), 44u);
    EXPECT_EQ(bytes, want);
}

TEST(ClcVectors, DeclineV1SyncErrIs28BytesWithOutOfSyncBit) {
    Decline d;
    d.version = 1;
    d.out_of_sync = true;
    d.diagnosis = 0x04000000;
    d.os_type = 0;
    const auto want = cat({hex("E2D4C3D9 04 001C 18"), zeros(8), hex("04000000"), zeros(4), hex("E2D4C3D9")});
    EXPECT_EQ(encode(d), want);
    auto back = decode(want);
    ASSERT_TRUE(back);
    EXPECT_EQ(std::get<Decline>(*back), d);
}

TEST(ClcVectors, SmcdV1AcceptIs48Bytes) {
    AcceptConfirm a;
    a.version = 1;
    a.first_contact = true;
    a.gid = 0x1000000000000001ULL;
    a.dmb_token = 0x2000000000000002ULL;
    a.dmbe_size = 6;
    a.link_id = 0x01020304;
    const auto want = cat({hex("E2D4C3C4 02 0030 19"), hex("1000000000000001 2000000000000002"),
                           hex("00 60 0000 01020304"), zeros(12), hex("E2D4C3C4")});
    EXPECT_EQ(encode(a), want);
    auto back = decode(want);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(std::get<AcceptConfirm>(*back), a);
}

// §4.1-4.3: an SMC-D v1 proposal (native ISM GID) with an IPv4 prefix and one IPv6 prefix.
TEST(ClcVectors, V1SmcdProposalWithPrefixes) {
    Proposal p;
    p.version = 1;
    p.typev1 = SmcType::D;
    p.typev2 = SmcType::None;
    p.ism_gid = 0x0A0B0C0D0E0F1011ULL;
    p.ip_prefix.ipv4_subnet = {127, 0, 0, 0};
    p.ip_prefix.ipv4_prefix_len = 8;
    Ipv6Prefix v6;
    v6.prefix = {0xfd, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    v6.prefix_len = 64;
    p.ip_prefix.ipv6.push_back(v6);
    const auto want = cat({
        hex("E2D4C3D9 01 006D 11"), zeros(30), hex("0028"),            // iparea_offset 40
        hex("0A0B0C0D0E0F1011 0000 0000"), zeros(28),                  // SMC-D area
        hex("7F000000 08 0000 01"), hex("FD00") , zeros(14), hex("40"),  // prefixes
        hex("E2D4C3D9"),
    });
    ASSERT_EQ(want.size(), 40u + 40 + 8 + 17 + 4);
    EXPECT_EQ(encode(p), want);
    auto back = decode(want);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(std::get<Proposal>(*back), p);
}

}  // namespace
}  // namespace shunt::clc
