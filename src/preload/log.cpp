#include "preload/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>

#include "preload/guard.hpp"
#include "preload/real.hpp"

namespace shunt::preload {
namespace {

// -1: off; otherwise where lines go.
int open_log() {
    const char* v = std::getenv("SHUNT_DEBUG");
    if (!v || !*v || std::strcmp(v, "0") == 0) return -1;
    if (std::strcmp(v, "1") == 0 || std::strcmp(v, "stderr") == 0) return STDERR_FILENO;
    const int fd = ::open(v, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    return fd >= 0 ? fd : STDERR_FILENO;
}

int log_fd() {
    static const int fd = open_log();
    return fd;
}

[[gnu::format(printf, 2, 0)]] void emit(int fd, const char* fmt, va_list ap) {
    InsideShunt guard;
    SavedErrno keep;
    char line[512];
    int n = std::snprintf(line, sizeof line, "shunt[%d] ", static_cast<int>(::getpid()));
    if (n < 0) return;
    const int m = std::vsnprintf(line + n, sizeof line - static_cast<size_t>(n) - 1, fmt, ap);
    if (m < 0) return;
    n = std::min<int>(n + m, static_cast<int>(sizeof line) - 2);
    line[n++] = '\n';
    (void)libc().write(fd, line, static_cast<size_t>(n));
}

}  // namespace

SavedErrno::SavedErrno() : saved_(errno) {}
SavedErrno::~SavedErrno() { errno = saved_; }

bool log_enabled() { return log_fd() >= 0; }

void log_debug(const char* fmt, ...) {
    const int fd = log_fd();
    if (fd < 0) return;
    va_list ap;
    va_start(ap, fmt);
    emit(fd, fmt, ap);
    va_end(ap);
}

void log_always(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    emit(log_fd() >= 0 ? log_fd() : STDERR_FILENO, fmt, ap);
    va_end(ap);
}

}  // namespace shunt::preload
