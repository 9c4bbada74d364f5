#include <gtest/gtest.h>

#include "cli/app_output.hpp"
#include "sample.hpp"

using namespace shunt::cli;
using test::error_of;
using test::sample;

TEST(ParseSockperf, PingPongAverageMedianAndObservations) {
    const SockperfLatency l = parse_sockperf_pingpong(sample("sockperf_pingpong.txt"));
    EXPECT_DOUBLE_EQ(l.avg_us, 9.608);
    EXPECT_DOUBLE_EQ(l.median_us, 6.249);
    EXPECT_EQ(l.observations, 80679u);
    EXPECT_DOUBLE_EQ(l.p99_us, 20.740);
}

TEST(ParseSockperf, ThroughputInMegabytesPerSecond) {
    EXPECT_DOUBLE_EQ(parse_sockperf_throughput(sample("sockperf_throughput.txt")), 3979.248);
}

TEST(ParseSockperf, RefusedConnectionIsAnErrorThoughSockperfExitsZero) {
    EXPECT_NE(error_of([] { parse_sockperf_pingpong(sample("sockperf_refused.txt")); }).find("Connection refused"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_sockperf_throughput(sample("sockperf_refused.txt")); }).find("Connection refused"),
              std::string::npos);
}

TEST(ParseSockperf, ThroughputOutputIsNotALatencyAndViceVersa) {
    EXPECT_NE(error_of([] { parse_sockperf_pingpong(sample("sockperf_throughput.txt")); }), "");
    EXPECT_NE(error_of([] { parse_sockperf_throughput(sample("sockperf_pingpong.txt")); }), "");
}

TEST(ParseSockperf, TruncatedOutputIsAnError) {
    const std::string full = sample("sockperf_pingpong.txt");
    const std::string cut = full.substr(0, full.find("====> avg-latency"));
    EXPECT_NE(error_of([&] { parse_sockperf_pingpong(cut); }), "");
}
