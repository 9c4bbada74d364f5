#include "preload/own_listeners.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace shunt::preload::own_listeners {
namespace {

// A count per port (one process may listen on a port at several addresses) and the process
// that listened: a forked child inherits the counts with the listening sockets, but the
// listening is its parent's (epoll test peers, nginx workers connecting back).
std::atomic<uint16_t> g_listening[65536];
std::atomic<pid_t> g_owner[65536];

}  // namespace

void add(uint16_t port) {
    g_owner[port].store(::getpid(), std::memory_order_relaxed);
    g_listening[port].fetch_add(1, std::memory_order_relaxed);
}

void remove(uint16_t port) {
    uint16_t n = g_listening[port].load(std::memory_order_relaxed);
    while (n > 0 && !g_listening[port].compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) {
    }
}

bool has(uint16_t port) {
    return g_listening[port].load(std::memory_order_relaxed) > 0 && g_owner[port].load(std::memory_order_relaxed) == ::getpid();
}

bool single_threaded() {
    // /proc/self/stat field 20 is num_threads; the command (field 2) may hold spaces.
    char buf[1024];
    const int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return false;
    buf[n] = '\0';
    const char* p = std::strrchr(buf, ')');
    for (int field = 2; p && field < 20; ++field) p = std::strchr(p + 1, ' ');
    return p && std::atol(p + 1) == 1;
}

}  // namespace shunt::preload::own_listeners
