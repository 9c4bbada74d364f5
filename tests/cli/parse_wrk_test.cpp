#include <gtest/gtest.h>

#include "cli/app_output.hpp"
#include "sample.hpp"

using namespace shunt::cli;
using test::error_of;
using test::sample;

TEST(ParseWrk, RequestsPerSecond) {
    const WrkResult r = parse_wrk(sample("wrk.txt"));
    EXPECT_DOUBLE_EQ(r.requests_per_sec, 41972.17);
    EXPECT_EQ(r.requests, 84276u);
    EXPECT_EQ(r.non_2xx_3xx, 0u);
    EXPECT_EQ(r.socket_errors, 0u);
    EXPECT_DOUBLE_EQ(parse_wrk(sample("wrk_2threads.txt")).requests_per_sec, 83639.73);
}

TEST(ParseWrk, ErrorRepliesAreCounted) {
    const WrkResult r = parse_wrk(sample("wrk_404.txt"));
    EXPECT_EQ(r.non_2xx_3xx, 53838u);
    EXPECT_EQ(r.requests, 53838u);
}

TEST(ParseWrk, SocketErrorsAreSummed) {
    const std::string out = sample("wrk.txt") + "  Socket errors: connect 3, read 5, write 0, timeout 7\n";
    EXPECT_EQ(parse_wrk(out).socket_errors, 15u);
}

TEST(ParseWrk, RefusedConnectionIsAnError) {
    EXPECT_EQ(error_of([] { parse_wrk(sample("wrk_refused.txt")); }),
              "wrk: unable to connect to 127.0.0.1:11114 Connection refused");
}
