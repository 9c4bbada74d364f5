// Child processes for `shunt bench apps`: process groups, pinning, output files, cleanup on
// every exit path (destructor, SIGINT/SIGTERM, our own death via PR_SET_PDEATHSIG).
#include "cli/child_process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

namespace shunt::cli {
namespace {

std::atomic<bool> g_interrupted{false};
std::array<std::atomic<pid_t>, 64> g_groups{};  // live child groups, for the signal handler

void register_group(pid_t pg) {
    for (auto& slot : g_groups) {
        pid_t empty = 0;
        if (slot.compare_exchange_strong(empty, pg)) return;
    }
}

void unregister_group(pid_t pg) {
    for (auto& slot : g_groups) {
        pid_t want = pg;
        if (slot.compare_exchange_strong(want, 0)) return;
    }
}

extern "C" void on_interrupt(int) {
    g_interrupted.store(true);
    for (auto& slot : g_groups) {
        const pid_t pg = slot.load();
        if (pg > 0) ::kill(-pg, SIGKILL);
    }
}

}  // namespace

Child::Child(const SpawnSpec& spec) {
    std::vector<char*> argv;
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::setpgid(0, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(126);
        ::signal(SIGINT, SIG_DFL);
        ::signal(SIGTERM, SIG_DFL);
        if (spec.cpu >= 0 && spec.cpu < CPU_SETSIZE) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(spec.cpu, &set);
            ::sched_setaffinity(0, sizeof set, &set);
        }
        const int in = ::open("/dev/null", O_RDONLY);
        const int out = ::open(spec.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err = spec.stderr_path == spec.stdout_path
                            ? out
                            : ::open(spec.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0) ::_exit(126);
        ::dup2(in, 0);
        ::dup2(out, 1);
        ::dup2(err, 2);
        for (const auto& [k, v] : spec.env) ::setenv(k.c_str(), v.c_str(), 1);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::setpgid(pid, pid);  // also here, so the group exists before we may need to kill it
    pid_ = pid;
    register_group(pid);
}

Child::Child(Child&& o) noexcept : pid_(o.pid_), status_(o.status_) { o.pid_ = -1; }

Child& Child::operator=(Child&& o) noexcept {
    if (this != &o) {
        kill_group();
        pid_ = o.pid_;
        status_ = o.status_;
        o.pid_ = -1;
    }
    return *this;
}

Child::~Child() { kill_group(); }

void Child::reaped(int status, const rusage& ru) {
    status_ = status;
    cpu_ = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

bool Child::running() {
    if (pid_ < 0 || status_) return false;
    int st = 0;
    rusage ru{};
    if (::wait4(pid_, &st, WNOHANG, &ru) == pid_) reaped(st, ru);
    return !status_;
}

std::optional<int> Child::wait_for(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (running()) {
        if (g_interrupted.load()) throw Interrupted();
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (g_interrupted.load()) throw Interrupted();
    return status_;
}

void Child::kill_group() {
    if (pid_ < 0) return;
    ::kill(-pid_, SIGKILL);  // the leader may be gone while its group (nginx workers) lives on
    if (!status_) {
        int st = 0;
        rusage ru{};
        ::wait4(pid_, &st, 0, &ru);
        reaped(st, ru);
    }
    unregister_group(pid_);
    pid_ = -1;
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return fmt::format("exit {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return fmt::format("signal {}", WTERMSIG(status));
    return fmt::format("status {}", status);
}

void install_interrupt_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() { return g_interrupted.load(); }

std::string find_program(const std::string& name) {
    const char* env = std::getenv("PATH");
    std::string path = env ? env : "/usr/local/bin:/usr/bin:/bin";
    path += ":/usr/local/sbin:/usr/sbin:/sbin";
    size_t b = 0;
    while (b <= path.size()) {
        size_t e = path.find(':', b);
        if (e == std::string::npos) e = path.size();
        if (e > b) {
            const std::string cand = path.substr(b, e - b) + "/" + name;
            struct stat st {};
            if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0) return cand;
        }
        b = e + 1;
    }
    return "";
}

namespace {

struct ProcStat {
    long pgrp = 0;
    double cpu_seconds = 0;
};

// /proc/<pid>/stat: the process group and utime + stime (fields 5, 14 and 15).
std::optional<ProcStat> read_proc_stat(const std::string& pid) {
    static const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    std::ifstream in("/proc/" + pid + "/stat");
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    const size_t paren = line.rfind(')');  // the command may hold spaces and parentheses
    if (paren == std::string::npos || paren + 2 > line.size()) return std::nullopt;
    std::istringstream f(line.substr(paren + 2));
    std::string state;
    long ppid = 0;
    ProcStat st;
    f >> state >> ppid >> st.pgrp;
    unsigned long long v = 0, utime = 0, stime = 0;
    for (int field = 6; field <= 15 && (f >> v); ++field) {
        if (field == 14) utime = v;
        if (field == 15) stime = v;
    }
    if (!f) return std::nullopt;
    st.cpu_seconds = static_cast<double>(utime + stime) / ticks;
    return st;
}

}  // namespace

double process_cpu_seconds(pid_t pid) {
    const auto st = read_proc_stat(std::to_string(pid));
    return st ? st->cpu_seconds : 0;
}

double group_cpu_seconds(pid_t pgid) {
    double total = 0;
    DIR* proc = ::opendir("/proc");
    if (!proc) return 0;
    while (dirent* e = ::readdir(proc)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        if (const auto st = read_proc_stat(e->d_name); st && st->pgrp == pgid) total += st->cpu_seconds;
    }
    ::closedir(proc);
    return total;
}

}  // namespace shunt::cli
