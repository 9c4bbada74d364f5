// `shunt rds stress`: rds-stress's model and output on shunt rds. A passive side
// (`-r LOCAL`) waits on a TCP control port (-p, default 4000) for an active side (`-r LOCAL -s
// PEER`), which sends its options; each side then starts -t tasks, task i bound to rds port
// p+1+i, each keeping -d requests of -q bytes in flight to every peer task and answering each
// request with an ack of -a bytes. Requests and acks carry a per-(task, peer task) sequence that
// is checked on arrival, so loss, duplication or reordering aborts the run, as in rds-stress.
// Tasks are threads sharing one node (one rds stack per host), not processes.
//
// Additions: --lanes (lanes per peer), --reset MS (kill a random lane every MS ms, the failure
// rds-stress --reset injects once), --stream BYTES (one more socket streams BYTES messages
// one-way during the run, to measure head-of-line blocking on the request/ack tasks), --json
// (summary as JSON, with rtt percentiles, for bench scripts). CPU % is this process's CPU time
// (user + system) over wall time, 100 = one core; rds-stress measures it with soak tasks (-c).
// CPU per request ("cpu us/r", cpu_us_per_req) is a side's CPU time over the requests completed
// (acked) in the run by both sides together, so it compares directly between one-way and
// two-way runs; the summary gives it for both sides.
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/rds_stress.hpp"
#include "core/inet.hpp"
#include "core/tcp.hpp"
#include "shunt/rds.hpp"

namespace shunt::cli {
namespace {

using namespace shunt::rds;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Params {
    uint32_t tasks = 1, depth = 1;
    size_t req = 1024, ack = 64;
    double seconds = 0;
    bool one_way = false;
    uint16_t lanes = 8;
    size_t stream = 0;
    nlohmann::json to_json() const {
        return {{"tasks", tasks}, {"depth", depth}, {"req", req}, {"ack", ack}, {"seconds", seconds},
                {"one_way", one_way}, {"lanes", lanes}, {"stream", stream}};
    }
    static Params from_json(const nlohmann::json& j) {
        Params p;
        p.tasks = j.at("tasks");
        p.depth = j.at("depth");
        p.req = j.at("req");
        p.ack = j.at("ack");
        p.seconds = j.at("seconds");
        p.one_way = j.at("one_way");
        p.lanes = j.at("lanes");
        p.stream = j.at("stream");
        return p;
    }
};

struct Options {
    std::string local, peer;
    uint16_t port = 4000;
    std::string req = "1024", ack = "64", stream;
    Params p;
    uint16_t lane_port = kDefaultLanePort;
    std::string lane_ports;
    uint32_t peer_queues = 0;
    bool hash = false;
    int reset_ms = 0;
    bool json = false, summary_only = false;
};

size_t parse_size(const std::string& s) {
    size_t pos = 0;
    const unsigned long long v = std::stoull(s, &pos);
    size_t mult = 1;
    if (pos < s.size()) {
        switch (s[pos]) {
            case 'k': case 'K': mult = 1 << 10; break;
            case 'm': case 'M': mult = 1 << 20; break;
            case 'g': case 'G': mult = size_t{1} << 30; break;
            default: throw std::invalid_argument("bad size " + s);
        }
        if (pos + 1 != s.size()) throw std::invalid_argument("bad size " + s);
    }
    return static_cast<size_t>(v) * mult;
}

// Wire header of a stress message (host byte order: both ends run this program).
struct Header {
    uint8_t type;  // 1 request, 2 ack, 3 stream
    uint8_t pad[3];
    uint32_t task;
    uint64_t seq;
    int64_t sent_ns;  // request: when it was sent; ack: the request's
};
constexpr size_t kHeader = sizeof(Header);

int64_t now_ns() { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(); }

double cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Counters {
    std::atomic<uint64_t> tx_req{0}, rx_req{0}, rx_ack{0}, bytes{0}, rtt_ns{0}, rtt_n{0}, send_ns{0}, send_n{0}, failed{0}, stream_bytes{0};
};

struct Task {
    uint32_t index = 0;
    std::unique_ptr<Socket> sock;
    std::vector<Endpoint> peers;
    std::map<uint16_t, uint64_t> next_tx, expect_req, expect_ack;
    std::deque<std::pair<Endpoint, std::vector<uint8_t>>> out;
    std::vector<uint32_t> rtt_us;  // samples for percentiles
    std::string error;
    // Sent messages' buffers, reused (as rds-stress does); requests and acks apart, so a reused
    // buffer already has its size.
    std::vector<std::vector<uint8_t>> spare[2];
};

std::vector<uint8_t> make_msg(uint8_t type, uint32_t task, uint64_t seq, int64_t ts, size_t size,
                              std::vector<std::vector<uint8_t>>* spare = nullptr) {
    std::vector<uint8_t> v;
    if (spare && !spare->empty()) {
        v = std::move(spare->back());
        spare->pop_back();
    }
    v.resize(std::max(size, kHeader));
    Header h{type, {0, 0, 0}, task, seq, ts};
    std::memcpy(v.data(), &h, kHeader);
    return v;
}

void run_task(Task& t, const Params& p, bool send_requests, Counters& c, const std::atomic<bool>& stop) {
    t.sock->set_nonblocking(true);
    if (send_requests)
        for (const Endpoint& e : t.peers)
            for (uint32_t d = 0; d < p.depth; ++d)
                t.out.emplace_back(e, make_msg(1, t.index, ++t.next_tx[e.port], 0, p.req));
    while (!stop) {
        bool progress = false;
        while (!t.out.empty()) {
            auto& [dest, msg] = t.out.front();
            Header h;
            std::memcpy(&h, msg.data(), kHeader);
            const int64_t t0 = now_ns();
            if (h.type == 1) {
                h.sent_ns = t0;
                std::memcpy(msg.data(), &h, kHeader);
            }
            const int err = t.sock->send(dest, msg);
            if (err == EAGAIN || err == ENOBUFS) break;
            if (err) {
                t.error = fmt::format("send: {}", std::strerror(err));
                return;
            }
            c.send_ns += static_cast<uint64_t>(now_ns() - t0);
            ++c.send_n;
            if (h.type == 1) ++c.tx_req;
            c.bytes += msg.size();
            if (h.type == 1 || h.type == 2) t.spare[h.type - 1].push_back(std::move(msg));
            t.out.pop_front();
            progress = true;
        }
        for (int i = 0; i < 256; ++i) {
            Event e;
            if (t.sock->recv(e) != 0) break;
            progress = true;
            if (e.type == Event::Type::SendFailed) {
                ++c.failed;
                continue;
            }
            if (e.data().size() < kHeader) {
                t.error = "short message";
                return;
            }
            Header h;
            std::memcpy(&h, e.data().data(), kHeader);
            c.bytes += e.data().size();
            if (h.type == 1) {
                uint64_t& want = t.expect_req[e.peer.port];
                if (h.seq != ++want) {
                    t.error = fmt::format("request from port {} has sequence {}, expected {}", e.peer.port, h.seq, want);
                    return;
                }
                ++c.rx_req;
                t.out.emplace_back(e.peer, make_msg(2, t.index, h.seq, h.sent_ns, p.ack, &t.spare[1]));
            } else if (h.type == 2) {
                uint64_t& want = t.expect_ack[e.peer.port];
                if (h.seq != ++want) {
                    t.error = fmt::format("ack from port {} has sequence {}, expected {}", e.peer.port, h.seq, want);
                    return;
                }
                ++c.rx_ack;
                const int64_t rtt = now_ns() - h.sent_ns;
                c.rtt_ns += static_cast<uint64_t>(rtt);
                ++c.rtt_n;
                if (t.rtt_us.size() < (4u << 20)) t.rtt_us.push_back(static_cast<uint32_t>(rtt / 1000));
                if (send_requests) t.out.emplace_back(e.peer, make_msg(1, t.index, ++t.next_tx[e.peer.port], 0, p.req, &t.spare[0]));
            }
        }
        if (!progress) {
            pollfd pf{t.sock->fd(), POLLIN, 0};
            ::poll(&pf, 1, 10);
        }
    }
}

// The extra streaming socket: blocking sends of `size` bytes, as fast as credit allows.
void run_stream(Socket& s, Endpoint to, size_t size, Counters& c, const std::atomic<bool>& stop) {
    s.set_timeout(50ms);
    const auto msg = make_msg(3, 0, 0, 0, size);
    while (!stop) {
        const int err = s.send(to, msg);
        if (err == 0) c.stream_bytes += size;
        Event e;
        s.set_nonblocking(true);
        while (s.recv(e) == 0) {
        }
        s.set_nonblocking(false);
    }
}
void run_sink(Socket& s, Counters& c, const std::atomic<bool>& stop) {
    s.set_timeout(50ms);
    while (!stop) {
        Event e;
        if (s.recv(e) == 0) c.stream_bytes += e.data().size();
    }
}

uint32_t percentile(std::vector<uint32_t>& v, double q) {
    if (v.empty()) return 0;
    const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
    std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
    return v[k];
}

std::string line_of(const std::string& s) { return s + "\n"; }

std::string read_line(int fd) {
    std::string s;
    char ch;
    while (::read(fd, &ch, 1) == 1 && ch != '\n') s.push_back(ch);
    return s;
}

int run(Options& o) {
    const bool active = !o.peer.empty();
    UniqueFd ctl;
    Params p = o.p;
    if (active) {
        p.req = parse_size(o.req);
        p.ack = parse_size(o.ack);
        p.stream = o.stream.empty() ? 0 : parse_size(o.stream);
        if (p.req < kHeader || p.ack < kHeader) throw std::invalid_argument(fmt::format("-q and -a must be at least {} bytes", kHeader));
        if (p.req > kMaxMessageSize || p.ack > kMaxMessageSize || p.stream > kMaxMessageSize)
            throw std::invalid_argument("messages are at most 1 MiB");
        ctl = tcp_connect(o.peer, o.port);
        const std::string j = line_of(p.to_json().dump());
        write_all(ctl.get(), j.data(), j.size());
    } else {
        UniqueFd l = tcp_listen(o.local, o.port);
        ctl = tcp_accept(l.get());
        p = Params::from_json(nlohmann::json::parse(read_line(ctl.get())));
    }
    NodeOptions no;
    no.ip = o.local;
    no.lane_port = o.lane_port;
    no.lanes = p.lanes;
    no.lane_ports = o.lane_ports;
    no.hash_placement = o.hash;
    no.peer_queues = o.peer_queues;
    auto node = Node::start(no);
    const Endpoint peer_ip = *Endpoint::parse(active ? o.peer : peer_endpoint(ctl.get())->ip_string(), 0);
    std::vector<Task> tasks(p.tasks);
    for (uint32_t i = 0; i < p.tasks; ++i) {
        tasks[i].index = i;
        tasks[i].sock = node->bind(static_cast<uint16_t>(o.port + 1 + i));
        for (uint32_t j = 0; j < p.tasks; ++j) tasks[i].peers.push_back({peer_ip.ip, static_cast<uint16_t>(o.port + 1 + j)});
    }
    std::unique_ptr<Socket> stream_sock;
    if (p.stream) stream_sock = node->bind(static_cast<uint16_t>(o.port + 1 + p.tasks));
    // Both sides bound: go.
    if (active) {
        if (read_line(ctl.get()) != "ready") throw std::runtime_error("passive side did not get ready");
    } else {
        const std::string r = line_of("ready");
        write_all(ctl.get(), r.data(), r.size());
    }
    Counters c;
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    const bool send_requests = active || !p.one_way;
    for (Task& t : tasks) threads.emplace_back([&, tp = &t] { run_task(*tp, p, send_requests, c, stop); });
    if (stream_sock) {
        if (active)
            threads.emplace_back([&] { run_stream(*stream_sock, {peer_ip.ip, stream_sock->local().port}, p.stream, c, stop); });
        else
            threads.emplace_back([&] { run_sink(*stream_sock, c, stop); });
    }
    std::atomic<uint64_t> resets{0};
    if (o.reset_ms > 0)
        threads.emplace_back([&] {
            while (!stop) {
                std::this_thread::sleep_for(std::chrono::milliseconds(o.reset_ms));
                if (node->reset_lane(peer_ip.ip)) ++resets;
            }
        });

    const auto start = Clock::now();
    const double cpu0 = cpu_seconds();
    if (active && !o.summary_only && !o.json)
        fmt::print("{:>4} {:>8} {:>8} {:>10} {:>8} {:>8} {:>8} {:>8} {:>6} {:>9}\n", "tsks", "tx/s", "rx/s", "tx+rx K/s", "mbi K/s",
                   "mbo K/s", "tx us/c", "rtt us", "cpu %", "cpu us/r");
    uint64_t l_tx = 0, l_rx = 0, l_bytes = 0, l_rtt = 0, l_rttn = 0, l_sns = 0, l_sn = 0, l_done = 0;
    double l_cpu = cpu0;
    auto last = start;
    bool failed_task = false;
    while (true) {
        if (active) {
            std::this_thread::sleep_for(1s);
            if (p.seconds > 0 && Clock::now() - start >= std::chrono::duration<double>(p.seconds)) break;
        } else {
            pollfd pf{ctl.get(), POLLIN, 1000};
            if (::poll(&pf, 1, 1000) > 0) break;  // "stop" or EOF
        }
        for (const Task& t : tasks) failed_task = failed_task || !t.error.empty();
        if (failed_task) break;
        const auto now = Clock::now();
        const double dt = std::chrono::duration<double>(now - last).count();
        const double cpu = cpu_seconds();
        const uint64_t tx = c.tx_req, rx = c.rx_req, b = c.bytes, rtt = c.rtt_ns, rn = c.rtt_n, sns = c.send_ns, sn = c.send_n;
        // Requests completed by both sides: ours (acks received) and the peer's (its requests
        // we received; each is acked at once).
        const uint64_t done = c.rx_ack + (p.one_way ? 0 : c.rx_req.load());
        if (active && !o.summary_only && !o.json)
            fmt::print("{:>4} {:>8.0f} {:>8.0f} {:>10.0f} {:>8} {:>8} {:>8.2f} {:>8.2f} {:>6.1f} {:>9.1f}\n", tasks.size(), (tx - l_tx) / dt,
                       (rx - l_rx) / dt, (b - l_bytes) / dt / 1024, 0, 0, sn > l_sn ? (sns - l_sns) / 1e3 / (sn - l_sn) : 0.0,
                       rn > l_rttn ? (rtt - l_rtt) / 1e3 / (rn - l_rttn) : 0.0, (cpu - l_cpu) / dt * 100,
                       done > l_done ? (cpu - l_cpu) * 1e6 / static_cast<double>(done - l_done) : 0.0);
        std::fflush(stdout);
        l_tx = tx, l_rx = rx, l_bytes = b, l_rtt = rtt, l_rttn = rn, l_sns = sns, l_sn = sn, l_cpu = cpu, l_done = done, last = now;
    }
    stop = true;
    for (auto& th : threads) th.join();
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu_s = cpu_seconds() - cpu0;
    const double cpu = cpu_s / secs * 100;
    std::vector<uint32_t> rtts;
    std::string error;
    for (Task& t : tasks) {
        rtts.insert(rtts.end(), t.rtt_us.begin(), t.rtt_us.end());
        if (!t.error.empty() && error.empty()) error = fmt::format("task {}: {}", t.index, t.error);
    }
    nlohmann::json summary{{"tasks", p.tasks}, {"depth", p.depth}, {"req", p.req}, {"ack", p.ack}, {"lanes", p.lanes},
                           {"seconds", secs}, {"tx_per_s", c.tx_req / secs}, {"rx_per_s", c.rx_req / secs},
                           {"completed_per_s", c.rx_ack / secs}, {"mb_per_s", c.bytes / secs / 1e6},
                           {"rtt_us", c.rtt_n ? c.rtt_ns / 1e3 / c.rtt_n : 0.0}, {"rtt_p50_us", percentile(rtts, 0.5)},
                           {"rtt_p99_us", percentile(rtts, 0.99)}, {"cpu_pct", cpu}, {"failed", c.failed.load()},
                           {"resets", resets.load()}, {"stream_mb_per_s", c.stream_bytes / secs / 1e6},
                           {"cpu_s", cpu_s}, {"rx_acks", c.rx_ack.load()}};
    auto per_req = [](double cpu_seconds_used, double completed) { return completed > 0 ? cpu_seconds_used * 1e6 / completed : 0.0; };
    // Lane counters now, before the peer's node goes away at the end of the run (its closing
    // lanes would count what is in flight then as retransmitted).
    const NodeInfo info = node->info();
    uint64_t retrans = 0;
    for (const auto& pi : info.peers)
        for (const auto& l : pi.lane) retrans += l.retransmits;
    summary["retransmits"] = retrans;
    if (active) {
        const std::string s = line_of("stop");
        write_all(ctl.get(), s.data(), s.size());
        const std::string remote = read_line(ctl.get());
        if (!remote.empty()) {
            auto r = nlohmann::json::parse(remote);
            summary["peer_cpu_pct"] = r["cpu_pct"];
            summary["peer_rx_per_s"] = r["rx_per_s"];
            // Requests completed in the run by both sides (the peer's own requests in two-way runs).
            const double completed = static_cast<double>(c.rx_ack) + r.value("rx_acks", 0.0);
            summary["completed_total_per_s"] = completed / secs;
            summary["cpu_us_per_req"] = per_req(cpu_s, completed);
            summary["peer_cpu_us_per_req"] = per_req(r.value("cpu_s", 0.0), completed);
            if (r.contains("error")) error = error.empty() ? "peer: " + r["error"].get<std::string>() : error;
        }
    } else {
        nlohmann::json r{{"cpu_pct", cpu}, {"rx_per_s", c.rx_req / secs}, {"cpu_s", cpu_s}, {"rx_acks", c.rx_ack.load()}};
        if (!error.empty()) r["error"] = error;
        const std::string s = line_of(r.dump());
        write_all(ctl.get(), s.data(), s.size());
    }
    if (!error.empty()) summary["error"] = error;
    if (o.json) {
        fmt::print("{}\n", summary.dump());
    } else if (active) {
        fmt::print("---------------------------------------------\n");
        fmt::print("{:>4} {:>8.0f} {:>8.0f} {:>10.0f} {:>8} {:>8} {:>8} {:>8.2f} {:>6.1f}  (average over {:.1f} s)\n", p.tasks,
                   summary["tx_per_s"].get<double>(), summary["rx_per_s"].get<double>(), c.bytes / secs / 1024, 0, 0, "",
                   summary["rtt_us"].get<double>(), cpu, secs);
        fmt::print("summary: {:.0f} tx/s, {:.0f} rx/s, {:.0f} requests completed/s, {:.1f} MB/s, rtt {:.1f} us (p50 {} p99 {}), "
                   "cpu {:.0f}% here{}, cpu per completed request {:.1f} us here{}, lanes {}, resets {}, retransmits {}, failed {}{}\n",
                   summary["tx_per_s"].get<double>(), summary["rx_per_s"].get<double>(), summary["completed_per_s"].get<double>(),
                   summary["mb_per_s"].get<double>(), summary["rtt_us"].get<double>(), summary["rtt_p50_us"].get<uint32_t>(),
                   summary["rtt_p99_us"].get<uint32_t>(), cpu,
                   summary.contains("peer_cpu_pct") ? fmt::format(" {:.0f}% peer", summary["peer_cpu_pct"].get<double>()) : "",
                   summary.value("cpu_us_per_req", 0.0),
                   summary.contains("peer_cpu_us_per_req") ? fmt::format(" {:.1f} us peer", summary["peer_cpu_us_per_req"].get<double>()) : "",
                   p.lanes, resets.load(), retrans, c.failed.load(),
                   p.stream ? fmt::format(", stream {:.1f} MB/s", summary["stream_mb_per_s"].get<double>()) : "");
    }
    if (!error.empty()) {
        fmt::print(stderr, "shunt rds stress: {}\n", error);
        return 1;
    }
    return 0;
}

}  // namespace

void add_rds_stress(CLI::App& rds) {
    auto o = std::make_shared<Options>();
    auto* cmd = rds.add_subcommand("stress", "the rds-stress workload: passive `-r IP`, active `-r IP -s PEER`");
    cmd->add_option("-r,--recv", o->local, "local address to bind")->required();
    cmd->add_option("-s,--send", o->peer, "passive peer to send to (makes this the active side)");
    cmd->add_option("-p,--port", o->port, "TCP control port, and base of the task ports (p+1+i)")->capture_default_str();
    cmd->add_option("-q,--req-bytes", o->req, "request size (K/M suffixes)")->capture_default_str();
    cmd->add_option("-a,--ack-bytes", o->ack, "ack (response) size")->capture_default_str();
    cmd->add_option("-d,--depth", o->p.depth, "requests in flight per peer task")->capture_default_str();
    cmd->add_option("-t,--tasks", o->p.tasks, "tasks per side")->capture_default_str()->check(CLI::Range(1, 1000));
    cmd->add_option("-T,--time", o->p.seconds, "run time in seconds (0 = until interrupted)")->capture_default_str();
    cmd->add_flag("-o,--one-way", o->p.one_way, "only the active side sends requests");
    cmd->add_option("--lanes", o->p.lanes, "TCP lanes per peer")->capture_default_str()->check(CLI::Range(1, 255));
    cmd->add_option("--lane-port", o->lane_port, "TCP port lanes are accepted on")->capture_default_str();
    cmd->add_option("--lane-ports", o->lane_ports, "LO-HI: source ports for the lanes this side opens");
    cmd->add_option("--peer-queues", o->peer_queues, "the peer's NIC: default RSS model with Q queues (spreads lanes there)");
    cmd->add_flag("--hash", o->hash, "place sockets on lanes by hash instead of least-loaded");
    cmd->add_option("--reset", o->reset_ms, "kill a random lane every MS milliseconds");
    cmd->add_option("--stream", o->stream, "also stream messages of this size one-way on another socket");
    cmd->add_flag("--json", o->json, "print only a JSON summary");
    cmd->add_flag("-z,--summary-only", o->summary_only, "no per-second lines");
    cmd->callback([o] {
        const int rc = run(*o);
        if (rc) throw CLI::RuntimeError(rc);
    });
}

}  // namespace shunt::cli
