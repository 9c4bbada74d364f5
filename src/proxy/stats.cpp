// Rendering of the per-shard counters (see stats.hpp).
#include "proxy/stats.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace shunt::proxy {

namespace {
struct Field {
    const char* name;
    const char* kind;
    const char* help;
    std::atomic<uint64_t> ShardCounters::*member;
};
const Field kFields[] = {
#define SHUNT_PROXY_ROW(name, kind, help) {#name, #kind, help, &ShardCounters::name},
    SHUNT_PROXY_COUNTERS(SHUNT_PROXY_ROW)
#undef SHUNT_PROXY_ROW
};
uint64_t get(const ShardView& s, const Field& f) {
    return (s.counters->*f.member).load(std::memory_order_relaxed);
}
}  // namespace

std::string stats_json(const std::vector<ShardView>& shards, const std::vector<ServerView>& servers,
                       const std::string& model) {
    nlohmann::json j;
    j["model"] = model;
    nlohmann::json total = nlohmann::json::object();
    for (const auto& f : kFields) total[f.name] = 0;
    for (const auto& s : shards) {
        nlohmann::json one;
        one["cpu"] = s.cpu;
        for (const auto& f : kFields) {
            one[f.name] = get(s, f);
            total[f.name] = total[f.name].get<uint64_t>() + get(s, f);
        }
        j["shards"].push_back(one);
    }
    j["total"] = total;
    j["servers"] = nlohmann::json::array();
    for (const auto& v : servers)
        j["servers"].push_back({{"backend", v.backend}, {"name", v.name}, {"address", v.address},
                                {"up", v.up}, {"checks_failed", v.checks_failed}});
    return j.dump() + "\n";
}

std::string stats_prometheus(const std::vector<ShardView>& shards, const std::vector<ServerView>& servers) {
    std::string out;
    for (const auto& f : kFields) {
        out += fmt::format("# HELP shunt_proxy_{} {}\n# TYPE shunt_proxy_{} {}\n", f.name, f.help, f.name,
                           f.kind);
        for (const auto& s : shards)
            out += fmt::format("shunt_proxy_{}{{cpu=\"{}\"}} {}\n", f.name, s.cpu, get(s, f));
    }
    out += "# HELP shunt_proxy_server_up 1 if the health check passes\n# TYPE shunt_proxy_server_up gauge\n";
    for (const auto& v : servers)
        out += fmt::format("shunt_proxy_server_up{{backend=\"{}\",server=\"{}\"}} {}\n", v.backend, v.name,
                           v.up ? 1 : 0);
    return out;
}

std::string stats_table(const std::vector<ShardView>& shards, const std::vector<ServerView>& servers,
                        const std::string& model) {
    std::string out = fmt::format("model: {}\n{:<20}", model, "counter");
    for (const auto& s : shards) out += fmt::format(" {:>12}", fmt::format("cpu{}", s.cpu));
    out += fmt::format(" {:>12}\n", "total");
    for (const auto& f : kFields) {
        out += fmt::format("{:<20}", f.name);
        uint64_t sum = 0;
        for (const auto& s : shards) {
            out += fmt::format(" {:>12}", get(s, f));
            sum += get(s, f);
        }
        out += fmt::format(" {:>12}\n", sum);
    }
    for (const auto& v : servers)
        out += fmt::format("server {}/{} {} {}\n", v.backend, v.name, v.address, v.up ? "UP" : "DOWN");
    return out;
}

}  // namespace shunt::proxy
