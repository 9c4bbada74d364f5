// A test peer for two-process lo tests. One process runs `server`, the other `client`:
//
//   lo_peer server --port-file F --mode M [--conns N] [--bytes B]
//   lo_peer client --port P      --mode M [--conns N] [--bytes B]
//
// modes:  duplex  each connection sends B pattern bytes and checks the B the other side sends
//         many    N connections open at once, one ping-pong each, then all closed; checks that
//                 no descriptor and no shared mapping is left
//         flood   writes until the connection fails       } for kill tests: print how the
//         drain   reads until the connection ends         } connection ended ("ended: ...")
//         abort   the server sends 1 KiB the client never reads; the client closes (an RFC 7609
//                 abort) and the server's next read must fail with ECONNRESET
//         malformed  (client) follow the rendezvous, then send a malformed CLC Proposal; expect
//                 a Decline, then hold the connection open for --hold seconds
//         hold    (server) accept and read until EOF
// It prints "mode: SMCD|TCP" for the first connection and exits 0 when every check held.
#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "clc/builders.hpp"
#include "clc/transfer.hpp"
#include "core/tcp.hpp"
#include "fake_client.hpp"
#include "lo/connection.hpp"
#include "lo/engine.hpp"
#include "lo/stats_region.hpp"
#include "shunt/decline.hpp"
#include "shunt/lo.hpp"

using shunt::lo::Stream;

namespace {

struct Args {
    std::string role, mode = "duplex", port_file;
    uint16_t port = 0;
    int conns = 1;
    uint64_t bytes = 1 << 20;
    int hold = 0;
};

uint8_t pattern(uint64_t seed, uint64_t pos) {
    uint64_t x = (pos >> 3) * 0x9E3779B97F4A7C15ULL ^ seed;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ULL;
    return static_cast<uint8_t>(x >> (8 * (pos & 7)));
}

size_t count_fds() {
    size_t n = 0;
    DIR* d = ::opendir("/proc/self/fd");
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
    return n - 1;  // the DIR's own descriptor
}

size_t shared_mappings() {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    size_t n = 0;
    while (std::getline(maps, line)) n += line.find("shunt-dmb") != std::string::npos;
    return n;
}

[[noreturn]] void die(const std::string& why) {
    fmt::print("FAIL: {}\n", why);
    std::fflush(stdout);
    std::_Exit(1);
}

void report_mode(const Stream& s) {
    if (s.accelerated()) fmt::print("mode: SMCD\n");
    else fmt::print("mode: TCP {}\n", shunt::decline_name(s.fallback_reason()));
    std::fflush(stdout);
}

void duplex(Stream& s, uint64_t my_seed, uint64_t peer_seed, uint64_t bytes) {
    std::thread tx([&] {
        std::vector<uint8_t> buf(1 << 16);
        for (uint64_t pos = 0; pos < bytes;) {
            const size_t n = std::min<uint64_t>(buf.size() - (pos % 7), bytes - pos);
            for (size_t i = 0; i < n; ++i) buf[i] = pattern(my_seed, pos + i);
            if (s.write(buf.data(), n) != static_cast<ssize_t>(n)) die(fmt::format("write: {}", std::strerror(errno)));
            pos += n;
        }
        s.shutdown(SHUT_WR);
    });
    std::vector<uint8_t> buf(1 << 16);
    uint64_t pos = 0;
    for (;;) {
        const ssize_t r = s.read(buf.data(), buf.size());
        if (r == 0) break;
        if (r < 0) die(fmt::format("read: {}", std::strerror(errno)));
        for (ssize_t i = 0; i < r; ++i)
            if (buf[i] != pattern(peer_seed, pos + i)) die(fmt::format("byte {} differs", pos + i));
        pos += static_cast<uint64_t>(r);
    }
    tx.join();
    if (pos != bytes) die(fmt::format("received {} of {} bytes", pos, bytes));
    fmt::print("received {} bytes, all match\n", pos);
}

std::string ending(ssize_t r) { return r == 0 ? "eof" : (errno == ECONNRESET ? "reset" : std::strerror(errno)); }

int run(const Args& a, std::vector<Stream>& conns) {
    const bool server = a.role == "server";
    if (a.mode == "duplex") {
        for (auto& s : conns) duplex(s, server ? 1 : 2, server ? 2 : 1, a.bytes);
    } else if (a.mode == "many") {
        char c = 'x';
        for (auto& s : conns) {
            if (!server && s.write(&c, 1) != 1) die("ping");
            if (s.read(&c, 1) != 1) die("ping-pong read");
            if (server && s.write(&c, 1) != 1) die("pong");
        }
        if (server)
            for (auto& s : conns)
                if (s.read(&c, 1) != 0) die("expected EOF");
        fmt::print("{} connections exchanged\n", conns.size());
    } else if (a.mode == "flood") {
        std::vector<uint8_t> buf(1 << 16, 0x5a);
        ssize_t r;
        while ((r = conns[0].write(buf.data(), buf.size())) > 0) {
        }
        fmt::print("ended: {}\n", r == 0 ? "zero write" : ending(r));
    } else if (a.mode == "drain") {
        std::vector<uint8_t> buf(1 << 16);
        ssize_t r;
        while ((r = conns[0].read(buf.data(), buf.size())) > 0) {
        }
        fmt::print("ended: {}\n", ending(r));
    } else if (a.mode == "abort") {
        Stream& s = conns[0];
        if (server) {
            std::vector<uint8_t> kib(1024, 0x41);
            if (s.write(kib.data(), kib.size()) != 1024) die("write");
            char c;
            const ssize_t r = s.read(&c, 1);
            fmt::print("ended: {}\n", ending(r));
        } else {
            // Wait until the kilobyte sits unread in our ring, then close: an abort.
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
            for (;;) {
                const auto info = s.connection()->info();
                if (info.rx_peer_produced != info.rx_consumed) break;
                if (std::chrono::steady_clock::now() > deadline) die("no data arrived");
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            s.close();
            fmt::print("closed with unread data\n");
        }
    } else if (a.mode == "hold") {
        char c;
        while (conns[0].read(&c, 1) > 0) {
        }
        fmt::print("ended\n");
    } else {
        die("unknown mode " + a.mode);
    }
    return 0;
}

// A client that breaks the protocol on purpose (see fake_client.hpp).
int malformed_client(const Args& a) {
    auto rundir = shunt::lo::Engine::instance().rundir(shunt::lo::Options::from_env().rundir);
    if (!rundir) die(rundir.error());
    shunt::test::FakeClient fake(**rundir, a.port);
    const shunt::clc::Eid ueid[] = {shunt::clc::pad_blank("SHUNT")};
    auto bad = shunt::clc::encode(shunt::clc::loopback_proposal((*rundir)->gid(), ueid));
    bad[51] = 0x99;  // v2 extension offset pointing nowhere
    shunt::write_all(fake.tcp.get(), bad.data(), bad.size());
    auto reply = shunt::clc::receive_message(fake.tcp.get(), std::chrono::milliseconds(5000));
    if (!reply || !std::holds_alternative<shunt::clc::Decline>(*reply)) die("expected a Decline");
    fmt::print("declined: {}\n", shunt::decline_name(std::get<shunt::clc::Decline>(*reply).diagnosis));
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::seconds(a.hold));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    if (argc < 2) die("usage: lo_peer server|client --mode M ...");
    a.role = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--mode") a.mode = v;
        else if (k == "--port") a.port = static_cast<uint16_t>(std::stoul(v));
        else if (k == "--port-file") a.port_file = v;
        else if (k == "--conns") a.conns = std::stoi(v);
        else if (k == "--bytes") a.bytes = std::stoull(v);
        else if (k == "--hold") a.hold = std::stoi(v);
        else die("unknown option " + k);
    }
    if (a.role == "client" && a.mode == "malformed") return malformed_client(a);
    const auto opt = shunt::lo::Options::from_env();
    // The process's stats region is one memfd per process, made on first use: count from there.
    shunt::lo::StatsRegion::instance();
    const size_t fds_before = count_fds();
    {
        std::vector<Stream> conns;
        if (a.role == "server") {
            auto l = shunt::lo::Listener::listen("0.0.0.0", 0, opt, a.conns + 16);
            {
                std::ofstream(a.port_file + ".tmp") << l.port() << "\n";
                std::rename((a.port_file + ".tmp").c_str(), a.port_file.c_str());
            }
            for (int i = 0; i < a.conns; ++i) conns.push_back(l.accept());
        } else {
            const char* host = std::getenv("LO_PEER_HOST");
            for (int i = 0; i < a.conns; ++i) conns.push_back(Stream::connect(host ? host : "127.0.0.1", a.port, opt));
        }
        report_mode(conns[0]);
        run(a, conns);
    }
    // Everything is closed: no descriptor, mapping or DMB may remain.
    const size_t fds_after = count_fds();
    if (fds_after != fds_before) {
        std::string list;
        for (int fd = 0; fd < 1024; ++fd) {
            char target[512] = {};
            if (::readlink(fmt::format("/proc/self/fd/{}", fd).c_str(), target, sizeof target - 1) > 0)
                list += fmt::format(" {}={}", fd, target);
        }
        die(fmt::format("{} descriptors before, {} after:{}", fds_before, fds_after, list));
    }
    if (size_t m = shared_mappings()) die(fmt::format("{} shunt-dmb mappings left", m));
    if (auto d = shunt::lo::Engine::instance().live_dmbs()) die(fmt::format("{} DMBs still counted", d));
    fmt::print("clean: no descriptor, mapping or buffer left\n");
    return 0;
}
