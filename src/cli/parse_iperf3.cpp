// iperf3 -J: end.sum_sent / end.sum_received hold the totals over all streams; a failed test
// still exits 0 with an "error" member and an empty "end".
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "cli/app_output.hpp"

namespace shunt::cli {

Iperf3Result parse_iperf3_json(std::string_view json) {
    const auto j = nlohmann::json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) throw std::runtime_error("iperf3: output is not JSON");
    if (j.contains("error")) throw std::runtime_error("iperf3: " + j["error"].get<std::string>());
    const auto& end = j.value("end", nlohmann::json::object());
    if (!end.contains("sum_sent") || !end.contains("sum_received"))
        throw std::runtime_error("iperf3: no end.sum_sent / end.sum_received");
    Iperf3Result r;
    r.sent_gbps = end["sum_sent"].at("bits_per_second").get<double>() / 1e9;
    r.received_gbps = end["sum_received"].at("bits_per_second").get<double>() / 1e9;
    r.received_bytes = end["sum_received"].at("bytes").get<uint64_t>();
    const auto& ts = j.at("start").value("test_start", nlohmann::json::object());
    r.streams = ts.value("num_streams", 0);
    r.reverse = ts.value("reverse", 0) != 0;
    if (r.received_bytes == 0) throw std::runtime_error("iperf3: no bytes received");
    return r;
}

}  // namespace shunt::cli
