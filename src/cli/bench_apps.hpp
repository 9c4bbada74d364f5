#pragma once
// `shunt bench apps` (and plain `shunt bench`): unmodified programs over TCP loopback and under
// `shunt run`, side by side.
#include <cstddef>
#include <string>
#include <vector>

namespace shunt::cli {

struct BenchAppsOptions {
    int runs = 3;
    int duration = 3;  // seconds per run
    int server_cpu = 1, client_cpu = 0;
    size_t buffer_size = 0;  // shunt run --buffer-size (0: its default)
    int spin_us = -1;        // shunt run --spin-us (-1: its default)
    std::string rundir;      // shunt run --rundir (empty: a private one per bench)
    std::vector<std::string> workloads;  // ids (empty: all)
    std::string plot = "shunt-bench.png";
    bool json = false;
};

// Prints progress on stderr, the table (or JSON) on stdout, writes the plot. Returns the exit
// status: 0 when every row was measured both ways and every shunt run was seen on SMCD.
int run_bench_apps(const BenchAppsOptions& o);

}  // namespace shunt::cli
