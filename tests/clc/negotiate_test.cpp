#include <gtest/gtest.h>

#include "clc/negotiate.hpp"
#include "shunt/decline.hpp"

namespace shunt::clc {
namespace {

constexpr Gid128 kHost{0x1111, 0x2222};
const Eid kUeid = pad_blank("SHUNT");
const Eid kLocal[] = {kUeid};
const LocalIdentity kMe{kHost, kLocal};

uint32_t declined(const std::variant<ServerChoice, uint32_t>& v) {
    const uint32_t* c = std::get_if<uint32_t>(&v);
    return c ? *c : 0;
}
constexpr uint32_t code(DeclineCode c) { return static_cast<uint32_t>(c); }

TEST(ClcNegotiate, SameHostProposalIsAccepted) {
    const auto v = choose_on_proposal(loopback_proposal(kHost, kLocal), kMe);
    ASSERT_TRUE(std::holds_alternative<ServerChoice>(v));
    EXPECT_EQ(std::get<ServerChoice>(v).eid, kUeid);
    EXPECT_EQ(std::get<ServerChoice>(v).release, 1);
}

TEST(ClcNegotiate, OtherHostGidIsNoSmcd2Dev) {
    const Gid128 other{0x1111, 0x3333};  // same high half: the whole 128 bits must match
    EXPECT_EQ(declined(choose_on_proposal(loopback_proposal(other, kLocal), kMe)),
              code(DeclineCode::NoSmcd2Dev));
}

TEST(ClcNegotiate, MissingPartsGiveLinuxReasons) {
    Proposal p = loopback_proposal(kHost, kLocal);
    p.typev2 = SmcType::None;
    EXPECT_EQ(declined(choose_on_proposal(p, kMe)), code(DeclineCode::NoV2Ext));
    p.typev2 = SmcType::R;
    EXPECT_EQ(declined(choose_on_proposal(p, kMe)), code(DeclineCode::NoV2DExt));
    p = loopback_proposal(kHost, {});
    EXPECT_EQ(declined(choose_on_proposal(p, kMe)), code(DeclineCode::NoUeid));
    const Eid other[] = {pad_blank("OTHER")};
    p = loopback_proposal(kHost, other);
    EXPECT_EQ(declined(choose_on_proposal(p, kMe)), code(DeclineCode::NoSmcd2Dev));
    p = loopback_proposal(kHost, kLocal);
    p.version = 1;
    EXPECT_EQ(declined(choose_on_proposal(p, kMe)), code(DeclineCode::VersMismat));
}

TEST(ClcNegotiate, GidMustComeAsAnEmulatedPair) {
    Proposal p = loopback_proposal(kHost, kLocal);
    p.v2.gids.pop_back();  // high half only
    EXPECT_EQ(declined(choose_on_proposal(p, kMe)), code(DeclineCode::NoSmcd2Dev));
}

TEST(ClcNegotiate, ClientChecksAccept) {
    AcceptConfirm a = loopback_accept(kHost, kUeid, {7, 2}, true, pad_blank("h"));
    EXPECT_EQ(check_accept(a, kMe), 0u);
    AcceptConfirm bad = a;
    bad.gid_ext ^= 1;
    EXPECT_EQ(check_accept(bad, kMe), code(DeclineCode::NoSmcd2Dev));
    bad = a;
    bad.chid = 0xFF00;
    EXPECT_EQ(check_accept(bad, kMe), code(DeclineCode::NoSmcd2Dev));
    bad = a;
    bad.eid = pad_blank("OTHER");
    EXPECT_EQ(check_accept(bad, kMe), code(DeclineCode::NoSmcd2Dev));
    bad = a;
    bad.fce.release = 2;
    EXPECT_EQ(check_accept(bad, kMe), code(DeclineCode::ReleaseErr));
}

TEST(ClcNegotiate, ServerChecksConfirm) {
    const AcceptConfirm a = loopback_accept(kHost, kUeid, {7, 2}, true, pad_blank("h"));
    AcceptConfirm c = loopback_confirm(kHost, kUeid, {8, 2}, true, pad_blank("h"));
    EXPECT_EQ(check_confirm(c, a, kMe), 0u);
    c.fce.release = 0;
    EXPECT_EQ(check_confirm(c, a, kMe), code(DeclineCode::ReleaseErr));
    c = loopback_confirm(kHost, kUeid, {8, 2}, false, {});
    EXPECT_EQ(check_confirm(c, a, kMe), code(DeclineCode::SyncErr));
    c = loopback_confirm({1, 2}, kUeid, {8, 2}, true, pad_blank("h"));
    EXPECT_EQ(check_confirm(c, a, kMe), code(DeclineCode::NoSmcd2Dev));
}

}  // namespace
}  // namespace shunt::clc
