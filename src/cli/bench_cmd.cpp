// `shunt bench`: side-by-side benchmarks against TCP and other peers. With no subcommand it runs
// `apps` (unmodified programs over TCP and under shunt run); `lo` measures the library itself.
#include <unistd.h>

#include "cli/bench.hpp"
#include "cli/bench_apps.hpp"
#include "cli/child_process.hpp"
#include "cli/commands.hpp"

namespace shunt::cli {
namespace {

void add_apps_options(CLI::App* app, BenchAppsOptions& o) {
    app->add_option("--runs", o.runs, "repetitions per workload and transport (medians are reported)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app->add_option("--duration", o.duration, "seconds per run")->capture_default_str()->check(CLI::PositiveNumber);
    app->add_option("--workloads", o.workloads, "only these: sockperf-pp, sockperf-tp, iperf3, redis, nginx")
        ->delimiter(',');
    app->add_option("--server-cpu", o.server_cpu, "CPU for the servers (-1: no pinning)")->capture_default_str();
    app->add_option("--client-cpu", o.client_cpu, "CPU for the clients (-1: no pinning)")->capture_default_str();
    app->add_option("--buffer-size", o.buffer_size, "passed to shunt run --buffer-size");
    app->add_option("--spin-us", o.spin_us, "passed to shunt run --spin-us");
    app->add_option("--rundir", o.rundir, "rendezvous directory for the shunt runs (default: a private temp dir)");
    app->add_option("--plot", o.plot, "PNG bar chart of the ratios ('' for none)")->capture_default_str();
    app->add_flag("--json", o.json, "print the results as JSON");
}

void run_apps(BenchAppsOptions& o) {
    if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) o.server_cpu = o.client_cpu = -1;
    int st = 0;
    try {
        st = run_bench_apps(o);
    } catch (const Interrupted&) {
        st = 130;  // every server is dead and every temp dir removed by now
    }
    if (st) throw CLI::RuntimeError(st);
}

}  // namespace

void add_bench_commands(CLI::App& app) {
    auto* bench = app.add_subcommand("bench", "benchmarks: shunt side by side with TCP (default: apps)");
    bench->require_subcommand(0, 1);
    auto o = std::make_shared<BenchLoOptions>();
    auto* lo = bench->add_subcommand("lo", "shunt lo vs TCP loopback vs UNIX socket: ping-pong, streaming, setup");
    lo->add_option("--runs", o->runs, "repetitions (medians are reported)")->capture_default_str();
    lo->add_option("--iters", o->pingpong_iters, "ping-pong round trips per run")->capture_default_str();
    lo->add_option("--stream-bytes", o->stream_bytes, "bytes streamed per run")->capture_default_str();
    lo->add_option("--conns", o->setup_conns, "connections per run for the setup test")->capture_default_str();
    lo->add_option("--server-cpu", o->server_cpu, "CPU for the server process (-1: no pinning)")->capture_default_str();
    lo->add_option("--client-cpu", o->client_cpu, "CPU for the client (-1: no pinning)")->capture_default_str();
    lo->add_option("--buffer-size", o->buffer_size, "shunt DMB size in bytes (default: SHUNT_BUFFER_SIZE or 256 KiB)");
    lo->add_flag("--json", o->json, "print the results as JSON");
    lo->callback([o] {
        if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) o->server_cpu = o->client_cpu = -1;
        run_bench_lo(*o);
    });

    // The same options on `bench` and `bench apps`, so that `shunt bench --runs 5` works too.
    auto ao = std::make_shared<BenchAppsOptions>();
    add_apps_options(bench, *ao);
    auto* apps = bench->add_subcommand(
        "apps", "sockperf, iperf3, redis-benchmark, nginx+wrk over TCP loopback and under shunt run");
    add_apps_options(apps, *ao);
    apps->callback([ao] { run_apps(*ao); });
    bench->callback([bench, ao] {
        if (bench->get_subcommands().empty()) run_apps(*ao);
    });
}

}  // namespace shunt::cli
