// Each Linux receive-validation rule (smc_clc.c smc_clc_msg_hdr_valid, _prop_valid,
// _acc_conf_valid, _decl_valid) has a message that breaks it and the error that names it.
#include <gtest/gtest.h>

#include <cstring>

#include "clc/builders.hpp"
#include "clc/codec.hpp"

namespace shunt::clc {
namespace {

constexpr Gid128 kGid{0x0123456789abcdefULL, 0xfedcba9876543210ULL};

std::vector<uint8_t> proposal_bytes() {
    Eid e = pad_blank("SHUNT");
    const Eid ueids[] = {e};
    return encode(loopback_proposal(kGid, ueids));  // 224 bytes, layout in vectors_test
}
std::vector<uint8_t> accept_bytes(bool fc = true) {
    return encode(loopback_accept(kGid, pad_blank("SHUNT"), {42, 2}, fc, pad_blank("h")));
}
void set_len(std::vector<uint8_t>& b, size_t len) {
    b[5] = static_cast<uint8_t>(len >> 8);
    b[6] = static_cast<uint8_t>(len);
}
// Grow or shrink a message by `delta` bytes before its trailer and fix the length field.
void resize_body(std::vector<uint8_t>& b, ptrdiff_t delta) {
    const std::vector<uint8_t> trailer(b.end() - 4, b.end());
    b.resize(static_cast<size_t>(static_cast<ptrdiff_t>(b.size()) - 4 + delta));
    b.insert(b.end(), trailer.begin(), trailer.end());
    set_len(b, b.size());
}

void expect_error(const std::vector<uint8_t>& b, ErrorKind kind, std::string_view field) {
    auto r = decode(b);
    ASSERT_FALSE(r) << "decoded a message that breaks " << field;
    EXPECT_EQ(r.error().kind, kind) << r.error().message();
    EXPECT_EQ(std::string_view(r.error().field), field) << r.error().message();
}

TEST(ClcValidation, HeaderEyecatcher) {
    auto b = proposal_bytes();
    b[3] = 0x00;
    expect_error(b, ErrorKind::BadEyecatcher, "header.eyecatcher");
    b = proposal_bytes();
    std::memcpy(b.data(), "GET ", 4);  // plain TCP payload is never taken for CLC
    expect_error(b, ErrorKind::BadEyecatcher, "header.eyecatcher");
}

TEST(ClcValidation, EitherEyecatcherIsAcceptedInHeaderAndTrailer) {
    auto b = proposal_bytes();
    b[3] = 0xC4;  // SMCD header on a Proposal
    b[b.size() - 1] = 0xC4;
    EXPECT_TRUE(decode(b));
}

TEST(ClcValidation, HeaderType) {
    for (uint8_t t : {0, 5, 0xFF}) {
        auto b = proposal_bytes();
        b[4] = t;
        expect_error(b, ErrorKind::Type, "header.type");
    }
}

TEST(ClcValidation, HeaderVersionZero) {
    auto b = proposal_bytes();
    b[7] = 0x06;
    expect_error(b, ErrorKind::Version, "header.version");
}

TEST(ClcValidation, HeaderLengthBounds) {
    auto b = proposal_bytes();
    set_len(b, 11);
    expect_error(b, ErrorKind::Length, "header.length");
    set_len(b, kMaxMessageLen + 1);
    expect_error(b, ErrorKind::Length, "header.length");
}

TEST(ClcValidation, BufferShorterOrLongerThanLength) {
    auto b = proposal_bytes();
    auto shorter = b;
    shorter.pop_back();
    expect_error(shorter, ErrorKind::Truncated, "header.length");
    auto longer = b;
    longer.push_back(0);
    expect_error(longer, ErrorKind::Length, "header.length");
    expect_error({b.begin(), b.begin() + 7}, ErrorKind::Truncated, "header");
}

TEST(ClcValidation, EveryTruncationIsRejectedWithoutOverread) {
    for (const auto& whole : {proposal_bytes(), accept_bytes(), encode(decline(0x03030007))}) {
        for (size_t n = 0; n < whole.size(); ++n) {
            // Truncate the buffer, and also claim the truncated size in the length field.
            std::vector<uint8_t> cut(whole.begin(), whole.begin() + static_cast<ptrdiff_t>(n));
            EXPECT_FALSE(decode(cut)) << n;
            if (n >= 8) {
                set_len(cut, n);
                EXPECT_FALSE(decode(cut)) << "length " << n;
            }
        }
    }
}

TEST(ClcValidation, Trailer) {
    auto b = proposal_bytes();
    b[b.size() - 2] = 0;
    expect_error(b, ErrorKind::BadTrailer, "trailer.eyecatcher");
    b = accept_bytes();
    b[b.size() - 1] = 0;
    expect_error(b, ErrorKind::BadTrailer, "trailer.eyecatcher");
}

TEST(ClcValidation, DeclineTrailerIsNotChecked) {
    auto b = encode(decline(0x03030007));
    b[b.size() - 1] = 0;
    EXPECT_TRUE(decode(b));
}

// Offsets in the 224-byte loopback proposal (see vectors_test).
constexpr size_t kIpareaOff = 38, kV2ExtOff = 50, kEidCnt = 80, kGidCnt = 81, kSmcdV2ExtOff = 86;

TEST(ClcValidation, ProposalEidCountAboveEight) {
    auto b = proposal_bytes();
    b[kEidCnt] = 9;
    expect_error(b, ErrorKind::Count, "proposal.eid_cnt");
}

TEST(ClcValidation, ProposalGidCountAboveEight) {
    auto b = proposal_bytes();
    b[kGidCnt] = 9;
    expect_error(b, ErrorKind::Count, "proposal.ism_gid_cnt");
}

TEST(ClcValidation, ProposalIpv6PrefixCountAboveEight) {
    Proposal p;
    p.version = 2;
    p.typev1 = SmcType::D;
    p.typev2 = SmcType::None;
    auto b = encode(p);  // prefix area at 80, count at 87
    b[87] = 9;
    expect_error(b, ErrorKind::Count, "proposal.ipv6_prefix_cnt");
}

TEST(ClcValidation, ProposalLengthMustMatchItsPartsExactly) {
    auto b = proposal_bytes();
    resize_body(b, 10);  // one more GID entry's worth of bytes, count unchanged
    expect_error(b, ErrorKind::Length, "header.length");
    b = proposal_bytes();
    b[kGidCnt] = 3;  // claims a third GID entry that is not there
    expect_error(b, ErrorKind::Length, "header.length");
    b = proposal_bytes();
    b[kEidCnt] = 2;
    b[kSmcdV2ExtOff + 1] = 0x60;  // offset consistent with 2 EIDs, bytes not there
    expect_error(b, ErrorKind::Length, "header.length");
}

TEST(ClcValidation, ProposalOffsets) {
    auto b = proposal_bytes();
    b[kV2ExtOff + 1] = 0x1D;
    expect_error(b, ErrorKind::Offset, "proposal.v2_ext_offset");
    b = proposal_bytes();
    b[kV2ExtOff + 1] = 0xFF;
    expect_error(b, ErrorKind::Offset, "proposal.v2_ext_offset");
    b = proposal_bytes();
    b[kSmcdV2ExtOff + 1] = 0x41;
    expect_error(b, ErrorKind::Offset, "proposal.smcd_v2_ext_offset");
    b = proposal_bytes();
    b[kIpareaOff + 1] = 0x28;  // typev1 None has no prefix area
    expect_error(b, ErrorKind::Offset, "proposal.iparea_offset");
}

TEST(ClcValidation, ProposalV1) {
    Proposal p;
    p.version = 1;
    p.typev1 = SmcType::D;
    p.typev2 = SmcType::None;
    auto b = encode(p);
    ASSERT_TRUE(decode(b));
    auto none = b;
    none[7] = 0x12;  // v1 offering nothing
    expect_error(none, ErrorKind::Value, "header.typev1");
    auto off = b;
    off[kIpareaOff + 1] = 0x20;  // SMC-D v1 requires iparea_offset == 40
    expect_error(off, ErrorKind::Offset, "proposal.iparea_offset");
    auto far = b;
    far[kIpareaOff] = 0x10;
    far[7] = 0x10;  // SMC-R v1: offset may vary but must stay inside the message
    expect_error(far, ErrorKind::Offset, "proposal.iparea_offset");
    auto longer = b;
    resize_body(longer, 1);
    expect_error(longer, ErrorKind::Length, "header.length");
}

TEST(ClcValidation, AcceptTypeV1) {
    auto b = accept_bytes();
    b[7] = (b[7] & 0xFC) | 0x2;  // typev1 None
    expect_error(b, ErrorKind::Value, "header.typev1");
    b = accept_bytes();
    b[7] = (b[7] & 0xFC) | 0x0;  // SMC-R
    expect_error(b, ErrorKind::Unsupported, "header.typev1");
}

TEST(ClcValidation, AcceptLengths) {
    auto b = accept_bytes(false);
    resize_body(b, -1);  // 77
    expect_error(b, ErrorKind::Length, "header.length");
    b = accept_bytes(false);
    resize_body(b, 1);  // 79
    expect_error(b, ErrorKind::Length, "header.length");
    b = accept_bytes(false);
    b[7] |= 0x08;  // first contact without an FCE
    expect_error(b, ErrorKind::Length, "header.length");
    b = accept_bytes(true);
    resize_body(b, -16);  // 114 bytes but the FCE says release 1
    expect_error(b, ErrorKind::Length, "accept_confirm.fce");
    AcceptConfirm v1;
    v1.version = 1;
    b = encode(v1);
    resize_body(b, 1);
    expect_error(b, ErrorKind::Length, "header.length");
}

TEST(ClcValidation, AcceptDmbeSizeAboveSix) {
    auto b = accept_bytes();
    b[25] = 0x70;
    expect_error(b, ErrorKind::Value, "accept_confirm.dmbe_size");
    b[25] = 0x60;
    EXPECT_TRUE(decode(b));
}

TEST(ClcValidation, DeclineLengths) {
    auto b = encode(decline(1));
    resize_body(b, -1);
    expect_error(b, ErrorKind::Length, "header.length");
    Decline v1;
    v1.version = 1;
    b = encode(v1);
    ASSERT_EQ(b.size(), 28u);
    resize_body(b, 16);  // a v2-sized body with a v1 header
    expect_error(b, ErrorKind::Length, "header.length");
}

}  // namespace
}  // namespace shunt::clc
