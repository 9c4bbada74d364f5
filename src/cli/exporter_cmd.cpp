// `shunt stats --prometheus` prints the host's counters once in Prometheus text format;
// `shunt exporter --listen ADDR:PORT` serves them over HTTP at /metrics for a scraper, in the
// manner of node_exporter. The exporter is one thread: it samples every --interval seconds and
// on each scrape, so that HostTotals sees a process's last counters shortly before it exits
// (see metrics.hpp). HTTP is the minimum a scraper needs: GET or HEAD, one request per
// connection, Connection: close.
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/metrics.hpp"
#include "core/inet.hpp"
#include "core/tcp.hpp"

namespace shunt::cli {
namespace {

struct ExporterOptions {
    std::string listen = "127.0.0.1:9464";
    double interval = 1.0;
};

// "ADDR:PORT", "[V6]:PORT" or ":PORT" (every address).
std::pair<std::string, uint16_t> split_listen(const std::string& s) {
    const auto colon = s.rfind(':');
    if (colon == std::string::npos) throw CLI::ValidationError("--listen", "expected ADDR:PORT, got '" + s + "'");
    std::string host = s.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const std::string port = s.substr(colon + 1);
    char* end = nullptr;
    const unsigned long p = std::strtoul(port.c_str(), &end, 10);
    if (port.empty() || *end || p > 65535) throw CLI::ValidationError("--listen", "bad port in '" + s + "'");
    return {host, static_cast<uint16_t>(p)};
}

void send_all(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
        const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return;  // the scraper went away: nothing to do
        off += static_cast<size_t>(n);
    }
}

std::string response(int status, const char* reason, const std::string& type, const std::string& body, bool head) {
    return fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}", status,
                       reason, type, body.size(), head ? "" : body);
}

void serve_one(int fd, HostTotals& totals) {
    // A scraper that connects and says nothing must not stall the exporter.
    const timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req;
    char buf[2048];
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        req.append(buf, static_cast<size_t>(n));
    }
    const auto sp1 = req.find(' ');
    const auto sp2 = sp1 == std::string::npos ? sp1 : req.find(' ', sp1 + 1);
    if (sp2 == std::string::npos) {
        send_all(fd, response(400, "Bad Request", "text/plain", "bad request\n", false));
        return;
    }
    const std::string method = req.substr(0, sp1);
    std::string path = req.substr(sp1 + 1, sp2 - sp1 - 1);
    path = path.substr(0, path.find('?'));
    const bool head = method == "HEAD";
    if (method != "GET" && !head) {
        send_all(fd, response(405, "Method Not Allowed", "text/plain", "only GET and HEAD\n", false));
    } else if (path == "/metrics") {
        const MetricsSample s = read_metrics_sample();
        const std::string body = render_prometheus(totals.update(s), s.gauges);
        send_all(fd, response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, head));
    } else if (path == "/") {
        send_all(fd, response(200, "OK", "text/html",
                              "<html><head><title>shunt exporter</title></head><body><a href=\"/metrics\">Metrics</a></body></html>\n",
                              head));
    } else {
        send_all(fd, response(404, "Not Found", "text/plain", "not found: try /metrics\n", head));
    }
}

[[noreturn]] void run_exporter(const ExporterOptions& o) {
    const auto [host, port] = split_listen(o.listen);
    UniqueFd lfd = tcp_listen(host, port);
    if (auto bound = local_endpoint(lfd.get()))
        fmt::print("shunt exporter: serving http://{}/metrics\n", bound->to_string());
    std::fflush(stdout);
    HostTotals totals;
    totals.update(read_metrics_sample());
    const int timeout_ms = static_cast<int>(o.interval * 1000);
    auto next = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - std::chrono::steady_clock::now());
        pollfd p{lfd.get(), POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
        if (n > 0) {
            UniqueFd c(::accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (c) serve_one(c.get(), totals);
        }
        if (std::chrono::steady_clock::now() >= next) {
            totals.update(read_metrics_sample());
            next = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        }
    }
}

}  // namespace

void add_exporter_commands(CLI::App& app) {
    auto o = std::make_shared<ExporterOptions>();
    auto* cmd = app.add_subcommand("exporter", "serve the host's shunt counters over HTTP for Prometheus (/metrics)");
    cmd->add_option("-l,--listen", o->listen, "address and port to listen on: ADDR:PORT, [V6]:PORT or :PORT (port 0: any free one)")
        ->capture_default_str();
    cmd->add_option("-i,--interval", o->interval, "seconds between samples that catch a process's counters before it exits")
        ->capture_default_str()
        ->check(CLI::Range(0.05, 3600.0));
    cmd->callback([o] { run_exporter(*o); });
}

}  // namespace shunt::cli
