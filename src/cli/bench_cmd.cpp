// `shunt bench`: side-by-side benchmarks against TCP and other peers.
#include <unistd.h>

#include "cli/bench.hpp"
#include "cli/commands.hpp"

namespace shunt::cli {

void add_bench_commands(CLI::App& app) {
    auto* bench = app.add_subcommand("bench", "benchmarks: shunt side by side with TCP and other peers");
    bench->require_subcommand(1);
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
}

}  // namespace shunt::cli
