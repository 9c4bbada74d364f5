#pragma once
// Parsers for what the benchmark programs that `shunt bench apps` runs print. Each takes the
// program's whole output and returns the figures, or throws std::runtime_error naming what is
// wrong: several of these programs exit 0 after failing (sockperf and iperf3 -J after a
// refused connection), so the output, not the exit status, says whether a run measured anything.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace shunt::cli {

// `sockperf ping-pong` / `sockperf pp`: one-way latency (round trip / 2) in µs.
struct SockperfLatency {
    double avg_us = 0, median_us = 0;
    uint64_t observations = 0;
    double p99_us = 0;
};
SockperfLatency parse_sockperf_pingpong(std::string_view out);

// `sockperf throughput` / `sockperf tp`: the sender's bandwidth in MB/s (10^6 bytes).
double parse_sockperf_throughput(std::string_view out);

// `iperf3 -c ... -J`: totals over all streams, in Gbit/s (10^9 bits).
struct Iperf3Result {
    double sent_gbps = 0, received_gbps = 0;
    uint64_t received_bytes = 0;
    int streams = 0;
    bool reverse = false;
};
Iperf3Result parse_iperf3_json(std::string_view json);

// `redis-benchmark --csv`: requests per second by test name ("SET", "GET", ...).
std::map<std::string, double> parse_redis_benchmark_csv(std::string_view csv);

// `wrk`: requests per second, with what went wrong (non-2xx/3xx replies, socket errors).
struct WrkResult {
    double requests_per_sec = 0;
    uint64_t requests = 0, non_2xx_3xx = 0, socket_errors = 0;
};
WrkResult parse_wrk(std::string_view out);

}  // namespace shunt::cli
