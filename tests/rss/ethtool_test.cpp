// The ethtool path. A unit test can only exercise the failure path: the machines the tests run on
// have no NIC we may rely on, and lo (like veth) has no RSS key/RETA, so ETHTOOL_GRSSH answers
// EOPNOTSUPP there. The success path is exercised by `shunt rss nic IFACE` on real hardware.
#include <linux/ethtool.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <system_error>

#include "shunt/rss.hpp"

namespace shunt::rss {
namespace {

TEST(Ethtool, LoopbackHasNoRssKeyOrReta) {
    const NicRssInfo info = query_nic("lo");
    EXPECT_EQ(info.ifname, "lo");
    EXPECT_FALSE(info.has_rxfh);
    EXPECT_EQ(info.rxfh_errno, EOPNOTSUPP);
    EXPECT_TRUE(info.key.empty());
    EXPECT_TRUE(info.reta.empty());
    std::string why;
    EXPECT_FALSE(info.model(&why));
    EXPECT_NE(why.find("exposes no RSS key/RETA"), std::string::npos) << why;
}

TEST(Ethtool, UnknownInterfaceThrows) {
    EXPECT_THROW(query_nic("shuntnone0"), std::system_error);
    EXPECT_THROW(query_nic(""), std::invalid_argument);
    EXPECT_THROW(query_nic(std::string(40, 'x')), std::invalid_argument);
}

TEST(Ethtool, ModelFromReportedKeyAndTable) {
    NicRssInfo info;
    info.ifname = "fake0";
    info.has_rxfh = true;
    info.hfunc = kHashFuncToeplitz;
    const ToeplitzKey ms = ToeplitzKey::microsoft();
    info.key.assign(ms.bytes().begin(), ms.bytes().end());
    info.reta = {0, 1, 2, 3, 0, 1, 2, 3};
    std::string why;
    const auto m = info.model(&why);
    ASSERT_TRUE(m) << why;
    EXPECT_EQ(m->key, ToeplitzKey::microsoft());
    EXPECT_EQ(m->reta.size(), 8u);
    EXPECT_EQ(m->reta.queue_count(), 4u);
    EXPECT_TRUE(info.hfunc_is_toeplitz());

    info.reta.resize(6);
    EXPECT_FALSE(info.model(&why));
    EXPECT_NE(why.find("power of two"), std::string::npos);
    info.reta.resize(8);
    info.key.resize(16);
    EXPECT_FALSE(info.model(&why));
    EXPECT_NE(why.find("outside 40..60"), std::string::npos);
}

TEST(Ethtool, PortsInHashNeedBothL4Halves) {
    const uint64_t addrs = RXH_IP_SRC | RXH_IP_DST;
    EXPECT_FALSE(NicRssInfo::ports_hashed(addrs));
    EXPECT_FALSE(NicRssInfo::ports_hashed(addrs | RXH_L4_B_0_1));
    EXPECT_TRUE(NicRssInfo::ports_hashed(addrs | RXH_L4_B_0_1 | RXH_L4_B_2_3));
    EXPECT_EQ(describe_hash_fields(addrs | RXH_L4_B_0_1 | RXH_L4_B_2_3),
              "IP src, IP dst, L4 bytes 0-1, L4 bytes 2-3");
    EXPECT_EQ(describe_hash_fields(0), "none");
}

}  // namespace
}  // namespace shunt::rss
