// The lo API end to end inside one process: handshake, data both ways, close semantics.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstring>
#include <numeric>
#include <thread>

#include "shunt/decline.hpp"
#include "test_support.hpp"

namespace shunt::lo {
namespace {

using test::connect_pair;
using test::options_for;
using test::TempRundir;

TEST(LoStream, SameRundirIsAccelerated) {
    TempRundir dir;
    auto p = connect_pair(options_for(dir), options_for(dir));
    EXPECT_TRUE(p.client.accelerated()) << decline_name(p.client.fallback_reason());
    EXPECT_TRUE(p.server.accelerated()) << decline_name(p.server.fallback_reason());
    ASSERT_EQ(p.client.write("hello", 5), 5);
    char buf[16] = {};
    ASSERT_EQ(p.server.read(buf, sizeof buf), 5);
    EXPECT_STREQ(buf, "hello");
    ASSERT_EQ(p.server.write("world!", 6), 6);
    ASSERT_EQ(p.client.read(buf, sizeof buf), 6);
    EXPECT_EQ(std::string(buf, 6), "world!");
}

}  // namespace
}  // namespace shunt::lo
