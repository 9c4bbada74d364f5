// `shunt stat`: live connections on this host, as smcss lists kernel SMC sockets.
// `shunt stats`: counters as `smcd stats` shows them, summed over the processes using shunt.
#include <map>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/metrics.hpp"
#include "lo/connection.hpp"
#include "lo/stats_region.hpp"
#include "shunt/decline.hpp"

namespace shunt::cli {
namespace {

using lo::ConnSnapshot;
using lo::ProcessStats;

std::string mode_of(const ConnSnapshot& c) {
    if (c.smcd) return "SMCD";
    std::string m = fmt::format("TCP 0x{:08x} {}", c.reason, decline_name(c.reason));
    if (c.peer_reason) m += fmt::format(" (peer 0x{:08x} {})", c.peer_reason, decline_name(c.peer_reason));
    return m;
}

std::string cursor(const Cursor& c) { return fmt::format("{:04x}:{:08x}", c.wrap, c.count); }

const char* state_of(const ConnSnapshot& c) {
    return lo::to_string(lo::derive_state(c.smcd, c.closed, c.sent_flags, c.got_flags, c.peer_died));
}

void print_stat(bool details, bool json) {
    const auto all = lo::read_all_stats();
    if (json) {
        nlohmann::json out = nlohmann::json::array();
        for (const ProcessStats& p : all)
            for (const ConnSnapshot& c : p.conns)
                out.push_back({{"pid", p.pid}, {"uid", p.uid}, {"command", p.comm}, {"state", state_of(c)},
                               {"role", c.server ? "server" : "client"}, {"local", c.local.to_string()},
                               {"peer", c.peer.to_string()}, {"mode", c.smcd ? "SMCD" : "TCP"},
                               {"fallback_reason", c.reason}, {"fallback_name", c.reason ? decline_name(c.reason) : ""},
                               {"peer_reason", c.peer_reason}, {"rcvbuf", c.rx_ring}, {"sndbuf", c.tx_ring},
                               {"rx_consumed", cursor(c.rx_consumed)}, {"rx_produced", cursor(c.rx_peer_produced)},
                               {"tx_produced", cursor(c.tx_produced)}, {"tx_consumed", cursor(c.tx_peer_consumed)},
                               {"token", fmt::format("0x{:016x}", c.local_token)},
                               {"peer_token", fmt::format("0x{:016x}", c.peer_token)}});
        fmt::print("{}\n", out.dump(2));
        return;
    }
    fmt::print("{:<13} {:>5} {:>7} {:<12} {:<24} {:<24} {}", "State", "UID", "PID", "Command", "Local Address",
               "Peer Address", "Mode");
    if (details)
        fmt::print("  {:>7} {:>7} {:>13} {:>13} {:>13} {:>13}", "Rcvbuf", "Sndbuf", "rxprod-Cursor", "rxcons-Cursor",
                   "txprod-Cursor", "txcons-Cursor");
    fmt::print("\n");
    for (const ProcessStats& p : all) {
        for (const ConnSnapshot& c : p.conns) {
            fmt::print("{:<13} {:>5} {:>7} {:<12} {:<24} {:<24} {}", state_of(c), p.uid, p.pid, p.comm.substr(0, 12),
                       c.local.to_string(), c.peer.to_string(), mode_of(c));
            if (details && c.smcd)
                fmt::print("  {:>7} {:>7} {:>13} {:>13} {:>13} {:>13}", c.rx_ring, c.tx_ring, cursor(c.rx_peer_produced),
                           cursor(c.rx_consumed), cursor(c.tx_produced), cursor(c.tx_peer_consumed));
            fmt::print("\n");
        }
    }
}

void print_stats(bool json) {
    const auto all = lo::read_all_stats();
    uint64_t sum[11] = {};
    std::map<std::pair<uint32_t, bool>, uint64_t> reasons;
    size_t live = 0;
    for (const ProcessStats& p : all) {
        for (size_t i = 0; i < 11; ++i) sum[i] += p.counters[i];
        for (size_t i = 0; i < p.fallback_codes.size(); ++i) reasons[p.fallback_codes[i]] += p.fallback_counts[i];
        live += p.conns.size();
    }
    const auto& [client_smcd, server_smcd, client_fb, server_fb, hs_err, tx_bytes, rx_bytes, tx_calls, rx_calls,
                 tx_full, wakeups] = sum;
    const uint64_t total = client_smcd + server_smcd + client_fb + server_fb;
    if (json) {
        nlohmann::json fb = nlohmann::json::array();
        for (const auto& [key, n] : reasons)
            fb.push_back({{"code", fmt::format("0x{:08x}", key.first)}, {"name", decline_name(key.first)},
                          {"side", key.second ? "server" : "client"}, {"count", n}});
        nlohmann::json j{{"processes", all.size()},
                         {"live_connections", live},
                         {"connections_total", total},
                         {"smc_connections", {{"client", client_smcd}, {"server", server_smcd}}},
                         {"tcp_fallback", {{"client", client_fb}, {"server", server_fb}}},
                         {"fallback_reasons", fb},
                         {"handshake_errors", hs_err},
                         {"rx", {{"bytes", rx_bytes}, {"requests", rx_calls}}},
                         {"tx", {{"bytes", tx_bytes}, {"requests", tx_calls}, {"buffer_full", tx_full}}},
                         {"wakeups_sent", wakeups}};
        fmt::print("{}\n", j.dump(2));
        return;
    }
    fmt::print("shunt lo: {} process(es) with shunt connections, {} connection(s) open\n\n", all.size(), live);
    fmt::print("Connections Summary\n");
    fmt::print("  Total connections handled  {:>14}\n", total);
    fmt::print("  SMC connections            {:>14}  (client {}, server {})\n", client_smcd + server_smcd, client_smcd,
               server_smcd);
    fmt::print("  Handshake errors           {:>14}\n", hs_err);
    fmt::print("  Avg requests per SMC conn  {:>14.1f}\n",
               client_smcd + server_smcd ? double(tx_calls + rx_calls) / double(client_smcd + server_smcd) : 0.0);
    fmt::print("  TCP fallback               {:>14}  (client {}, server {})\n", client_fb + server_fb, client_fb, server_fb);
    for (const auto& [key, n] : reasons)
        fmt::print("    {:<6} 0x{:08x} {:<12} {:>8}\n", key.second ? "server" : "client", key.first,
                   decline_name(key.first), n);
    fmt::print("\nRX Stats\n  Data received (Bytes)      {:>14}\n  Total requests             {:>14}\n", rx_bytes,
               rx_calls);
    fmt::print("\nTX Stats\n  Data transmitted (Bytes)   {:>14}\n  Total requests             {:>14}\n", tx_bytes,
               tx_calls);
    fmt::print("  Buffer full                {:>14}\n  Wake-ups sent              {:>14}\n", tx_full, wakeups);
}

}  // namespace

void add_stat_commands(CLI::App& app) {
    auto details = std::make_shared<bool>(false);
    auto json = std::make_shared<bool>(false);
    auto* stat = app.add_subcommand("stat", "live shunt connections on this host (like smcss)");
    stat->add_flag("-d,--details", *details, "buffer sizes and cursors");
    stat->add_flag("--json", *json, "JSON output");
    stat->callback([details, json] { print_stat(*details, *json); });
    auto json2 = std::make_shared<bool>(false);
    auto prometheus = std::make_shared<bool>(false);
    auto* stats = app.add_subcommand("stats", "shunt counters on this host (like smcd stats)");
    auto* j = stats->add_flag("--json", *json2, "JSON output");
    stats->add_flag("--prometheus", *prometheus, "Prometheus text exposition format (see also `shunt exporter`)")->excludes(j);
    stats->callback([json2, prometheus] {
        if (*prometheus)
            print_prometheus();
        else
            print_stats(*json2);
    });
}

}  // namespace shunt::cli
