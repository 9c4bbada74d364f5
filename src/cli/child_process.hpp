#pragma once
// Child processes for `shunt bench apps`: each runs in its own process group (so a server's
// workers die with it), pinned to a CPU, with stdout/stderr in files, and dies with us (parent
// death signal). Every live group is listed so that SIGINT/SIGTERM kill them all before we exit.
#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace shunt::cli {

struct SpawnSpec {
    std::vector<std::string> argv;
    std::vector<std::pair<std::string, std::string>> env;  // added to ours
    int cpu = -1;                                          // -1: not pinned
    std::string stdout_path = "/dev/null", stderr_path = "/dev/null";
};

class Child {
public:
    Child() = default;
    explicit Child(const SpawnSpec& spec);  // throws if fork fails; exec failure = exit 127
    Child(Child&& o) noexcept;
    Child& operator=(Child&& o) noexcept;
    ~Child();  // kills the group and reaps

    pid_t pid() const { return pid_; }
    bool running();  // false once it has exited (reaped here)
    // Waits up to `limit`; the exit status (as waitpid gives it) or nullopt on timeout.
    std::optional<int> wait_for(std::chrono::milliseconds limit);
    void kill_group();  // SIGKILL to the whole group, then reap the leader
    // CPU seconds (user + system) the leader and the children it reaped used, once it has
    // exited; nullopt before.
    std::optional<double> cpu_seconds() const { return cpu_; }

private:
    void reaped(int status, const rusage& ru);
    pid_t pid_ = -1;
    std::optional<int> status_;
    std::optional<double> cpu_;
};

// CPU seconds (user + system) used so far by the live processes of process group `pgid`
// (a server and its workers), from /proc.
double group_cpu_seconds(pid_t pgid);
// CPU seconds (user + system, all threads) used so far by process `pid`, from /proc.
double process_cpu_seconds(pid_t pid);

// A readable account of a waitpid status: "exit 0", "exit 127", "signal 9".
std::string describe_status(int status);

// SIGINT/SIGTERM: kill every live child group and set the flag; waits notice it and throw.
void install_interrupt_handler();
bool interrupted();
struct Interrupted : std::exception {
    const char* what() const noexcept override { return "interrupted"; }
};

// The program's full path (PATH, then the sbin directories), or "" if it is not installed.
std::string find_program(const std::string& name);

}  // namespace shunt::cli
