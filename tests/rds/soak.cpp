// rds_soak: the reliability workload of rds across two hosts (network namespaces), in three
// roles driven by tests/rds/soak.sh:
//   send   N messages (sizes log-uniform 1 B .. 1 MiB, content from a seed) from S sockets to S
//          sockets of the peer (message k: socket k mod S -> socket mix(k) mod S), optionally
//          killing lanes (--reset MS) or writing malformed frames onto lanes (--inject MS); waits
//          until every message is acked or reported failed; logs what it sent and what failed
//   recv   receives on S sockets and logs each message (pair, size, checksum) in arrival order;
//          stops on SIGTERM or after --stop-after messages, closing its node gracefully first
//          so that whatever was acked is also logged
//   check  compares: for every pair, the received sequence (across receiver restarts) must be
//          exactly the sent sequence minus the messages reported failed — nothing lost, nothing
//          duplicated, nothing reordered, no byte changed, no failure both reported and delivered
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <mutex>
#include <set>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "rds/frame.hpp"
#include "shunt/rds.hpp"

namespace {

using namespace shunt::rds;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

struct Spec {
    uint32_t src, dst;
    size_t size;
};
Spec spec(uint64_t seed, uint64_t k, uint32_t sockets) {
    const uint64_t r = mix(seed ^ mix(k));
    const double u = static_cast<double>(r >> 11) / 9007199254740992.0;  // [0, 1)
    const size_t size = std::min<size_t>(kMaxMessageSize, static_cast<size_t>(std::exp2(u * 20.0 + 1e-9)));
    return {static_cast<uint32_t>(k % sockets), static_cast<uint32_t>(mix(r) % sockets), std::max<size_t>(size, 1)};
}
std::vector<uint8_t> content(uint64_t seed, uint64_t k, size_t size) {
    std::vector<uint8_t> v(size);
    uint64_t x = mix(seed * 31 + k);
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        x = mix(x);
        std::memcpy(v.data() + i, &x, 8);
    }
    x = mix(x);
    for (; i < size; ++i) v[i] = static_cast<uint8_t>(x >> (8 * (i % 8)));
    return v;
}
uint64_t checksum(std::span<const uint8_t> d) {
    uint64_t h = 0xcbf29ce484222325ULL ^ d.size();
    size_t i = 0;
    for (; i + 8 <= d.size(); i += 8) {
        uint64_t w;
        std::memcpy(&w, d.data() + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < d.size(); ++i) h = (h ^ d[i]) * 0x100000001b3ULL;
    return mix(h);
}

std::atomic<bool> g_stop{false};
extern "C" void on_term(int) { g_stop = true; }

struct Common {
    std::string ip, peer, log;
    uint32_t sockets = 16;
    uint16_t base = 7000, sbase = 8000, lane_port = kDefaultLanePort;
    uint16_t lanes = 8;
    std::string lane_ports;
};

NodeOptions node_options(const Common& c) {
    NodeOptions o;
    o.ip = c.ip;
    o.lane_port = c.lane_port;
    o.lanes = c.lanes;
    o.lane_ports = c.lane_ports;
    o.sndbuf = 8 << 20;
    return o;
}

int do_send(const Common& c, uint64_t count, uint64_t seed, int reset_ms, int inject_ms, int timeout_s) {
    auto node = Node::start(node_options(c));
    const Endpoint peer = *Endpoint::parse(c.peer, 0);
    struct Sent {
        uint64_t k;
        Spec s;
        uint64_t sum;
    };
    std::vector<std::vector<Sent>> sent(c.sockets);
    std::vector<std::set<uint64_t>> failed_ids(c.sockets);
    std::vector<std::unique_ptr<Socket>> socks;
    for (uint32_t i = 0; i < c.sockets; ++i) socks.push_back(node->bind(static_cast<uint16_t>(c.sbase + i)));
    std::atomic<bool> done{false};
    std::atomic<uint64_t> bytes{0}, resets{0}, injects{0};
    std::string error;
    std::mutex mu;
    auto collect = [&](uint32_t i) {
        Event e;
        while (socks[i]->recv(e) == 0)
            if (e.type == Event::Type::SendFailed) failed_ids[i].insert(e.id);
    };
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (uint32_t i = 0; i < c.sockets; ++i)
        threads.emplace_back([&, i] {
            Socket& s = *socks[i];
            for (uint64_t k = i; k < count; k += c.sockets) {
                const Spec sp = spec(seed, k, c.sockets);
                const auto data = content(seed, k, sp.size);
                sent[i].push_back({k, sp, checksum(data)});
                while (true) {
                    s.set_nonblocking(true);
                    collect(i);
                    s.set_nonblocking(false);
                    s.set_timeout(100ms);
                    const int err = s.send({peer.ip, static_cast<uint16_t>(c.base + sp.dst)}, data);
                    if (err == 0) break;
                    if (err == ETIMEDOUT) continue;
                    std::lock_guard lk(mu);
                    error = fmt::format("send: {}", std::strerror(err));
                    return;
                }
                bytes += sp.size;
            }
        });
    std::thread chaos([&] {
        std::mt19937 rng(static_cast<uint32_t>(seed));
        const int every = reset_ms > 0 ? reset_ms : inject_ms;
        if (every <= 0) return;
        while (!done) {
            std::this_thread::sleep_for(std::chrono::milliseconds(every));
            if (reset_ms > 0 && node->reset_lane(peer.ip)) ++resets;
            if (inject_ms > 0) {
                std::array<uint8_t, kHeaderLen> bad{};
                bad[32] = 0x81;
                bad[33] = static_cast<uint8_t>(1 + rng() % 3);
                bad[34] = 0x42;  // an extension type nobody can size
                const uint16_t lane = static_cast<uint16_t>(rng() % c.lanes);
                for (int t = 0; t < 200 && !done; ++t) {
                    if (node->inject(peer.ip, lane, bad)) {
                        ++injects;
                        break;
                    }
                    std::this_thread::sleep_for(1ms);
                }
            }
        }
    });
    for (auto& t : threads) t.join();
    // Everything sent: wait until each message is acked or reported failed.
    const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
    bool settled = false;
    while (Clock::now() < deadline && error.empty()) {
        const NodeInfo info = node->info();
        size_t unacked = 0;
        bool ready = !info.peers.empty();
        for (const auto& p : info.peers) {
            ready = ready && p.lanes > 0;
            for (const auto& l : p.lane) unacked += l.unacked;
        }
        if (ready && unacked == 0) {
            settled = true;
            break;
        }
        std::this_thread::sleep_for(20ms);
    }
    done = true;
    chaos.join();
    std::this_thread::sleep_for(50ms);
    for (uint32_t i = 0; i < c.sockets; ++i) {
        socks[i]->set_nonblocking(true);
        collect(i);
    }
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    const NodeInfo info = node->info();
    uint64_t retrans = 0, restarts = 0, failures = 0;
    for (const auto& p : info.peers) {
        restarts += p.restarts;
        for (const auto& l : p.lane) retrans += l.retransmits, failures += l.failures;
    }
    std::ofstream out(c.log);
    uint64_t nfailed = 0;
    for (uint32_t i = 0; i < c.sockets; ++i) {
        for (const Sent& s : sent[i]) out << "S " << s.k << ' ' << s.s.src << ' ' << s.s.dst << ' ' << s.s.size << ' ' << s.sum << '\n';
        for (uint64_t id : failed_ids[i]) {
            if (id == 0 || id > sent[i].size()) {
                error = fmt::format("failure report for unknown id {} on socket {}", id, i);
                continue;
            }
            out << "F " << sent[i][id - 1].k << '\n';  // ids count a socket's sends from 1
            ++nfailed;
        }
    }
    fmt::print("{{\"sent\": {}, \"failed\": {}, \"bytes\": {}, \"seconds\": {:.2f}, \"mb_per_s\": {:.1f}, \"restarts\": {}, "
               "\"lane_failures\": {}, \"retransmits\": {}, \"resets\": {}, \"injected\": {}, \"settled\": {}}}\n",
               count, nfailed, bytes.load(), secs, bytes / secs / 1e6, restarts, failures, retrans, resets.load(), injects.load(),
               settled);
    if (!error.empty()) {
        fmt::print(stderr, "rds_soak send: {}\n", error);
        return 1;
    }
    if (!settled) {
        fmt::print(stderr, "rds_soak send: messages neither acked nor failed after {} s\n", timeout_s);
        return 1;
    }
    return 0;
}

int do_recv(const Common& c, uint64_t stop_after) {
    std::signal(SIGTERM, on_term);
    std::signal(SIGINT, on_term);
    auto node = Node::start(node_options(c));
    struct Got {
        uint32_t src;
        size_t size;
        uint64_t sum;
    };
    std::vector<std::vector<Got>> got(c.sockets);
    std::vector<std::unique_ptr<Socket>> socks;
    for (uint32_t i = 0; i < c.sockets; ++i) socks.push_back(node->bind(static_cast<uint16_t>(c.base + i)));
    std::atomic<uint64_t> total{0};
    auto take = [&](uint32_t i, const Event& e) {
        if (e.type != Event::Type::Message) return;
        got[i].push_back({static_cast<uint32_t>(e.peer.port - c.sbase), e.data().size(), checksum(e.data())});
        ++total;
    };
    std::atomic<bool> quit{false};
    std::vector<std::thread> threads;
    for (uint32_t i = 0; i < c.sockets; ++i)
        threads.emplace_back([&, i] {
            socks[i]->set_timeout(50ms);
            while (!quit) {
                Event e;
                if (socks[i]->recv(e) == 0) take(i, e);
            }
        });
    std::printf("ready\n");
    std::fflush(stdout);
    while (!g_stop && !(stop_after && total >= stop_after)) std::this_thread::sleep_for(2ms);
    // Stop taking frames and flush the acks owed first: then what was acked is what we log.
    node->close();
    quit = true;
    for (auto& t : threads) t.join();
    for (uint32_t i = 0; i < c.sockets; ++i) {
        socks[i]->set_nonblocking(true);
        for (Event e; socks[i]->recv(e) == 0;) take(i, e);
    }
    std::ofstream out(c.log);
    for (uint32_t i = 0; i < c.sockets; ++i)
        for (const Got& g : got[i]) out << "R " << g.src << ' ' << i << ' ' << g.size << ' ' << g.sum << '\n';
    fmt::print(stderr, "rds_soak recv: {} messages logged\n", total.load());
    return 0;
}

int do_check(const std::string& sent_log, const std::vector<std::string>& recv_logs) {
    struct Item {
        uint64_t k;
        size_t size;
        uint64_t sum;
    };
    std::map<std::pair<uint32_t, uint32_t>, std::vector<Item>> sent;
    std::set<uint64_t> failed;
    uint64_t nsent = 0, bytes = 0;
    {
        std::ifstream in(sent_log);
        std::string tag;
        while (in >> tag) {
            if (tag == "S") {
                Item it;
                uint32_t src, dst;
                in >> it.k >> src >> dst >> it.size >> it.sum;
                sent[{src, dst}].push_back(it);
                ++nsent;
                bytes += it.size;
            } else {
                uint64_t k;
                in >> k;
                if (!failed.insert(k).second) {
                    fmt::print("FAIL: message {} reported failed twice\n", k);
                    return 1;
                }
            }
        }
    }
    std::map<std::pair<uint32_t, uint32_t>, std::vector<std::pair<size_t, uint64_t>>> got;
    uint64_t ngot = 0;
    for (const auto& f : recv_logs) {
        std::ifstream in(f);
        std::string tag;
        uint32_t src, dst;
        size_t size;
        uint64_t sum;
        while (in >> tag >> src >> dst >> size >> sum) {
            got[{src, dst}].emplace_back(size, sum);
            ++ngot;
        }
    }
    int bad = 0;
    for (auto& [pair, items] : sent) {
        std::vector<Item> want;
        for (const Item& it : items)
            if (!failed.count(it.k)) want.push_back(it);
        const auto& g = got[pair];
        size_t i = 0;
        for (; i < std::min(want.size(), g.size()); ++i)
            if (want[i].size != g[i].first || want[i].sum != g[i].second) {
                fmt::print("FAIL: pair {}->{}: message #{} received is not message {} (size {} vs {}, checksum {})\n", pair.first,
                           pair.second, i, want[i].k, g[i].first, want[i].size, g[i].second == want[i].sum ? "same" : "differs");
                ++bad;
                break;
            }
        if (i == std::min(want.size(), g.size()) && want.size() != g.size()) {
            fmt::print("FAIL: pair {}->{}: {} messages expected (sent minus failed), {} received\n", pair.first, pair.second,
                       want.size(), g.size());
            ++bad;
        }
    }
    for (const auto& [pair, g] : got)
        if (!sent.count(pair)) {
            fmt::print("FAIL: {} messages on pair {}->{} that nothing sent\n", g.size(), pair.first, pair.second);
            ++bad;
        }
    fmt::print("{}: {} sent ({:.2f} GB), {} delivered, {} reported failed, {} pairs\n", bad ? "FAIL" : "ok", nsent, bytes / 1e9,
               ngot, failed.size(), sent.size());
    if (!bad && ngot + failed.size() != nsent) {
        fmt::print("FAIL: delivered + failed = {} != sent {}\n", ngot + failed.size(), nsent);
        return 1;
    }
    return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"rds_soak: the rds reliability workload"};
    app.require_subcommand(1);
    Common c;
    uint64_t count = 100000, seed = 1, stop_after = 0;
    int reset_ms = 0, inject_ms = 0, timeout_s = 300;
    std::string sent_log;
    std::vector<std::string> recv_logs;
    auto common = [&](CLI::App* s) {
        s->add_option("--ip", c.ip)->required();
        s->add_option("--sockets", c.sockets);
        s->add_option("--base", c.base, "first receiving port");
        s->add_option("--sbase", c.sbase, "first sending port");
        s->add_option("--lanes", c.lanes);
        s->add_option("--lane-port", c.lane_port);
        s->add_option("--lane-ports", c.lane_ports);
        s->add_option("--log", c.log)->required();
    };
    auto* send = app.add_subcommand("send");
    common(send);
    send->add_option("--to", c.peer)->required();
    send->add_option("--count", count);
    send->add_option("--seed", seed);
    send->add_option("--reset", reset_ms);
    send->add_option("--inject", inject_ms);
    send->add_option("--timeout", timeout_s);
    auto* recv = app.add_subcommand("recv");
    common(recv);
    recv->add_option("--stop-after", stop_after);
    auto* check = app.add_subcommand("check");
    check->add_option("--sent", sent_log)->required();
    check->add_option("--recv", recv_logs)->required();
    CLI11_PARSE(app, argc, argv);
    try {
        if (*send) return do_send(c, count, seed, reset_ms, inject_ms, timeout_s);
        if (*recv) return do_recv(c, stop_after);
        return do_check(sent_log, recv_logs);
    } catch (const std::exception& e) {
        fmt::print(stderr, "rds_soak: {}\n", e.what());
        return 1;
    }
}
