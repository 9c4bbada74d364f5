#include "core/blocking.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

namespace shunt {

std::optional<std::chrono::steady_clock::time_point> socket_deadline(int fd, int optname) {
    timeval tv{};
    socklen_t len = sizeof tv;
    if (::getsockopt(fd, SOL_SOCKET, optname, &tv, &len) != 0 || (tv.tv_sec == 0 && tv.tv_usec == 0))
        return std::nullopt;
    return std::chrono::steady_clock::now() + std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

bool restart_after_signal() {
    for (int sig = 1; sig < NSIG; ++sig) {
        // Faults are raised by the faulting instruction, never while a thread sleeps in a
        // system call; crash handlers (redis, sanitizers) are installed without SA_RESTART.
        if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP || sig == SIGSYS)
            continue;
        struct sigaction sa {};
        if (::sigaction(sig, nullptr, &sa) != 0) continue;  // glibc's own signals, invalid numbers
        const bool handled = (sa.sa_flags & SA_SIGINFO) ? sa.sa_sigaction != nullptr
                                                        : (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN);
        if (handled && !(sa.sa_flags & SA_RESTART)) return false;
    }
    return true;
}

}  // namespace shunt
