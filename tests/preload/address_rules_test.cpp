#include "preload/address_rules.hpp"

#include <gtest/gtest.h>

namespace shunt::preload {
namespace {

IpPort ep(const char* ip, uint16_t port) { return *IpPort::parse(ip, port); }

bool any_match(const std::vector<AddressRule>& rules, const IpPort& e, bool wildcard = false) {
    for (const auto& r : rules)
        if (r.matches(e, wildcard)) return true;
    return false;
}

TEST(AddressRules, PortsRangesAddressesPrefixesAndPairs) {
    std::string bad;
    auto rules = parse_rules("80, 8000-8100,10.0.0.0/8,::1,127.0.0.1:6379,[::1]:443", &bad);
    ASSERT_TRUE(rules) << bad;
    ASSERT_EQ(rules->size(), 6u);
    EXPECT_TRUE(any_match(*rules, ep("192.0.2.1", 80)));
    EXPECT_TRUE(any_match(*rules, ep("192.0.2.1", 8050)));
    EXPECT_FALSE(any_match(*rules, ep("192.0.2.1", 8101)));
    EXPECT_TRUE(any_match(*rules, ep("10.200.3.4", 1)));
    EXPECT_FALSE(any_match(*rules, ep("11.0.0.1", 1)));
    EXPECT_TRUE(any_match(*rules, ep("::1", 9)));
    EXPECT_TRUE(any_match(*rules, ep("127.0.0.1", 6379)));
    EXPECT_FALSE(any_match(*rules, ep("127.0.0.1", 6380)));
    EXPECT_FALSE(any_match(*rules, ep("127.0.0.2", 6379)));
}

TEST(AddressRules, PrefixBoundariesInsideAByte) {
    auto rules = parse_rules("192.168.1.128/25");
    ASSERT_TRUE(rules);
    EXPECT_TRUE(any_match(*rules, ep("192.168.1.200", 1)));
    EXPECT_FALSE(any_match(*rules, ep("192.168.1.127", 1)));
    auto v6 = parse_rules("fd00::/8");
    ASSERT_TRUE(v6);
    EXPECT_TRUE(any_match(*v6, ep("fd12::1", 1)));
    EXPECT_FALSE(any_match(*v6, ep("fe80::1", 1)));
    EXPECT_FALSE(any_match(*v6, ep("10.0.0.1", 1)));  // v4-mapped, outside fd00::/8
}

TEST(AddressRules, WildcardListenerMatchesOnPortAlone) {
    auto rules = parse_rules("127.0.0.1:6379");
    ASSERT_TRUE(rules);
    EXPECT_TRUE(any_match(*rules, ep("0.0.0.0", 6379), true));
    EXPECT_FALSE(any_match(*rules, ep("0.0.0.0", 6380), true));
}

TEST(AddressRules, MalformedItemsAreRejectedAndNamed) {
    for (const char* spec : {"70000", "90-80", "10.0.0.0/33", "::1/129", "[::1", "[::1]x", "1.2.3.4:99999",
                             "not-an-address", "1.2.3", "a-b"}) {
        std::string bad;
        EXPECT_FALSE(parse_rules(spec, &bad)) << spec;
        EXPECT_FALSE(bad.empty()) << spec;
    }
    auto empty = parse_rules(" , ,");
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace shunt::preload
