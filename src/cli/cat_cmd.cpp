// `shunt cat`: netcat over the shunt lo API. stdin goes to the connection, the connection to
// stdout; EOF on stdin half-closes. Exit status: 0 the connection ended cleanly, 2 it was
// reset or aborted, 1 it could not be set up.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "shunt/decline.hpp"
#include "shunt/lo.hpp"

namespace shunt::cli {
namespace {

struct CatOptions {
    bool listen = false;
    bool verbose = false;
    std::vector<std::string> args;  // [HOST] PORT
    size_t buffer_size = 0;
    long spin_us = -1;
    std::string rundir;
};

std::string describe(const lo::Stream& s) {
    if (s.accelerated()) return "SMCD";
    std::string d = fmt::format("TCP, fallback 0x{:08x} {}", s.fallback_reason(), decline_name(s.fallback_reason()));
    if (s.peer_reason()) d += fmt::format(", peer 0x{:08x} {}", s.peer_reason(), decline_name(s.peer_reason()));
    return d;
}

bool write_fd_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

int pump(lo::Stream& s, bool verbose) {
    std::thread to_peer([&s] {
        std::vector<char> buf(256 * 1024);
        for (;;) {
            const ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            if (s.write(buf.data(), static_cast<size_t>(n)) != n) return;
        }
        s.shutdown(SHUT_WR);
    });
    std::vector<char> buf(256 * 1024);
    int rc = 0;
    for (;;) {
        const ssize_t n = s.read(buf.data(), buf.size());
        if (n == 0) break;
        if (n < 0) {
            if (verbose) fmt::print(stderr, "shunt cat: {}\n", std::strerror(errno));
            rc = errno == ECONNRESET || errno == EPIPE ? 2 : 1;
            break;
        }
        if (!write_fd_all(STDOUT_FILENO, buf.data(), static_cast<size_t>(n))) {
            rc = 1;
            break;
        }
    }
    // Like OpenBSD nc, finish sending stdin after the peer stopped sending: a half-closed peer
    // still reads. A fully closed one makes the next write fail, which ends the pump.
    if (rc == 0) to_peer.join();
    else to_peer.detach();
    return rc;
}

void run_cat(const CatOptions& o) {
    lo::Options opt = lo::Options::from_env();
    if (o.buffer_size) opt.buffer_size = o.buffer_size;
    if (o.spin_us >= 0) opt.spin = std::chrono::microseconds(o.spin_us);
    if (!o.rundir.empty()) opt.rundir = o.rundir;
    if (o.args.empty() || o.args.size() > 2) throw CLI::ValidationError("shunt cat", "expected [HOST] PORT");
    const std::string host = o.args.size() == 2 ? o.args[0] : (o.listen ? "0.0.0.0" : "127.0.0.1");
    const auto port = static_cast<uint16_t>(std::stoul(o.args.back()));
    lo::Stream s;
    if (o.listen) {
        auto l = lo::Listener::listen(host, port, opt, 1);
        if (o.verbose) fmt::print(stderr, "shunt cat: listening on {}:{}\n", host, l.port());
        s = l.accept();
    } else {
        s = lo::Stream::connect(host, port, opt);
    }
    if (o.verbose) fmt::print(stderr, "shunt cat: connected ({})\n", describe(s));
    const int rc = pump(s, o.verbose);
    s.close();
    std::fflush(stdout);
    if (rc != 0) throw CLI::RuntimeError(rc);
}

}  // namespace

void add_cat_commands(CLI::App& app) {
    auto o = std::make_shared<CatOptions>();
    auto* cat = app.add_subcommand("cat", "netcat over shunt lo: -l [ADDR] PORT listens, HOST PORT connects");
    cat->add_flag("-l,--listen", o->listen, "listen for one connection instead of connecting");
    cat->add_flag("-v,--verbose", o->verbose, "say on stderr whether the connection is SMCD or TCP, and why");
    cat->add_option("--buffer-size", o->buffer_size, "receive buffer (DMB) size in bytes");
    cat->add_option("--spin-us", o->spin_us, "busy-poll time before sleeping, microseconds");
    cat->add_option("--rundir", o->rundir, "rendezvous directory");
    cat->add_option("args", o->args, "[HOST] PORT")->required();
    cat->callback([o] { run_cat(*o); });
}

}  // namespace shunt::cli
