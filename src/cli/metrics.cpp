// Host metrics in Prometheus form (see metrics.hpp for the retired-totals design).
#include "cli/metrics.hpp"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/unique_fd.hpp"
#include "lo/stats_region.hpp"
#include "lo/rundir.hpp"
#include "shunt/decline.hpp"

namespace shunt::cli {
namespace {

// One metric family: every series of `name` shares its HELP and TYPE lines.
struct Family {
    const char* name;
    const char* type;
    const char* help;
    bool scalar = false;  // one series without labels: printed as 0 when nothing counted yet
};

// The order of the exposition. Names follow the Prometheus conventions: base units (bytes),
// counters end in _total.
constexpr Family kFamilies[] = {
    {"shunt_connections_total", "counter", "Connections handled by shunt lo, by the mode they use (smcd or tcp fallback) and role."},
    {"shunt_fallbacks_total", "counter", "Connections that fell back to TCP, by SMC decline reason name and code."},
    {"shunt_handshake_errors_total", "counter", "CLC handshakes that failed after they started.", true},
    {"shunt_receive_bytes_total", "counter", "Bytes received over shared-memory connections.", true},
    {"shunt_transmit_bytes_total", "counter", "Bytes sent over shared-memory connections.", true},
    {"shunt_receive_calls_total", "counter", "Receive calls on shared-memory connections.", true},
    {"shunt_transmit_calls_total", "counter", "Send calls on shared-memory connections.", true},
    {"shunt_transmit_buffer_full_total", "counter", "Sends that found the peer's receive buffer full.", true},
    {"shunt_wakeups_sent_total", "counter", "Wake-ups signalled to a sleeping peer.", true},
    {"shunt_rds_retransmits_total", "counter", "rds messages sent again after a lane failed, by node."},
    {"shunt_rds_lane_failures_total", "counter", "rds lane connections lost, by node."},
    {"shunt_rds_transmit_bytes_total", "counter", "Bytes rds lanes sent, by node."},
    {"shunt_rds_receive_bytes_total", "counter", "Bytes rds lanes received, by node."},
    {"shunt_processes", "gauge", "Processes with a shunt stats region now.", true},
    {"shunt_open_connections", "gauge", "Connections open now, by mode."},
    {"shunt_rds_nodes", "gauge", "rds nodes running now.", true},
    {"shunt_rds_lanes", "gauge", "rds lanes now, by node and lane state."},
};

std::string escape(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

// Field 22 of /proc/<pid>/stat: with the pid, it names one process even across pid reuse.
std::string start_time(pid_t pid) {
    std::ifstream f(fmt::format("/proc/{}/stat", pid));
    std::string line;
    std::getline(f, line);
    const auto paren = line.rfind(')');
    if (paren == std::string::npos) return "?";
    std::istringstream rest(line.substr(paren + 2));
    std::string field;
    for (int i = 3; i <= 22 && rest >> field; ++i) {
    }
    return field;
}

void read_lo(MetricsSample& s) {
    const auto all = lo::read_all_stats();
    uint64_t open_smcd = 0, open_tcp = 0;
    for (const lo::ProcessStats& p : all) {
        SeriesValues& v = s.counters[fmt::format("lo/{}/{}", p.pid, start_time(p.pid))];
        const auto& c = p.counters;  // in the order of lo::Counters
        v[{"shunt_connections_total", R"(mode="smcd",role="client")"}] += c[0];
        v[{"shunt_connections_total", R"(mode="smcd",role="server")"}] += c[1];
        v[{"shunt_connections_total", R"(mode="tcp",role="client")"}] += c[2];
        v[{"shunt_connections_total", R"(mode="tcp",role="server")"}] += c[3];
        v[{"shunt_handshake_errors_total", ""}] += c[4];
        v[{"shunt_transmit_bytes_total", ""}] += c[5];
        v[{"shunt_receive_bytes_total", ""}] += c[6];
        v[{"shunt_transmit_calls_total", ""}] += c[7];
        v[{"shunt_receive_calls_total", ""}] += c[8];
        v[{"shunt_transmit_buffer_full_total", ""}] += c[9];
        v[{"shunt_wakeups_sent_total", ""}] += c[10];
        for (size_t i = 0; i < p.fallback_codes.size(); ++i) {
            const auto [code, server] = p.fallback_codes[i];
            v[{"shunt_fallbacks_total", fmt::format(R"(reason="{}",code="0x{:08x}",role="{}")", escape(decline_name(code)),
                                                    code, server ? "server" : "client")}] += p.fallback_counts[i];
        }
        for (const lo::ConnSnapshot& conn : p.conns) ++(conn.smcd ? open_smcd : open_tcp);
    }
    s.gauges[{"shunt_processes", ""}] = all.size();
    s.gauges[{"shunt_open_connections", R"(mode="smcd")"}] = open_smcd;
    s.gauges[{"shunt_open_connections", R"(mode="tcp")"}] = open_tcp;
}

std::string fetch(const std::string& path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) return {};
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return {};
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
}

// Every rds node on the host, in every network namespace (the node label carries the
// namespace: test hosts in different namespaces may share an address).
void read_rds(MetricsSample& s) {
    // Where nodes publish (rds/info.cpp), read without creating anything.
    const std::string d = lo::Rundir::default_path() + "/rds";
    DIR* dp = ::opendir(d.c_str());
    uint64_t nodes = 0;
    if (dp) {
        while (dirent* de = ::readdir(dp)) {
            const std::string name = de->d_name;
            if (name.size() < 5 || name.substr(name.size() - 5) != ".sock") continue;
            const std::string doc = fetch(d + "/" + name);
            const auto j = nlohmann::json::parse(doc, nullptr, false);
            if (j.is_discarded() || !j.is_object()) continue;  // a node that died or is starting
            ++nodes;
            const std::string node = escape(name.substr(0, name.size() - 5));
            SeriesValues& v = s.counters[fmt::format("rds/{}/{}", node, j.value("incarnation", ""))];
            const std::string label = fmt::format(R"(node="{}")", node);
            std::map<std::string, uint64_t> states;
            for (const auto& p : j.value("peers", nlohmann::json::array())) {
                for (const auto& l : p.value("lane", nlohmann::json::array())) {
                    v[{"shunt_rds_retransmits_total", label}] += l.value("retransmits", uint64_t{0});
                    v[{"shunt_rds_lane_failures_total", label}] += l.value("failures", uint64_t{0});
                    v[{"shunt_rds_transmit_bytes_total", label}] += l.value("tx_bytes", uint64_t{0});
                    v[{"shunt_rds_receive_bytes_total", label}] += l.value("rx_bytes", uint64_t{0});
                    ++states[l.value("state", "unknown")];
                }
            }
            for (const auto& [state, n] : states)
                s.gauges[{"shunt_rds_lanes", fmt::format(R"({},state="{}")", label, escape(state))}] += n;
        }
        ::closedir(dp);
    }
    s.gauges[{"shunt_rds_nodes", ""}] = nodes;
}

}  // namespace

MetricsSample read_metrics_sample() {
    MetricsSample s;
    read_lo(s);
    read_rds(s);
    return s;
}

SeriesValues HostTotals::update(const MetricsSample& s) {
    for (const auto& [source, values] : last_) {
        auto now = s.counters.find(source);
        bool gone = now == s.counters.end();
        // A counter that went down means the source started again (an exec in the same
        // process): what it had counted before is retired like an exit.
        for (const auto& [key, v] : values)
            if (!gone) gone = now->second.count(key) ? now->second.at(key) < v : true;
        if (gone)
            for (const auto& [key, v] : values) retired_[key] += v;
    }
    last_ = s.counters;
    SeriesValues out = retired_;
    for (const auto& [source, values] : s.counters)
        for (const auto& [key, v] : values) out[key] += v;
    return out;
}

std::string render_prometheus(const SeriesValues& counters, const SeriesValues& gauges) {
    std::string out;
    for (const Family& f : kFamilies) {
        const SeriesValues& values = std::string_view(f.type) == "counter" ? counters : gauges;
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.type);
        bool any = false;
        for (auto it = values.lower_bound({f.name, ""}); it != values.end() && it->first.first == f.name; ++it) {
            any = true;
            if (it->first.second.empty())
                out += fmt::format("{} {}\n", f.name, it->second);
            else
                out += fmt::format("{}{{{}}} {}\n", f.name, it->first.second, it->second);
        }
        // Families with fixed series are always present, so a dashboard sees 0, not nothing.
        if (!any && f.name == std::string_view("shunt_connections_total")) {
            for (const char* mode : {"smcd", "tcp"})
                for (const char* role : {"client", "server"})
                    out += fmt::format("{}{{mode=\"{}\",role=\"{}\"}} 0\n", f.name, mode, role);
        } else if (!any && f.scalar) {
            out += fmt::format("{} 0\n", f.name);
        }
    }
    return out;
}

void print_prometheus() {
    const MetricsSample s = read_metrics_sample();
    HostTotals totals;
    fmt::print("{}", render_prometheus(totals.update(s), s.gauges));
}

}  // namespace shunt::cli
