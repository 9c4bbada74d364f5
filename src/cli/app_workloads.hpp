#pragma once
// The workloads of `shunt bench apps`, as data: which programs, how to start the server and the
// client, how to read the client's output, and what each figure must reach under shunt.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace shunt::cli {

struct WorkloadContext {
    uint16_t port;
    std::string dir;  // a private temp dir for configs, docroots and data (removed afterwards)
    int duration;     // seconds per run
};

// One row of the table: a figure, its unit, and the shunt/TCP ratio it must reach.
struct Metric {
    std::string name, unit;
    bool lower_is_better;
    double target;
    // The figure is the server's CPU seconds during the client's run, not the client's output.
    bool server_cpu = false;
};

struct Workload {
    std::string id;                     // for --workloads
    std::string title;                  // for progress and the table
    std::vector<std::string> programs;  // must be installed (first: server, last: client)
    std::vector<Metric> metrics;
    // argv without the program path, which comes from `programs` (resolved on PATH).
    std::function<std::vector<std::string>(const WorkloadContext&)> server_args, client_args;
    // Writes config files into ctx.dir before the server starts (may be empty).
    std::function<void(const WorkloadContext&)> prepare;
    bool client_stderr_separate = false;  // parse stdout alone (iperf3 -J)
    // The client's output -> one value per metric that is not server_cpu; throws
    // std::runtime_error on a failed run.
    std::function<std::vector<double>(const std::string& out)> parse;
};

const std::vector<Workload>& app_workloads();

}  // namespace shunt::cli
