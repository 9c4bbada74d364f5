// The table of `shunt bench apps` workloads: unmodified Debian programs, as published SMC-D
// evaluations run them (sockperf, iperf3, redis-benchmark, nginx + wrk). Targets are shunt/TCP
// ratios, the ones README states. Every server listens on 127.0.0.1:<port>; each client connects there.
#include "cli/app_workloads.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "cli/app_output.hpp"

namespace shunt::cli {
namespace {

std::string s(int v) { return std::to_string(v); }

std::vector<std::string> sockperf_server(const WorkloadContext& c) {
    return {"sr", "--tcp", "-i", "127.0.0.1", "-p", s(c.port)};
}

// nginx: master + 2 workers that inherit the listening socket, a 612-byte static page (the
// size of nginx's default index.html), no access log, everything under ctx.dir.
void write_nginx_site(const WorkloadContext& c) {
    ::chmod(c.dir.c_str(), 0755);
    for (const char* sub : {"/html", "/logs"}) ::mkdir((c.dir + sub).c_str(), 0755);
    std::ofstream(c.dir + "/html/index.html") << std::string(611, 'x') << '\n';
    // As root the workers stay root: they must reach the client's announcement in the rundir
    // that `shunt bench` made for this run (0700, ours).
    const std::string user = ::geteuid() == 0 ? "user root;\n" : "";
    std::ofstream conf(c.dir + "/nginx.conf");
    conf << user
         << fmt::format(
                "worker_processes 2;\ndaemon off;\npid {0}/nginx.pid;\nerror_log {0}/logs/error.log warn;\n"
                "events {{ worker_connections 1024; }}\n"
                "http {{\n  access_log off;\n  client_body_temp_path {0}/body;\n  proxy_temp_path {0}/proxy;\n"
                "  fastcgi_temp_path {0}/fastcgi;\n  uwsgi_temp_path {0}/uwsgi;\n  scgi_temp_path {0}/scgi;\n"
                "  server {{ listen 127.0.0.1:{1}; root {0}/html; }}\n}}\n",
                c.dir, c.port);
    if (!conf) throw std::runtime_error("cannot write " + c.dir + "/nginx.conf");
}

// redis-benchmark works by request count; this many per second of --duration keeps each test
// (SET, GET) of a plain run near the duration at the ~100k req/s measured here, and a shunt run
// (~500k req/s) long enough to measure.
int redis_requests(int duration) { return std::max(10000, 100000 * duration); }

// sockperf under load: a fixed message rate, where spinning buys little and costs a core. The
// server's CPU is a figure of its own, with latency at the median and the 99th percentile.
Workload sockperf_under_load(std::string id, int rate) {
    return {id,
            fmt::format("sockperf ul 64 B {}k msg/s", rate / 1000),
            {"sockperf", "sockperf"},
            {{"latency p50", "us", true, 1.0}, {"latency p99", "us", true, 1.0}, {"server CPU", "s", true, 1.0, true}},
            sockperf_server,
            [rate](const WorkloadContext& c) {
                return std::vector<std::string>{"ul", "--tcp", "-i", "127.0.0.1", "-p", s(c.port), "-m", "64",
                                                "-t", s(c.duration), "--mps", s(rate)};
            },
            nullptr,
            false,
            [](const std::string& out) {
                const SockperfLatency l = parse_sockperf_pingpong(out);
                return std::vector<double>{l.median_us, l.p99_us};
            }};
}

}  // namespace

const std::vector<Workload>& app_workloads() {
    static const std::vector<Workload> table = {
        {"sockperf-pp",
         "sockperf ping-pong 14 B",
         {"sockperf", "sockperf"},
         {{"latency (median)", "us", true, 0.15}},
         sockperf_server,
         [](const WorkloadContext& c) {
             // --mps: sockperf sizes its sequence table for ~1M messages/s and fails beyond it
             // ("_seqN > m_maxSequenceNo"), which shunt reaches; TCP here stays below 80k/s.
             return std::vector<std::string>{"pp", "--tcp", "-i", "127.0.0.1", "-p", s(c.port), "-m", "14",
                                             "-t", s(c.duration), "--mps", "500000"};
         },
         nullptr,
         false,
         [](const std::string& out) { return std::vector<double>{parse_sockperf_pingpong(out).median_us}; }},
        sockperf_under_load("sockperf-ul20k", 20000),
        sockperf_under_load("sockperf-ul100k", 100000),
        {"sockperf-tp",
         "sockperf throughput 64000 B",
         {"sockperf", "sockperf"},
         {{"throughput", "MB/s", false, 2.5}},
         sockperf_server,
         [](const WorkloadContext& c) {
             return std::vector<std::string>{"tp", "--tcp", "-i", "127.0.0.1", "-p", s(c.port), "-m", "64000",
                                             "-t", s(c.duration)};
         },
         nullptr,
         false,
         [](const std::string& out) { return std::vector<double>{parse_sockperf_throughput(out)}; }},
        {"iperf3",
         "iperf3 one stream",
         {"iperf3", "iperf3"},
         {{"throughput", "Gbit/s", false, 2.5}},
         [](const WorkloadContext& c) { return std::vector<std::string>{"-s", "-p", s(c.port)}; },
         [](const WorkloadContext& c) {
             return std::vector<std::string>{"-c", "127.0.0.1", "-p", s(c.port), "-t", s(c.duration), "-J"};
         },
         nullptr,
         true,
         [](const std::string& out) { return std::vector<double>{parse_iperf3_json(out).received_gbps}; }},
        {"redis",
         "redis-benchmark 50 clients",
         {"redis-server", "redis-benchmark"},
         {{"SET", "req/s", false, 1.6}, {"GET", "req/s", false, 1.6}},
         [](const WorkloadContext& c) {
             return std::vector<std::string>{"--port", s(c.port), "--bind", "127.0.0.1", "--save", "",
                                             "--appendonly", "no", "--dir", c.dir, "--daemonize", "no",
                                             "--logfile", ""};
         },
         [](const WorkloadContext& c) {
             return std::vector<std::string>{"-h", "127.0.0.1", "-p", s(c.port), "-c", "50",
                                             "-n", s(redis_requests(c.duration)), "-t", "set,get", "--csv"};
         },
         nullptr,
         true,
         [](const std::string& out) {
             const auto rps = parse_redis_benchmark_csv(out);
             if (!rps.count("SET") || !rps.count("GET")) throw std::runtime_error("redis-benchmark: SET or GET missing");
             return std::vector<double>{rps.at("SET"), rps.at("GET")};
         }},
        {"nginx",
         "nginx 2 workers + wrk 50 conns",
         {"nginx", "wrk"},
         {{"requests", "req/s", false, 1.5}},
         [](const WorkloadContext& c) {
             return std::vector<std::string>{"-p", c.dir, "-c", c.dir + "/nginx.conf", "-e", c.dir + "/logs/error.log"};
         },
         [](const WorkloadContext& c) {
             return std::vector<std::string>{"-t1", "-c50", fmt::format("-d{}s", c.duration),
                                             fmt::format("http://127.0.0.1:{}/index.html", c.port)};
         },
         write_nginx_site,
         false,
         [](const std::string& out) {
             const WrkResult r = parse_wrk(out);
             if (r.non_2xx_3xx || r.socket_errors)
                 throw std::runtime_error(fmt::format("wrk: {} non-2xx/3xx replies, {} socket errors", r.non_2xx_3xx,
                                                      r.socket_errors));
             return std::vector<double>{r.requests_per_sec};
         }},
    };
    return table;
}

}  // namespace shunt::cli
