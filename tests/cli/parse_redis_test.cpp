#include <gtest/gtest.h>

#include "cli/app_output.hpp"
#include "sample.hpp"

using namespace shunt::cli;
using test::error_of;
using test::sample;

TEST(ParseRedisBenchmark, SetAndGetRequestsPerSecond) {
    const auto rps = parse_redis_benchmark_csv(sample("redis_benchmark.csv"));
    ASSERT_EQ(rps.size(), 2u);
    EXPECT_DOUBLE_EQ(rps.at("SET"), 37950.66);
    EXPECT_DOUBLE_EQ(rps.at("GET"), 54794.52);
}

TEST(ParseRedisBenchmark, Pipelined) {
    const auto rps = parse_redis_benchmark_csv(sample("redis_benchmark_P16.csv"));
    EXPECT_DOUBLE_EQ(rps.at("SET"), 266666.66);
    EXPECT_DOUBLE_EQ(rps.at("GET"), 256410.25);
}

TEST(ParseRedisBenchmark, RefusedConnectionIsAnError) {
    EXPECT_EQ(error_of([] { parse_redis_benchmark_csv(sample("redis_benchmark_refused.txt")); }),
              "redis-benchmark: Could not connect to Redis at 127.0.0.1:11113: Connection refused");
}

TEST(ParseRedisBenchmark, QuietOutputIsNotCsv) {
    EXPECT_NE(error_of([] { parse_redis_benchmark_csv(sample("redis_benchmark_q.txt")); }).find("no CSV header"),
              std::string::npos);
}

TEST(ParseRedisBenchmark, HeaderWithoutRowsIsAnError) {
    const std::string full = sample("redis_benchmark.csv");
    EXPECT_EQ(error_of([&] { parse_redis_benchmark_csv(full.substr(0, full.find('\n') + 1)); }),
              "redis-benchmark: no results in the CSV");
}
