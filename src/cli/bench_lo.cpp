// `shunt bench lo`: shunt lo against TCP loopback and a UNIX socket, side by side, in one run.
// A forked server process and the client are pinned to different CPUs (without pinning,
// loopback figures on a 2-vCPU VM swing by 30%); transports alternate within each run, runs
// repeat, and the table shows medians over runs and ratios.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/bench.hpp"
#include "cli/child_process.hpp"
#include "core/inet.hpp"
#include "core/tcp.hpp"
#include "shunt/decline.hpp"
#include "shunt/lo.hpp"

namespace shunt::cli {
namespace {

using Clock = std::chrono::steady_clock;
enum class Transport { Shunt, Tcp, Unix };
constexpr Transport kTransports[] = {Transport::Shunt, Transport::Tcp, Transport::Unix};

// A byte stream over any of the three transports.
class Conn {
public:
    virtual ~Conn() = default;
    virtual ssize_t read(void* p, size_t n) = 0;
    virtual ssize_t write(const void* p, size_t n) = 0;
    virtual void shutdown_write() = 0;
    bool read_exact(void* p, size_t n) {
        auto* c = static_cast<char*>(p);
        while (n) {
            const ssize_t r = read(c, n);
            if (r <= 0) return false;
            c += r;
            n -= static_cast<size_t>(r);
        }
        return true;
    }
    bool write_all(const void* p, size_t n) {
        const auto* c = static_cast<const char*>(p);
        while (n) {
            const ssize_t w = write(c, n);
            if (w <= 0) return false;
            c += w;
            n -= static_cast<size_t>(w);
        }
        return true;
    }
};

class FdConn : public Conn {
public:
    explicit FdConn(UniqueFd fd) : fd_(std::move(fd)) {}
    ssize_t read(void* p, size_t n) override { return ::recv(fd_.get(), p, n, 0); }
    ssize_t write(const void* p, size_t n) override { return ::send(fd_.get(), p, n, MSG_NOSIGNAL); }
    void shutdown_write() override { ::shutdown(fd_.get(), SHUT_WR); }

private:
    UniqueFd fd_;
};

class ShuntConn : public Conn {
public:
    explicit ShuntConn(lo::Stream s) : s_(std::move(s)) {}
    ssize_t read(void* p, size_t n) override { return s_.read(p, n); }
    ssize_t write(const void* p, size_t n) override { return s_.write(p, n); }
    void shutdown_write() override { s_.shutdown(SHUT_WR); }
    bool accelerated() const { return s_.accelerated(); }
    uint32_t reason() const { return s_.fallback_reason(); }

private:
    lo::Stream s_;
};

void nodelay(int fd) {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void pin(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::sched_setaffinity(0, sizeof set, &set);
}

struct Servers {
    lo::Listener shunt;
    UniqueFd tcp, unix_sock;
    uint16_t tcp_port = 0;
    std::string unix_path;
};

// ---- server (child process): one connection at a time, the first byte says what to do ----

enum : uint8_t { kPingPong = 'P', kStream = 'S', kSetup = 'C' };

void serve_one(Conn& c) {
    uint8_t kind;
    if (!c.read_exact(&kind, 1)) return;
    if (kind == kPingPong) {
        uint32_t size;
        if (!c.read_exact(&size, sizeof size)) return;
        std::vector<char> buf(size);
        while (c.read_exact(buf.data(), size) && c.write_all(buf.data(), size)) {
        }
    } else if (kind == kStream) {
        std::vector<char> buf(1 << 20);
        uint64_t total = 0;
        ssize_t n;
        while ((n = c.read(buf.data(), buf.size())) > 0) total += static_cast<uint64_t>(n);
        c.write_all(&total, sizeof total);
    } else if (kind == kSetup) {
        c.write_all(&kind, 1);
    }
}

[[noreturn]] void run_server(Servers& s) {
    for (;;) {
        pollfd p[3] = {{s.shunt.fd(), POLLIN, 0}, {s.tcp.get(), POLLIN, 0}, {s.unix_sock.get(), POLLIN, 0}};
        if (::poll(p, 3, -1) <= 0) continue;
        std::unique_ptr<Conn> c;
        if (p[0].revents) {
            c = std::make_unique<ShuntConn>(s.shunt.accept());
        } else if (p[1].revents) {
            UniqueFd fd = tcp_accept(s.tcp.get());
            nodelay(fd.get());
            c = std::make_unique<FdConn>(std::move(fd));
        } else {
            c = std::make_unique<FdConn>(tcp_accept(s.unix_sock.get()));
        }
        serve_one(*c);
    }
}

// ---- client ----

struct Target {
    uint16_t shunt_port, tcp_port;
    std::string unix_path;
    lo::Options opt;
};

std::unique_ptr<Conn> dial(Transport t, const Target& to) {
    if (t == Transport::Shunt) return std::make_unique<ShuntConn>(lo::Stream::connect("127.0.0.1", to.shunt_port, to.opt));
    if (t == Transport::Tcp) {
        UniqueFd fd = tcp_connect("127.0.0.1", to.tcp_port);  // sets TCP_NODELAY, as sockperf does
        return std::make_unique<FdConn>(std::move(fd));
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, to.unix_path.c_str(), sizeof sa.sun_path - 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) throw std::runtime_error("unix connect");
    return std::make_unique<FdConn>(std::move(fd));
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Median one-way latency in µs (round trip / 2, as sockperf reports it); 10% warm-up.
double pingpong(Transport t, const Target& to, uint32_t size, int iters) {
    auto c = dial(t, to);
    const uint8_t kind = kPingPong;
    c->write_all(&kind, 1);
    c->write_all(&size, sizeof size);
    std::vector<char> buf(size, 'x');
    std::vector<double> rtt;
    rtt.reserve(static_cast<size_t>(iters));
    for (int i = 0; i < iters + iters / 10; ++i) {
        const auto t0 = Clock::now();
        if (!c->write_all(buf.data(), size) || !c->read_exact(buf.data(), size)) throw std::runtime_error("ping-pong failed");
        if (i >= iters / 10) rtt.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    return median(rtt) / 2;
}

// MB/s of 64000-byte writes, counted when the receiver confirms the total.
double stream(Transport t, const Target& to, size_t total) {
    auto c = dial(t, to);
    const uint8_t kind = kStream;
    c->write_all(&kind, 1);
    std::vector<char> buf(64000, 'y');
    const auto t0 = Clock::now();
    size_t sent = 0;
    while (sent < total) {
        if (!c->write_all(buf.data(), buf.size())) throw std::runtime_error("stream write failed");
        sent += buf.size();
    }
    c->shutdown_write();
    uint64_t got = 0;
    if (!c->read_exact(&got, sizeof got) || got != sent) throw std::runtime_error("stream: receiver lost bytes");
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    return static_cast<double>(sent) / secs / 1e6;
}

// Median µs for connect, handshake, one byte each way, and close.
double setup(Transport t, const Target& to, int conns) {
    std::vector<double> us;
    for (int i = 0; i < conns; ++i) {
        const auto t0 = Clock::now();
        {
            auto c = dial(t, to);
            uint8_t kind = kSetup;
            if (!c->write_all(&kind, 1) || !c->read_exact(&kind, 1)) throw std::runtime_error("setup failed");
        }
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    return median(us);
}

struct Row {
    std::string name, unit;
    bool lower_is_better;
    double target;  // shunt/TCP ratio to meet
    std::vector<double> per_transport[3];
    // CPU seconds (user + system) of the server and of the client during each measurement.
    std::vector<double> server_cpu[3], client_cpu[3];
};

double own_cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Runs one measurement and records its figure and both sides' CPU time.
template <class Measure>
void measure(Row& row, int ti, pid_t server, Measure&& m) {
    const double s0 = process_cpu_seconds(server), c0 = own_cpu_seconds();
    row.per_transport[ti].push_back(m());
    row.server_cpu[ti].push_back(process_cpu_seconds(server) - s0);
    row.client_cpu[ti].push_back(own_cpu_seconds() - c0);
}

}  // namespace

int run_bench_lo(const BenchLoOptions& o) {
    Servers s;
    lo::Options opt = lo::Options::from_env();
    if (o.buffer_size) opt.buffer_size = o.buffer_size;
    s.shunt = lo::Listener::listen("127.0.0.1", 0, opt);
    s.tcp = tcp_listen("127.0.0.1", 0);
    s.tcp_port = local_endpoint(s.tcp.get())->port;
    s.unix_path = fmt::format("/tmp/shunt-bench-{}.sock", ::getpid());
    ::unlink(s.unix_path.c_str());
    s.unix_sock.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, s.unix_path.c_str(), sizeof sa.sun_path - 1);
    if (::bind(s.unix_sock.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || ::listen(s.unix_sock.get(), 128) < 0)
        throw std::runtime_error("cannot listen on " + s.unix_path);

    std::fflush(stdout);
    const pid_t child = ::fork();
    if (child < 0) throw std::runtime_error("fork failed");
    if (child == 0) {
        pin(o.server_cpu);
        run_server(s);
    }
    pin(o.client_cpu);
    const Target to{s.shunt.port(), s.tcp_port, s.unix_path, opt};

    std::vector<Row> rows = {
        {"ping-pong 14 B latency", "us", true, 0.10, {}, {}, {}},
        {"ping-pong 100 B latency", "us", true, 0.10, {}, {}, {}},
        {"stream 64 KB writes", "MB/s", false, 3.0, {}, {}, {}},
        {"connect+handshake+1 B+close", "us", true, 1.5, {}, {}, {}},
    };
    {
        auto probe = dial(Transport::Shunt, to);
        auto* sc = static_cast<ShuntConn*>(probe.get());
        if (!sc->accelerated())
            fmt::print(stderr, "warning: shunt connection fell back to TCP ({})\n", decline_name(sc->reason()));
    }
    for (int run = 0; run < o.runs; ++run) {
        if (!o.json) fmt::print(stderr, "run {}/{} ...\n", run + 1, o.runs);
        for (int k = 0; k < 3; ++k) {
            // Alternate the order so no transport always goes first.
            const Transport t = kTransports[(k + run) % 3];
            const int ti = static_cast<int>(t);
            measure(rows[0], ti, child, [&] { return pingpong(t, to, 14, o.pingpong_iters); });
            measure(rows[1], ti, child, [&] { return pingpong(t, to, 100, o.pingpong_iters); });
            measure(rows[2], ti, child, [&] { return stream(t, to, o.stream_bytes); });
            measure(rows[3], ti, child, [&] { return setup(t, to, o.setup_conns); });
        }
    }
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    ::unlink(s.unix_path.c_str());

    nlohmann::json out = nlohmann::json::array();
    if (!o.json) {
        fmt::print("\nshunt lo vs TCP loopback vs UNIX socket: medians of {} runs, server on CPU {}, client on CPU {}\n",
                   o.runs, o.server_cpu, o.client_cpu);
        fmt::print("CPU: seconds of user + system time per measurement, server / client, medians\n");
        fmt::print("{:<30} {:>11} {:>11} {:>11} {:>10} {:>10}  {:<14} {:>11} {:>11} {:>11}\n", "measurement", "shunt lo",
                   "TCP", "UNIX", "shunt/TCP", "shunt/UNIX", "target", "shunt CPU", "TCP CPU", "UNIX CPU");
    }
    int misses = 0;
    for (const Row& r : rows) {
        const double sh = median(r.per_transport[0]), tcp = median(r.per_transport[1]), ux = median(r.per_transport[2]);
        const double vs_tcp = sh / tcp, vs_unix = sh / ux;
        const bool met = r.lower_is_better ? vs_tcp <= r.target : vs_tcp >= r.target;
        misses += !met;
        auto cpu = [&](int ti) { return fmt::format("{:.2f}/{:.2f}", median(r.server_cpu[ti]), median(r.client_cpu[ti])); };
        if (o.json) {
            out.push_back({{"measurement", r.name},
                           {"unit", r.unit},
                           {"shunt", sh},
                           {"tcp", tcp},
                           {"unix", ux},
                           {"shunt_vs_tcp", vs_tcp},
                           {"target", r.target},
                           {"met", met},
                           {"cpu_s", {{"shunt", {median(r.server_cpu[0]), median(r.client_cpu[0])}},
                                      {"tcp", {median(r.server_cpu[1]), median(r.client_cpu[1])}},
                                      {"unix", {median(r.server_cpu[2]), median(r.client_cpu[2])}}}}});
        } else {
            fmt::print("{:<30} {:>8.2f} {:<2} {:>8.2f} {:<2} {:>8.2f} {:<2} {:>9.3f}x {:>9.3f}x  {}{:.2f}x {:<6} {:>11} {:>11} {:>11}\n",
                       r.name, sh, r.unit, tcp, r.unit, ux, r.unit, vs_tcp, vs_unix, r.lower_is_better ? "<=" : ">=",
                       r.target, met ? "met" : "MISSED", cpu(0), cpu(1), cpu(2));
        }
    }
    if (o.json) fmt::print("{}\n", out.dump(2));
    return misses;
}

}  // namespace shunt::cli
