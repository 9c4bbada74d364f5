#include <gtest/gtest.h>

#include "cli/app_output.hpp"
#include "sample.hpp"

using namespace shunt::cli;
using test::error_of;
using test::sample;

TEST(ParseIperf3, OneStream) {
    const Iperf3Result r = parse_iperf3_json(sample("iperf3.json"));
    EXPECT_NEAR(r.received_gbps, 13.496649411568697, 1e-9);
    EXPECT_NEAR(r.sent_gbps, 13.497399000102152, 1e-9);
    EXPECT_EQ(r.received_bytes, 1701183488u);
    EXPECT_EQ(r.streams, 1);
    EXPECT_FALSE(r.reverse);
}

TEST(ParseIperf3, ReverseAndParallel) {
    const Iperf3Result rev = parse_iperf3_json(sample("iperf3_R.json"));
    EXPECT_TRUE(rev.reverse);
    EXPECT_NEAR(rev.received_gbps, 9.6390616464582, 1e-9);
    const Iperf3Result p4 = parse_iperf3_json(sample("iperf3_P4.json"));
    EXPECT_EQ(p4.streams, 4);
    EXPECT_NEAR(p4.received_gbps, 8.56888829161236, 1e-9);
}

TEST(ParseIperf3, RefusedConnectionIsAnErrorThoughIperf3ExitsZero) {
    EXPECT_EQ(error_of([] { parse_iperf3_json(sample("iperf3_refused.json")); }),
              "iperf3: unable to connect to server: Connection refused");
}

TEST(ParseIperf3, NotJsonOrTruncated) {
    EXPECT_EQ(error_of([] { parse_iperf3_json("Connecting to host 127.0.0.1, port 5201"); }), "iperf3: output is not JSON");
    const std::string full = sample("iperf3.json");
    EXPECT_NE(error_of([&] { parse_iperf3_json(full.substr(0, full.size() / 2)); }), "");
}
