#include <gtest/gtest.h>

#include <set>

#include "shunt/decline.hpp"

namespace shunt {
namespace {

TEST(DeclineCodes, NamesAndNumbersMatchLinux) {
    EXPECT_EQ(decline_name(0x03030007), "NOSMCD2DEV");
    EXPECT_EQ(decline_name(0x05000000), "PEERDECL");
    EXPECT_EQ(decline_name(0x01010000), "MEM");
    EXPECT_EQ(decline_name(0x030d0000), "MAX_DMB");
    EXPECT_EQ(decline_name(0x04000000), "SYNCERR");
    EXPECT_EQ(decline_name(0x03010000), "PEERNOSMC");
    EXPECT_EQ(decline_name(0x12345678), "0x12345678");
}

TEST(DeclineCodes, TableHasUniqueCodesAndNames) {
    std::set<uint32_t> codes;
    std::set<std::string_view> names;
    for (const DeclineInfo& d : decline_codes()) {
        EXPECT_TRUE(codes.insert(uint32_t(d.code)).second) << d.name;
        EXPECT_TRUE(names.insert(d.name).second) << d.name;
        EXPECT_EQ(find_decline(uint32_t(d.code)), &d);
    }
    EXPECT_EQ(codes.size(), 38u);  // the 36 of Linux, and shunt's own HANDOFF and SAMEPROC
    EXPECT_EQ(decline_name(0x0a000001), "HANDOFF");
    EXPECT_EQ(decline_name(0x0a000002), "SAMEPROC");
}

TEST(DeclineCodes, ParseNameOrNumber) {
    EXPECT_EQ(parse_decline("NOSMCD2DEV"), 0x03030007u);
    EXPECT_EQ(parse_decline("nosmcd2dev"), 0x03030007u);
    EXPECT_EQ(parse_decline("0x030d0000"), 0x030d0000u);
    EXPECT_EQ(parse_decline("05000000"), 0x05000000u);
    EXPECT_FALSE(parse_decline("NOPE"));
    EXPECT_FALSE(parse_decline(""));
    EXPECT_FALSE(parse_decline("0x"));
    EXPECT_FALSE(parse_decline("0x1234567890"));
}

}  // namespace
}  // namespace shunt
