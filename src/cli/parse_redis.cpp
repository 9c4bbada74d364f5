// redis-benchmark --csv: a header line "test","rps",... then one quoted line per test. A
// refused connection prints "Could not connect to Redis at ..." (and the tool may then spin),
// with no CSV rows.
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/app_output.hpp"
#include "cli/output_scan.hpp"

namespace shunt::cli {
namespace {

std::vector<std::string> csv_fields(std::string_view line) {
    std::vector<std::string> f(1);
    bool quoted = false;
    for (char c : line) {
        if (c == '"') quoted = !quoted;
        else if (c == ',' && !quoted) f.emplace_back();
        else if (c != '\r') f.back() += c;
    }
    return f;
}

}  // namespace

std::map<std::string, double> parse_redis_benchmark_csv(std::string_view csv) {
    if (csv.find("Could not connect") != std::string_view::npos)
        throw std::runtime_error("redis-benchmark: " + line_with(csv, "Could not connect"));
    std::map<std::string, double> rps;
    int rps_col = -1;
    size_t pos = 0;
    while (pos < csv.size()) {
        size_t nl = csv.find('\n', pos);
        if (nl == std::string_view::npos) nl = csv.size();
        const auto fields = csv_fields(csv.substr(pos, nl - pos));
        pos = nl + 1;
        if (fields.size() < 2) continue;
        if (fields[0] == "test") {
            for (size_t i = 0; i < fields.size(); ++i)
                if (fields[i] == "rps") rps_col = static_cast<int>(i);
            continue;
        }
        if (rps_col < 0 || static_cast<size_t>(rps_col) >= fields.size()) continue;
        try {
            size_t used = 0;
            const double v = std::stod(fields[static_cast<size_t>(rps_col)], &used);
            if (used == fields[static_cast<size_t>(rps_col)].size() && v > 0) rps[fields[0]] = v;
        } catch (const std::logic_error&) {
        }
    }
    if (rps_col < 0) throw std::runtime_error("redis-benchmark: no CSV header (run it with --csv)");
    if (rps.empty()) throw std::runtime_error("redis-benchmark: no results in the CSV");
    return rps;
}

}  // namespace shunt::cli
