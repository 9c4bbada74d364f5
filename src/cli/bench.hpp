#pragma once
// Benchmarks behind `shunt bench`.
#include <cstddef>

namespace shunt::cli {

struct BenchLoOptions {
    int runs = 5;
    int pingpong_iters = 20000;
    size_t stream_bytes = size_t{1} << 30;
    int setup_conns = 300;
    int server_cpu = 1, client_cpu = 0;
    size_t buffer_size = 0;
    bool json = false;
};
// Prints the table; returns how many targets were missed.
int run_bench_lo(const BenchLoOptions& o);

}  // namespace shunt::cli
