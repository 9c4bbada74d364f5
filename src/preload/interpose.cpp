// The symbols libshunt-preload.so puts in front of the C library. Each one costs a byte load
// for a descriptor we do not follow and goes straight on; the rest is in ops.hpp.
#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <vector>

#include "preload/deadline.hpp"
#include "preload/guard.hpp"
#include "preload/ops.hpp"
#include "preload/real.hpp"

using namespace shunt::preload;

#define SHUNT_EXPORT extern "C" __attribute__((visibility("default")))

extern "C" [[noreturn]] void __chk_fail();

namespace {

FdKind kind_of(int fd) { return inside_shunt ? FdKind::None : FdTable::instance().kind(fd); }
// Any descriptor we follow at all (life cycle calls).
bool followed(int fd) { return kind_of(fd) != FdKind::None; }
// A connection whose data may be ours.
std::shared_ptr<SocketState> data_state(int fd) {
    const FdKind k = kind_of(fd);
    return k == FdKind::Smcd || k == FdKind::PendingTcp ? smcd_state(fd) : nullptr;
}


[[gnu::constructor]] void start() {
    (void)libc();
    install_fork_handlers();
}

}  // namespace

// ---- life cycle ----

SHUNT_EXPORT int socket(int domain, int type, int protocol) {
    if (inside_shunt) return libc().socket(domain, type, protocol);
    return on_socket(domain, type, protocol);
}
SHUNT_EXPORT int listen(int fd, int backlog) {
    return followed(fd) ? on_listen(fd, backlog) : libc().listen(fd, backlog);
}
SHUNT_EXPORT int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
    return followed(fd) ? on_accept(fd, addr, len, flags) : libc().accept4(fd, addr, len, flags);
}
SHUNT_EXPORT int accept(int fd, sockaddr* addr, socklen_t* len) {
    return followed(fd) ? on_accept(fd, addr, len, 0) : libc().accept(fd, addr, len);
}
SHUNT_EXPORT int connect(int fd, const sockaddr* addr, socklen_t len) {
    return followed(fd) ? on_connect(fd, addr, len) : libc().connect(fd, addr, len);
}
SHUNT_EXPORT int close(int fd) { return followed(fd) ? on_close(fd) : libc().close(fd); }
SHUNT_EXPORT int close_range(unsigned first, unsigned last, int flags) {
    if (inside_shunt) return libc().close_range ? libc().close_range(first, last, flags) : (errno = ENOSYS, -1);
    return on_close_range(first, last, flags);
}
SHUNT_EXPORT void closefrom(int lowfd) {
    // glibc's own closefrom does not come back through close_range(): it needs its own entry.
    close_range(static_cast<unsigned>(std::max(lowfd, 0)), ~0U, 0);
}
SHUNT_EXPORT int dup(int fd) { return followed(fd) ? on_dup(fd, -1, 0, 0) : libc().dup(fd); }
SHUNT_EXPORT int dup2(int fd, int newfd) {
    return followed(fd) || followed(newfd) ? on_dup(fd, newfd, 0, 2) : libc().dup2(fd, newfd);
}
SHUNT_EXPORT int dup3(int fd, int newfd, int flags) {
    return followed(fd) || followed(newfd) ? on_dup(fd, newfd, flags, 3) : libc().dup3(fd, newfd, flags);
}
SHUNT_EXPORT int shutdown(int fd, int how) {
    return kind_of(fd) == FdKind::Smcd ? on_shutdown(fd, how) : libc().shutdown(fd, how);
}

namespace {
int fcntl_impl(int fd, int cmd, void* arg) {
    if (!followed(fd)) return libc().fcntl(fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) return on_dup(fd, static_cast<int>(reinterpret_cast<intptr_t>(arg)), cmd, 'F');
    const int r = libc().fcntl(fd, cmd, arg);
    if (r == 0 && cmd == F_SETFL) on_nonblock_change(fd, (reinterpret_cast<intptr_t>(arg) & O_NONBLOCK) != 0);
    return r;
}
}  // namespace

SHUNT_EXPORT int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    return fcntl_impl(fd, cmd, arg);
}
SHUNT_EXPORT int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    return fcntl_impl(fd, cmd, arg);
}

SHUNT_EXPORT int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    if (!followed(fd)) return libc().ioctl(fd, request, arg);
    if ((request == SIOCINQ || request == SIOCOUTQ) && arg) {
        if (on_ioctl_size(fd, request, static_cast<int*>(arg)) == 0) return 0;
    }
    const int r = libc().ioctl(fd, request, arg);
    if (r == 0 && request == FIONBIO && arg) on_nonblock_change(fd, *static_cast<int*>(arg) != 0);
    return r;
}

SHUNT_EXPORT int getsockopt(int fd, int level, int name, void* value, socklen_t* len) {
    const FdKind k = kind_of(fd);
    return k == FdKind::Smcd || k == FdKind::PendingTcp ? on_getsockopt(fd, level, name, value, len)
                                       : libc().getsockopt(fd, level, name, value, len);
}

SHUNT_EXPORT pid_t fork() { return on_fork(); }

SHUNT_EXPORT pid_t vfork() {
    // A vfork child shares our memory: anything it did through the preload (a close before
    // exec) would change the parent's state. A real fork keeps the two apart.
    return on_fork();
}

// ---- exec and posix_spawn (exec.cpp) ----

namespace {
// The arguments of execl/execlp/execle after `first`, up to and including the NULL.
std::vector<char*> list_args(const char* first, va_list& ap) {
    std::vector<char*> argv{const_cast<char*>(first)};
    while (argv.back()) argv.push_back(va_arg(ap, char*));
    return argv;
}
}  // namespace

SHUNT_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) {
    if (!inside_shunt) before_exec(path, false);
    return libc().execve(path, argv, envp);
}
SHUNT_EXPORT int execv(const char* path, char* const argv[]) {
    if (!inside_shunt) before_exec(path, false);
    return libc().execv(path, argv);
}
SHUNT_EXPORT int execvp(const char* file, char* const argv[]) {
    if (!inside_shunt) before_exec(file, true);
    return libc().execvp(file, argv);
}
SHUNT_EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) {
    if (!inside_shunt) before_exec(file, true);
    return libc().execvpe(file, argv, envp);
}
SHUNT_EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) {
    if (!inside_shunt) before_exec(nullptr, false);
    return libc().fexecve(fd, argv, envp);
}
SHUNT_EXPORT int execveat(int dirfd, const char* path, char* const argv[], char* const envp[], int flags) {
    if (!libc().execveat) {
        errno = ENOSYS;
        return -1;
    }
    if (!inside_shunt) before_exec(nullptr, false);
    return libc().execveat(dirfd, path, argv, envp, flags);
}
SHUNT_EXPORT int execl(const char* path, const char* arg, ...) {
    va_list ap;
    va_start(ap, arg);
    std::vector<char*> argv = list_args(arg, ap);
    va_end(ap);
    return execv(path, argv.data());
}
SHUNT_EXPORT int execlp(const char* file, const char* arg, ...) {
    va_list ap;
    va_start(ap, arg);
    std::vector<char*> argv = list_args(arg, ap);
    va_end(ap);
    return execvp(file, argv.data());
}
SHUNT_EXPORT int execle(const char* path, const char* arg, ...) {
    va_list ap;
    va_start(ap, arg);
    std::vector<char*> argv = list_args(arg, ap);
    char* const* envp = va_arg(ap, char* const*);
    va_end(ap);
    return execve(path, argv.data(), envp);
}
SHUNT_EXPORT int posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* actions,
                             const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
    if (!inside_shunt) before_spawn(path, false, actions);
    return libc().posix_spawn(pid, path, actions, attr, argv, envp);
}
SHUNT_EXPORT int posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* actions,
                              const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
    if (!inside_shunt) before_spawn(file, true, actions);
    return libc().posix_spawnp(pid, file, actions, attr, argv, envp);
}
SHUNT_EXPORT int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t* actions, int fd, int newfd) {
    const int r = libc().posix_spawn_file_actions_adddup2(actions, fd, newfd);
    if (r == 0 && kind_of(fd) == FdKind::Smcd) on_spawn_adddup2(actions, fd);
    return r;
}
SHUNT_EXPORT int posix_spawn_file_actions_init(posix_spawn_file_actions_t* actions) {
    on_spawn_actions_destroy(actions);  // a new object where an old one was
    return libc().posix_spawn_file_actions_init(actions);
}
SHUNT_EXPORT int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t* actions) {
    on_spawn_actions_destroy(actions);
    return libc().posix_spawn_file_actions_destroy(actions);
}

// ---- data ----

SHUNT_EXPORT ssize_t read(int fd, void* buf, size_t n) {
    if (auto s = data_state(fd)) {
        iovec v{buf, n};
        return on_recv(*s, &v, 1, 0);
    }
    return libc().read(fd, buf, n);
}
SHUNT_EXPORT ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
    if (n > buflen) __chk_fail();
    return read(fd, buf, n);
}
SHUNT_EXPORT ssize_t readv(int fd, const iovec* iov, int iovcnt) {
    if (auto s = data_state(fd)) return on_recv(*s, iov, iovcnt, 0);
    return libc().readv(fd, iov, iovcnt);
}
SHUNT_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) {
    if (auto s = data_state(fd)) {
        iovec v{buf, n};
        return on_recv(*s, &v, 1, flags);
    }
    return libc().recv(fd, buf, n, flags);
}
SHUNT_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
    if (n > buflen) __chk_fail();
    return recv(fd, buf, n, flags);
}
SHUNT_EXPORT ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* fromlen) {
    if (auto s = data_state(fd)) {
        iovec v{buf, n};
        const ssize_t r = on_recv(*s, &v, 1, flags);
        if (r >= 0 && from && fromlen) *fromlen = 0;  // a connected stream names no sender
        return r;
    }
    return libc().recvfrom(fd, buf, n, flags, from, fromlen);
}
SHUNT_EXPORT ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from,
                                    socklen_t* fromlen) {
    if (n > buflen) __chk_fail();
    return recvfrom(fd, buf, n, flags, from, fromlen);
}
SHUNT_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) {
    if (auto s = data_state(fd)) return on_recvmsg(*s, msg, flags);
    return libc().recvmsg(fd, msg, flags);
}
SHUNT_EXPORT int recvmmsg(int fd, mmsghdr* msgs, unsigned vlen, int flags, timespec* timeout) {
    auto s = data_state(fd);
    if (!s) return libc().recvmmsg(fd, msgs, vlen, flags, timeout);
    unsigned i = 0;
    for (; i < vlen; ++i) {
        const int f = (flags & ~MSG_WAITFORONE) | (i > 0 && (flags & MSG_WAITFORONE) ? MSG_DONTWAIT : 0);
        const ssize_t n = on_recvmsg(*s, &msgs[i].msg_hdr, f);
        if (n < 0) {
            if (i > 0) break;
            return -1;
        }
        msgs[i].msg_len = static_cast<unsigned>(n);
        if (n == 0) {
            ++i;
            break;
        }
    }
    return static_cast<int>(i);
}

SHUNT_EXPORT ssize_t write(int fd, const void* buf, size_t n) {
    if (auto s = data_state(fd)) {
        iovec v{const_cast<void*>(buf), n};
        return on_send(*s, &v, 1, 0);
    }
    return libc().write(fd, buf, n);
}
SHUNT_EXPORT ssize_t writev(int fd, const iovec* iov, int iovcnt) {
    if (auto s = data_state(fd)) return on_send(*s, iov, iovcnt, 0);
    return libc().writev(fd, iov, iovcnt);
}
SHUNT_EXPORT ssize_t send(int fd, const void* buf, size_t n, int flags) {
    if (auto s = data_state(fd)) {
        iovec v{const_cast<void*>(buf), n};
        return on_send(*s, &v, 1, flags);
    }
    return libc().send(fd, buf, n, flags);
}
SHUNT_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t tolen) {
    if (auto s = data_state(fd)) {  // a connected stream ignores the address, as TCP does
        iovec v{const_cast<void*>(buf), n};
        return on_send(*s, &v, 1, flags);
    }
    return libc().sendto(fd, buf, n, flags, to, tolen);
}
SHUNT_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
    if (auto s = data_state(fd)) return on_send(*s, msg->msg_iov, static_cast<int>(msg->msg_iovlen), flags);
    return libc().sendmsg(fd, msg, flags);
}
SHUNT_EXPORT int sendmmsg(int fd, mmsghdr* msgs, unsigned vlen, int flags) {
    auto s = data_state(fd);
    if (!s) return libc().sendmmsg(fd, msgs, vlen, flags);
    unsigned i = 0;
    for (; i < vlen; ++i) {
        const ssize_t n = on_send(*s, msgs[i].msg_hdr.msg_iov, static_cast<int>(msgs[i].msg_hdr.msg_iovlen), flags);
        if (n < 0) {
            if (i > 0) break;
            return -1;
        }
        msgs[i].msg_len = static_cast<unsigned>(n);
    }
    return static_cast<int>(i);
}
SHUNT_EXPORT ssize_t sendfile(int out, int in, off_t* offset, size_t count) {
    if (auto s = data_state(out)) return on_sendfile(*s, in, offset, count);
    return libc().sendfile(out, in, offset, count);
}
SHUNT_EXPORT ssize_t sendfile64(int out, int in, off_t* offset, size_t count) { return sendfile(out, in, offset, count); }
SHUNT_EXPORT ssize_t splice(int in, loff_t* off_in, int out, loff_t* off_out, size_t len, unsigned flags) {
    auto to = data_state(out);
    auto from = data_state(in);
    if (to && !from) return on_splice_in(*to, in, off_in, len, flags);
    if (from && !to) return on_splice_out(*from, out, off_out, len, flags);
    if (from && to) {  // ring to ring: through a buffer, as read + write would
        errno = EINVAL;
        return -1;
    }
    return libc().splice(in, off_in, out, off_out, len, flags);
}

// ---- readiness ----

// glibc declares poll's array write-only (for fortify), so GCC takes our reading of the
// events the caller filled in for a read of uninitialised memory.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

SHUNT_EXPORT int poll(pollfd* fds, nfds_t nfds, int timeout) {
    if (inside_shunt || !any_smcd(fds, nfds)) return libc().poll(fds, nfds, timeout);
    const timespec ts = from_ms(timeout);
    return on_poll(fds, nfds, timeout >= 0 ? &ts : nullptr, nullptr);
}
SHUNT_EXPORT int __poll_chk(pollfd* fds, nfds_t nfds, int timeout, size_t fdslen) {
    if (fdslen / sizeof(pollfd) < nfds) __chk_fail();
    return poll(fds, nfds, timeout);
}
SHUNT_EXPORT int ppoll(pollfd* fds, nfds_t nfds, const timespec* timeout, const sigset_t* mask) {
    if (inside_shunt || !any_smcd(fds, nfds)) return libc().ppoll(fds, nfds, timeout, mask);
    return on_poll(fds, nfds, timeout, mask);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
SHUNT_EXPORT int __ppoll_chk(pollfd* fds, nfds_t nfds, const timespec* timeout, const sigset_t* mask, size_t fdslen) {
    if (fdslen / sizeof(pollfd) < nfds) __chk_fail();
    return ppoll(fds, nfds, timeout, mask);
}

namespace {
bool sets_hold_smcd(int nfds, const fd_set* r, const fd_set* w, const fd_set* e) {
    const FdTable& t = FdTable::instance();
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; ++fd) {
        if (!((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e)))) continue;
        const FdKind k = t.kind(fd);
        if (k == FdKind::Epoll) mark_nested(fd);  // an emulated epoll set, selected
        if (k == FdKind::Smcd) return true;
    }
    return false;
}
}  // namespace

SHUNT_EXPORT int select(int nfds, fd_set* r, fd_set* w, fd_set* e, timeval* timeout) {
    if (inside_shunt || !sets_hold_smcd(nfds, r, w, e)) return libc().select(nfds, r, w, e, timeout);
    timespec ts{};
    if (timeout) ts = {timeout->tv_sec, timeout->tv_usec * 1000};
    const auto start = std::chrono::steady_clock::now();
    const int n = on_select(nfds, r, w, e, timeout ? &ts : nullptr, nullptr);
    if (timeout) {  // Linux leaves the time not slept in *timeout
        const auto used = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
        const long long left = std::max<long long>(0, timeout->tv_sec * 1000000LL + timeout->tv_usec - used);
        timeout->tv_sec = left / 1000000;
        timeout->tv_usec = left % 1000000;
    }
    return n;
}
SHUNT_EXPORT int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* timeout, const sigset_t* mask) {
    if (inside_shunt || !sets_hold_smcd(nfds, r, w, e)) return libc().pselect(nfds, r, w, e, timeout, mask);
    return on_select(nfds, r, w, e, timeout, mask);
}

SHUNT_EXPORT int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
    const FdKind k = kind_of(fd);
    if (k == FdKind::None && kind_of(epfd) != FdKind::Epoll) return libc().epoll_ctl(epfd, op, fd, ev);
    return on_epoll_ctl(epfd, op, fd, ev);
}
// An untracked descriptor goes through on_epoll_wait too: another thread may add a connection
// to the set while we wait, and the events of our entries must then not reach the application.
namespace {
bool maybe_emulated(int epfd) {
    const FdKind k = kind_of(epfd);
    return k == FdKind::Epoll || k == FdKind::None;
}
}  // namespace

SHUNT_EXPORT int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout) {
    if (!maybe_emulated(epfd)) return libc().epoll_wait(epfd, events, maxevents, timeout);
    const timespec ts = from_ms(timeout);
    return on_epoll_wait(epfd, events, maxevents, timeout >= 0 ? &ts : nullptr, nullptr);
}
SHUNT_EXPORT int epoll_pwait(int epfd, epoll_event* events, int maxevents, int timeout, const sigset_t* mask) {
    if (!maybe_emulated(epfd)) return libc().epoll_pwait(epfd, events, maxevents, timeout, mask);
    const timespec ts = from_ms(timeout);
    return on_epoll_wait(epfd, events, maxevents, timeout >= 0 ? &ts : nullptr, mask);
}
SHUNT_EXPORT int epoll_pwait2(int epfd, epoll_event* events, int maxevents, const timespec* timeout, const sigset_t* mask) {
    if (!maybe_emulated(epfd)) {
        if (!libc().epoll_pwait2) {
            errno = ENOSYS;
            return -1;
        }
        return libc().epoll_pwait2(epfd, events, maxevents, timeout, mask);
    }
    return on_epoll_wait(epfd, events, maxevents, timeout, mask);
}
