// sockperf 3.x output: ping-pong prints "avg-latency=X (std-dev=Y)" and a percentile table in
// µs ("percentile 50.000 = X"); throughput prints "BandWidth is X MBps (Y Mbps)". Errors come
// as "sockperf: ERROR: ..." with exit status 0.
#include <stdexcept>

#include "cli/app_output.hpp"
#include "cli/output_scan.hpp"

namespace shunt::cli {
namespace {

void throw_if_error(std::string_view out) {
    if (out.find("ERROR:") != std::string_view::npos)
        throw std::runtime_error("sockperf: " + line_with(out, "ERROR:"));
}

}  // namespace

SockperfLatency parse_sockperf_pingpong(std::string_view out) {
    throw_if_error(out);
    const auto avg = number_after(out, "avg-latency=");
    const auto median = number_after(out, "percentile 50.000 =");
    const auto p99 = number_after(out, "percentile 99.000 =");
    const auto observations = number_after(line_with(out, " observations"), "Total ");
    if (!avg || !median) throw std::runtime_error("sockperf ping-pong: no latency in the output");
    if (!observations || *observations < 1) throw std::runtime_error("sockperf ping-pong: no observations");
    return {*avg, *median, static_cast<uint64_t>(*observations), p99.value_or(0)};
}

double parse_sockperf_throughput(std::string_view out) {
    throw_if_error(out);
    const auto mbps = number_after(out, "BandWidth is");
    if (!mbps) throw std::runtime_error("sockperf throughput: no bandwidth in the output");
    if (*mbps <= 0) throw std::runtime_error("sockperf throughput: zero bandwidth");
    return *mbps;
}

}  // namespace shunt::cli
