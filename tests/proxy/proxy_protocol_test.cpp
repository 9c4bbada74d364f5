// PROXY protocol v2 header bytes.
#include <gtest/gtest.h>

#include "proxy/proxy_protocol.hpp"

namespace shunt::proxy {
namespace {

TEST(ProxyProtocol, V4Header) {
    const auto client = make_sockaddr(*rss::IpAddress::parse("10.1.2.3"), 40000);
    const auto front = make_sockaddr(*rss::IpAddress::parse("10.9.8.7"), 80);
    const std::string h = proxy_v2_header(client, front);
    ASSERT_EQ(h.size(), 16u + 12u);
    EXPECT_EQ(h.substr(0, 12), std::string("\r\n\r\n\0\r\nQUIT\n", 12));
    EXPECT_EQ(h[12], '\x21');
    EXPECT_EQ(h[13], '\x11');
    EXPECT_EQ(h[14], 0);
    EXPECT_EQ(h[15], 12);
    EXPECT_EQ(h.substr(16, 8), std::string("\x0a\x01\x02\x03\x0a\x09\x08\x07", 8));
    EXPECT_EQ(static_cast<uint8_t>(h[24]) << 8 | static_cast<uint8_t>(h[25]), 40000);
    EXPECT_EQ(static_cast<uint8_t>(h[26]) << 8 | static_cast<uint8_t>(h[27]), 80);
}

TEST(ProxyProtocol, MixedFamiliesGiveLocal) {
    const auto client = make_sockaddr(*rss::IpAddress::parse("10.1.2.3"), 1);
    const auto front = make_sockaddr(*rss::IpAddress::parse("fd00::1"), 2);
    const std::string h = proxy_v2_header(client, front);
    ASSERT_EQ(h.size(), 16u);
    EXPECT_EQ(h[12], '\x20');
}

}  // namespace
}  // namespace shunt::proxy
