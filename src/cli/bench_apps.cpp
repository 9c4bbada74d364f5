// `shunt bench apps`: real, unmodified programs (sockperf, iperf3, redis, nginx + wrk) over
// plain TCP loopback and with both ends under `shunt run`, in one invocation.
//
// Design. The workloads are data (app_workloads.cpp); this file only runs them. Like published
// SMC-D runs, the server is pinned to one CPU and the client to the other, plain and shunt runs
// alternate (plain first on odd runs, shunt first on even ones, so neither always gets the
// warmer machine), each workload repeats --runs times, and the table shows medians and the
// shunt/TCP ratio against its target. Every run gets a fresh server on a probed free port and
// a private temp dir; servers run in their own process groups and are killed at the end of the
// run, on error, and on SIGINT/SIGTERM (child_process.cpp). While a shunt run is under way its
// connections are looked up the way `shunt stat` does (mode_check.cpp), and a run that is not
// seen on SMCD is flagged in the table: a figure measured on a TCP fallback is not a shunt
// figure. Missing programs and failed runs are reported per row, never skipped silently.
#include "cli/bench_apps.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/app_workloads.hpp"
#include "cli/bench_plot.hpp"
#include "cli/child_process.hpp"
#include "cli/local_ports.hpp"
#include "cli/mode_check.hpp"

namespace shunt::cli {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

enum Mode { kPlain = 0, kShunt = 1 };
constexpr const char* kModeName[] = {"plain", "shunt"};

class TempDir {
public:
    explicit TempDir(const std::string& prefix) {
        std::string tmpl = (fs::temp_directory_path() / (prefix + "XXXXXX")).string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The last lines of a log, on one line, for an error message.
std::string tail(const std::string& text, size_t lines = 3) {
    std::vector<std::string> all;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        l.erase(std::remove(l.begin(), l.end(), '\r'), l.end());
        if (!l.empty()) all.push_back(l);
    }
    std::string out;
    for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += (out.empty() ? "" : " | ") + all[i];
    return out.empty() ? "(no output)" : out;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// What one workload gave in one mode over all runs.
struct Measured {
    std::vector<std::vector<double>> values;  // [metric][run]
    std::vector<double> server_cpu, client_cpu;  // CPU seconds per run
    ModeTally modes;
    std::vector<std::string> errors;
};

struct RunResult {
    std::vector<double> values;
    ModeTally modes;
    double server_cpu = 0, client_cpu = 0;  // CPU seconds (user + system) while the client ran
};

class Runner {
public:
    Runner(const BenchAppsOptions& o, std::string rundir) : o_(o), rundir_(std::move(rundir)) {
        self_ = fs::read_symlink("/proc/self/exe").string();
    }

    // `shunt run -- true` must work before any shunt figure can mean anything.
    std::string probe_shunt_run() {
        TempDir dir("shunt-bench-probe-");
        SpawnSpec spec;
        spec.argv = shunt_prefix();
        spec.argv.push_back(find_program("true"));
        spec.stdout_path = spec.stderr_path = dir.path() + "/out";
        spec.env = shunt_env();
        Child c(spec);
        const auto st = c.wait_for(10s);
        if (!st) return "`shunt run -- true` did not finish within 10 s";
        if (*st != 0) return fmt::format("`shunt run -- true` failed ({}): {}", describe_status(*st),
                                         tail(read_file(dir.path() + "/out"), 2));
        return "";
    }

    RunResult run_once(const Workload& w, const std::vector<std::string>& paths, Mode mode) {
        TempDir dir("shunt-bench-");
        const WorkloadContext ctx{ports_.next(), dir.path(), o_.duration};
        if (w.prepare) w.prepare(ctx);

        SpawnSpec ss;
        ss.argv = command(mode, paths.front(), w.server_args(ctx));
        ss.env = mode == kShunt ? shunt_env() : decltype(ss.env){};
        ss.cpu = o_.server_cpu;
        ss.stdout_path = ss.stderr_path = dir.path() + "/server.log";
        Child server(ss);
        const auto listen_deadline = std::chrono::steady_clock::now() + 10s;
        while (!tcp_listening(ctx.port)) {
            if (interrupted()) throw Interrupted();
            if (!server.running())
                throw std::runtime_error(fmt::format("{} exited before listening: {}", fs::path(paths.front()).filename().string(),
                                                     tail(read_file(ss.stdout_path))));
            if (std::chrono::steady_clock::now() > listen_deadline)
                throw std::runtime_error(fmt::format("server not listening on port {} after 10 s", ctx.port));
            std::this_thread::sleep_for(20ms);
        }

        SpawnSpec cs;
        cs.argv = command(mode, paths.back(), w.client_args(ctx));
        cs.env = ss.env;
        cs.cpu = o_.client_cpu;
        cs.stdout_path = dir.path() + "/client.out";
        cs.stderr_path = w.client_stderr_separate ? dir.path() + "/client.err" : cs.stdout_path;
        const double server_cpu_before = group_cpu_seconds(server.pid());
        Child client(cs);

        // Look at the connections while the client runs: early (a request-count client such as
        // redis-benchmark may finish well before --duration under shunt), then a quarter and half
        // way through.
        RunResult r;
        const auto limit = std::chrono::milliseconds(o_.duration * 3000 + 30000);
        const auto start = std::chrono::steady_clock::now();
        std::optional<int> st;
        for (int at_ms : {150, o_.duration * 250, o_.duration * 500}) {
            const auto when = start + std::chrono::milliseconds(at_ms);
            st = client.wait_for(std::chrono::duration_cast<std::chrono::milliseconds>(when - std::chrono::steady_clock::now()));
            if (st) break;
            r.modes.add(sample_modes(ctx.port));
        }
        if (!st) st = client.wait_for(limit - std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  std::chrono::steady_clock::now() - start));
        const std::string out = read_file(cs.stdout_path);
        if (!st) throw std::runtime_error(fmt::format("client still running after {} s: {}", limit.count() / 1000, tail(out)));
        if (*st != 0)
            throw std::runtime_error(fmt::format("client failed ({}): {}", describe_status(*st),
                                                 tail(out + (w.client_stderr_separate ? read_file(cs.stderr_path) : ""))));
        if (!server.running())
            throw std::runtime_error("server died during the run: " + tail(read_file(ss.stdout_path)));
        r.server_cpu = group_cpu_seconds(server.pid()) - server_cpu_before;
        r.client_cpu = client.cpu_seconds().value_or(0);
        const std::vector<double> parsed = w.parse(out);
        size_t next = 0;
        for (const Metric& m : w.metrics) {
            if (m.server_cpu) r.values.push_back(r.server_cpu);
            else if (next < parsed.size()) r.values.push_back(parsed[next++]);
        }
        return r;
    }

private:
    std::vector<std::string> shunt_prefix() const {
        std::vector<std::string> a{self_, "run"};
        if (o_.buffer_size) a.insert(a.end(), {"--buffer-size", std::to_string(o_.buffer_size)});
        if (o_.spin_us >= 0) a.insert(a.end(), {"--spin-us", std::to_string(o_.spin_us)});
        a.push_back("--");
        return a;
    }
    std::vector<std::pair<std::string, std::string>> shunt_env() const { return {{"SHUNT_RUNDIR", rundir_}}; }

    std::vector<std::string> command(Mode mode, const std::string& program, const std::vector<std::string>& args) const {
        std::vector<std::string> a = mode == kShunt ? shunt_prefix() : std::vector<std::string>{};
        a.push_back(program);
        a.insert(a.end(), args.begin(), args.end());
        return a;
    }

    const BenchAppsOptions& o_;
    std::string rundir_, self_;
    PortPicker ports_;
};

struct Row {
    const Workload* w;
    size_t metric;
    std::string missing;  // programs not installed
    const Measured* m[2];
};

std::string fmt_value(double v) { return v >= 100 ? fmt::format("{:.0f}", v) : fmt::format("{:.2f}", v); }

}  // namespace

int run_bench_apps(const BenchAppsOptions& o) {
    install_interrupt_handler();
    std::vector<const Workload*> chosen;
    for (const Workload& w : app_workloads())
        if (o.workloads.empty() || std::count(o.workloads.begin(), o.workloads.end(), w.id)) chosen.push_back(&w);
    for (const std::string& id : o.workloads)
        if (std::none_of(app_workloads().begin(), app_workloads().end(), [&](const Workload& w) { return w.id == id; }))
            throw std::runtime_error("unknown workload '" + id + "'");

    std::unique_ptr<TempDir> own_rundir;
    std::string rundir = o.rundir;
    if (rundir.empty()) {
        own_rundir = std::make_unique<TempDir>("shunt-bench-run-");
        rundir = own_rundir->path();
    }
    Runner runner(o, rundir);
    fmt::print(stderr, "shunt bench apps: {} run(s) of {} s per workload and transport, server on CPU {}, client on CPU {}\n",
               o.runs, o.duration, o.server_cpu, o.client_cpu);
    const std::string shunt_unavailable = runner.probe_shunt_run();
    if (!shunt_unavailable.empty()) fmt::print(stderr, "warning: {}; only plain TCP can be measured\n", shunt_unavailable);

    std::map<const Workload*, Measured[2]> results;
    std::map<const Workload*, std::string> missing;
    int exit_status = 0;
    for (size_t wi = 0; wi < chosen.size(); ++wi) {
        const Workload& w = *chosen[wi];
        std::vector<std::string> paths, absent;
        for (const std::string& p : w.programs) {
            paths.push_back(find_program(p));
            if (paths.back().empty() && std::find(absent.begin(), absent.end(), p) == absent.end()) absent.push_back(p);
        }
        Measured* m = results[&w];
        for (Measured* x : {&m[0], &m[1]}) x->values.resize(w.metrics.size());
        if (!absent.empty()) {
            std::string list;
            for (const auto& a : absent) list += (list.empty() ? "" : ", ") + a;
            missing[&w] = list;
            fmt::print(stderr, "[{}/{}] {}: not installed: {}\n", wi + 1, chosen.size(), w.title, list);
            exit_status = 1;
            continue;
        }
        for (int run = 0; run < o.runs; ++run) {
            const Mode order[2] = {run % 2 ? kShunt : kPlain, run % 2 ? kPlain : kShunt};
            for (Mode mode : order) {
                fmt::print(stderr, "[{}/{}] {}: run {}/{} {:<5} ... ", wi + 1, chosen.size(), w.title, run + 1, o.runs,
                           kModeName[mode]);
                if (mode == kShunt && !shunt_unavailable.empty()) {
                    fmt::print(stderr, "not run (shunt run unavailable)\n");
                    if (run == 0) m[mode].errors.push_back(shunt_unavailable);
                    continue;
                }
                try {
                    const RunResult r = runner.run_once(w, paths, mode);
                    for (size_t k = 0; k < r.values.size() && k < w.metrics.size(); ++k) m[mode].values[k].push_back(r.values[k]);
                    m[mode].modes.add(r.modes);
                    m[mode].server_cpu.push_back(r.server_cpu);
                    m[mode].client_cpu.push_back(r.client_cpu);
                    std::string figures;
                    for (size_t k = 0; k < r.values.size(); ++k)
                        figures += fmt::format("{}{} {}", k ? ", " : "", fmt_value(r.values[k]), w.metrics[k].unit);
                    figures += fmt::format(" (CPU s server {:.2f}, client {:.2f})", r.server_cpu, r.client_cpu);
                    const bool seen = r.modes.smcd || r.modes.tcp;
                    fmt::print(stderr, "{}  [{}]\n", figures,
                               mode == kShunt ? r.modes.summary()
                               : seen         ? "WARNING: shunt connections in a plain run: " + r.modes.summary()
                                              : "plain TCP");
                } catch (const Interrupted&) {
                    fmt::print(stderr, "interrupted\n");
                    throw;
                } catch (const std::exception& e) {
                    fmt::print(stderr, "FAILED: {}\n", e.what());
                    m[mode].errors.push_back(fmt::format("run {} {}: {}", run + 1, kModeName[mode], e.what()));
                }
            }
        }
    }

    // ---- report ----
    nlohmann::json rows_json = nlohmann::json::array();
    std::vector<PlotBar> bars;
    if (!o.json) {
        fmt::print("\nshunt run vs TCP loopback: medians of {} run(s) of {} s, server on CPU {}, client on CPU {}\n", o.runs,
                   o.duration, o.server_cpu, o.client_cpu);
        fmt::print("CPU: seconds of user + system time during the client's run, server / client, medians\n");
        fmt::print("{:<31} {:<17} {:>12} {:>12} {:>9} {:>8}  {:<12} {:>11} {:>11}  {}\n", "workload", "metric", "TCP",
                   "shunt run", "shunt/TCP", "target", "result", "TCP CPU", "shunt CPU", "shunt connections");
    }
    for (const Workload* wp : chosen) {
        const Workload& w = *wp;
        const Measured* m = results[wp];
        for (size_t k = 0; k < w.metrics.size(); ++k) {
            const Metric& mt = w.metrics[k];
            const auto& pv = m[kPlain].values[k];
            const auto& sv = m[kShunt].values[k];
            const double plain = median(pv), shunt = median(sv);
            const bool measured = !pv.empty() && !sv.empty() && plain > 0 && shunt > 0;
            const double ratio = measured ? shunt / plain : 0;
            const bool met = measured && (mt.lower_is_better ? ratio <= mt.target : ratio >= mt.target);
            const bool smcd = m[kShunt].modes.all_smcd();
            std::string result, mode_note;
            if (missing.count(wp)) {
                result = "NOT MEASURED";
                mode_note = "not installed: " + missing[wp];
            } else {
                result = !measured ? "NOT MEASURED" : met ? "met" : "MISSED";
                mode_note = sv.empty() ? "-" : smcd ? "SMCD" : "WARNING " + m[kShunt].modes.summary();
                if (m[kPlain].modes.smcd) mode_note += " (WARNING: plain runs saw shunt connections)";
                if (!measured || !smcd || !m[kShunt].errors.empty() || !m[kPlain].errors.empty()) exit_status = 1;
            }
            if (measured)
                bars.push_back({fmt::format("{} {}", w.title, w.metrics.size() > 1 ? mt.name : ""),
                                mt.lower_is_better ? plain / shunt : ratio, mt.lower_is_better ? 1 / mt.target : mt.target});
            const std::string cmp = mt.lower_is_better ? "<=" : ">=";
            auto cpu_pair = [&](const Measured& x) {
                return x.server_cpu.empty() ? std::string("-")
                                            : fmt::format("{:.2f}/{:.2f}", median(x.server_cpu), median(x.client_cpu));
            };
            if (o.json) {
                rows_json.push_back({{"workload", w.id},
                                     {"title", w.title},
                                     {"metric", mt.name},
                                     {"unit", mt.unit},
                                     {"tcp",
                                      {{"median", plain},
                                       {"runs", pv},
                                       {"errors", m[kPlain].errors},
                                       {"server_cpu_s", median(m[kPlain].server_cpu)},
                                       {"client_cpu_s", median(m[kPlain].client_cpu)}}},
                                     {"shunt",
                                      {{"median", shunt},
                                       {"runs", sv},
                                       {"errors", m[kShunt].errors},
                                       {"server_cpu_s", median(m[kShunt].server_cpu)},
                                       {"client_cpu_s", median(m[kShunt].client_cpu)}}},
                                     {"ratio", ratio},
                                     {"target", cmp + fmt::format("{}", mt.target)},
                                     {"met", met},
                                     {"result", result},
                                     {"shunt_mode", mode_note},
                                     {"shunt_connections_seen", {{"smcd", m[kShunt].modes.smcd}, {"tcp", m[kShunt].modes.tcp}}}});
            } else {
                fmt::print("{:<31} {:<17} {:>12} {:>12} {:>8.3f}x {:>2}{:>5.2f}x  {:<12} {:>11} {:>11}  {}\n", w.title,
                           mt.name, pv.empty() ? "-" : fmt_value(plain) + " " + mt.unit,
                           sv.empty() ? "-" : fmt_value(shunt) + " " + mt.unit, ratio, cmp, mt.target, result,
                           cpu_pair(m[kPlain]), cpu_pair(m[kShunt]), mode_note);
            }
        }
    }
    if (!o.json) {
        for (const Workload* wp : chosen)
            for (int mode : {kPlain, kShunt})
                for (const std::string& e : results[wp][mode].errors) fmt::print("  {} ({}): {}\n", wp->title, kModeName[mode], e);
    }
    std::string plot_error;
    if (!o.plot.empty()) {
        try {
            write_speedup_plot(bars, fmt::format("shunt run vs TCP loopback, unmodified programs (medians of {} runs)", o.runs),
                               o.plot);
            if (!o.json) fmt::print("plot: {}\n", o.plot);
        } catch (const std::exception& e) {
            plot_error = e.what();
            fmt::print(stderr, "warning: no plot: {}\n", e.what());
        }
    }
    if (o.json) {
        nlohmann::json j{{"runs", o.runs},          {"duration_s", o.duration}, {"server_cpu", o.server_cpu},
                         {"client_cpu", o.client_cpu}, {"shunt_run", shunt_unavailable.empty() ? "ok" : shunt_unavailable},
                         {"rows", rows_json},        {"plot", plot_error.empty() ? o.plot : ""}};
        fmt::print("{}\n", j.dump(2));
    }
    return exit_status;
}

}  // namespace shunt::cli
