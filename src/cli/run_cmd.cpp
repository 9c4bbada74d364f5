// `shunt run [options] -- PROGRAM ARGS...`: run an unmodified program with libshunt-preload.so
// (smc_run's counterpart). Options become the environment variables the preload reads, so a
// program's children inherit them with the preload.
#include <link.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "preload/address_rules.hpp"

namespace shunt::cli {
namespace {

struct RunOptions {
    std::string buffer_size, spin_us, rundir, debug, allow, deny, ueid, preload;
    bool debug_stderr = false;
    std::vector<std::string> command;
};

// libshunt-preload.so relative to this binary: where `cmake --install` and the package put it
// (SHUNT_PRELOAD_INSTALL_REL, e.g. ../lib/x86_64-linux-gnu/shunt/), then the build tree (bin/
// and lib/ side by side). Relative, so an installed tree works under any prefix.
std::string find_preload(const std::string& given) {
    if (!given.empty()) return given;
    if (const char* v = std::getenv("SHUNT_PRELOAD_LIB"); v && *v) return v;
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    for (const char* rel : {SHUNT_PRELOAD_INSTALL_REL, "../lib/libshunt-preload.so", "../lib/shunt/libshunt-preload.so",
                            "libshunt-preload.so"}) {
        const auto p = exe.parent_path() / rel;
        if (std::filesystem::exists(p, ec)) return std::filesystem::canonical(p, ec).string();
    }
    throw std::runtime_error("cannot find libshunt-preload.so (set SHUNT_PRELOAD_LIB or --preload)");
}

#if defined(__SANITIZE_ADDRESS__)
// A sanitizer build of the preload needs the sanitizer runtime loaded first in the program.
std::string sanitizer_runtime() {
    std::string found;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* out) {
            if (info->dlpi_name && std::strstr(info->dlpi_name, "libasan.so")) *static_cast<std::string*>(out) = info->dlpi_name;
            return 0;
        },
        &found);
    return found;
}
#endif

void set(const char* name, const std::string& value) {
    if (!value.empty()) ::setenv(name, value.c_str(), 1);
}

[[noreturn]] void run(const RunOptions& o) {
    for (auto [name, spec] : {std::pair{"--allow", &o.allow}, std::pair{"--deny", &o.deny}}) {
        std::string bad;
        if (!spec->empty() && !preload::parse_rules(*spec, &bad))
            throw CLI::ValidationError(name, fmt::format("cannot parse '{}' (ports, ranges, addresses, prefixes, addr:port)", bad));
    }
    std::string preload = find_preload(o.preload);
#if defined(__SANITIZE_ADDRESS__)
    if (auto rt = sanitizer_runtime(); !rt.empty()) preload = rt + ":" + preload;
    std::string asan = std::getenv("ASAN_OPTIONS") ? std::getenv("ASAN_OPTIONS") : "";
    ::setenv("ASAN_OPTIONS", (asan + (asan.empty() ? "" : ":") + "detect_leaks=0").c_str(), 1);
#endif
    if (const char* old = std::getenv("LD_PRELOAD"); old && *old) preload += std::string(":") + old;
    ::setenv("LD_PRELOAD", preload.c_str(), 1);
    set("SHUNT_BUFFER_SIZE", o.buffer_size);
    set("SHUNT_SPIN_US", o.spin_us);
    set("SHUNT_RUNDIR", o.rundir);
    set("SHUNT_UEID", o.ueid);
    set("SHUNT_ALLOW", o.allow);
    set("SHUNT_DENY", o.deny);
    set("SHUNT_DEBUG", o.debug_stderr && o.debug.empty() ? std::string("1") : o.debug);
    std::vector<char*> argv;
    for (const auto& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    const int err = errno;
    fmt::print(stderr, "shunt run: {}: {}\n", o.command[0], std::strerror(err));
    std::exit(err == ENOENT ? 127 : 126);
}

}  // namespace

void add_run_commands(CLI::App& app) {
    auto o = std::make_shared<RunOptions>();
    auto* cmd = app.add_subcommand("run", "run an unmodified program with its TCP connections accelerated (like smc_run)");
    cmd->add_option("--buffer-size", o->buffer_size, "receive buffer (DMB) per connection: bytes, k/m suffix, 16k..1m (SHUNT_BUFFER_SIZE)");
    cmd->add_option("--spin-us", o->spin_us, "longest spin before sleeping, taken while recent waits say it pays; 0: never spin (SHUNT_SPIN_US, default 5)");
    cmd->add_option("--rundir", o->rundir, "rendezvous directory shared with the peers (SHUNT_RUNDIR)");
    cmd->add_option("--ueid", o->ueid, "user EID both ends must share (SHUNT_UEID, default SHUNT)");
    cmd->add_option("--allow", o->allow, "accelerate only these: ports, ranges, addresses, prefixes, addr:port (SHUNT_ALLOW)");
    cmd->add_option("--deny", o->deny, "never accelerate these, same forms (SHUNT_DENY)");
    cmd->add_flag("-d,--debug", o->debug_stderr, "log each decision to stderr (SHUNT_DEBUG=1)");
    cmd->add_option("--debug-file", o->debug, "log each decision to this file (SHUNT_DEBUG=FILE)");
    cmd->add_option("--preload", o->preload, "path of libshunt-preload.so (SHUNT_PRELOAD_LIB)");
    cmd->add_option("command", o->command, "program and its arguments (after --)")->required();
    cmd->callback([o] { run(*o); });
}

}  // namespace shunt::cli
