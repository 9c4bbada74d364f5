// exec and posix_spawn: what a new program image inherits.
//
// A new program image cannot reach a connection's rings: it gets the TCP socket and nothing
// else (it may not even be preloaded). So before an exec every accelerated connection whose
// descriptor survives it (no FD_CLOEXEC) is handed to TCP: both sides go on over the socket,
// each resending what the other had not read (Connection::hand_off and take_over), and
// `shunt stat` lists it as TCP with reason HANDOFF. The connections exec closes (FD_CLOEXEC)
// are let go as close() would let go of them: the last process holding one closes it with the
// close flag, instead of the peer learning from a bare TCP EOF that its process is gone.
//
// posix_spawn creates its child without calling us, so the parent hands over beforehand the
// connections the child will inherit: no FD_CLOEXEC, or the source of an adddup2 action (the
// copy it makes has no FD_CLOEXEC). The parent goes on over TCP too: the socket is shared.
//
// If the peer had already closed when we hand off, nobody is left to resend over TCP what the
// program had not read yet: the new image then reads those bytes, and EOF, from a socketpair
// put in the socket's place.
//
// An exec that fails leaves the process with connections that are plain TCP, which keep
// working. For the common failures (execvp trying PATH entries, a missing file) nothing
// changes at all: the target is looked up first.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "preload/guard.hpp"
#include "preload/log.hpp"
#include "preload/ops.hpp"
#include "preload/real.hpp"

namespace shunt::preload {
namespace {

bool executable(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// Whether exec of `path` can succeed (nullptr: cannot tell, assume so).
bool will_run(const char* path, bool search) {
    if (!path) return true;
    if (!*path) return false;
    if (!search || std::strchr(path, '/')) return executable(path);
    const char* env = std::getenv("PATH");
    std::string_view dirs = env && *env ? env : "/bin:/usr/bin";
    for (;;) {
        const size_t colon = dirs.find(':');
        const std::string_view dir = dirs.substr(0, colon);
        if (executable((dir.empty() ? std::string(".") : std::string(dir)) + "/" + path)) return true;
        if (colon == std::string_view::npos) return false;
        dirs.remove_prefix(colon + 1);
    }
}

// The accelerated descriptors named by each posix_spawn_file_actions_adddup2, per actions object.
std::mutex g_dup2_mu;
std::map<const void*, std::vector<int>> g_dup2;

struct Held {
    std::shared_ptr<SocketState> s;
    bool inherited = false;
    std::vector<int> fds;  // the inherited descriptors naming it
};

// Every accelerated connection of this process, and whether a new image inherits it.
std::map<SocketState*, Held> connections(const std::vector<int>& also_inherited) {
    std::map<SocketState*, Held> out;
    FdTable& t = FdTable::instance();
    for (auto& [fd, tracked] : t.snapshot()) {
        if (t.kind(fd) != FdKind::Smcd) continue;
        auto s = std::dynamic_pointer_cast<SocketState>(tracked);
        if (!s || !s->smcd) continue;
        Held& h = out[s.get()];
        h.s = s;
        const int flags = libc().fcntl(fd, F_GETFD);
        const bool dup2 = std::find(also_inherited.begin(), also_inherited.end(), fd) != also_inherited.end();
        if ((flags >= 0 && !(flags & FD_CLOEXEC)) || dup2) {
            h.inherited = true;
            h.fds.push_back(fd);
        }
    }
    return out;
}

// The peer closed (or died) with bytes in our ring the program has not read, and nobody is
// left to resend them over TCP: the new image gets them from a socketpair standing in for the
// socket, then EOF, as it would have read them from a TCP socket whose peer closed. Writes to
// it fail with EPIPE, as they would on that TCP socket.
size_t substitute(SocketState& s, const std::vector<int>& fds, size_t unread) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return 0;
    const int want = static_cast<int>(std::min<size_t>(unread + 64 * 1024, INT32_MAX / 2));
    if (::setsockopt(sv[1], SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) < 0)
        ::setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
    const size_t kept = s.smcd->unread_to(sv[1]);
    libc().close(sv[1]);
    FdTable& t = FdTable::instance();
    for (int fd : fds) {
        const int fl = libc().fcntl(fd, F_GETFL);
        const int fdfl = libc().fcntl(fd, F_GETFD);
        if (libc().dup2(sv[0], fd) < 0) continue;
        if (fl >= 0) libc().fcntl(fd, F_SETFL, fl & O_NONBLOCK);
        if (fdfl >= 0) libc().fcntl(fd, F_SETFD, fdfl);
        if (auto gone = t.take(fd)) gone->fds.fetch_sub(1);  // not the socket we follow any more
    }
    libc().close(sv[0]);
    return kept;
}

void hand_off(SocketState& s, const std::vector<int>& fds, const char* why) {
    const size_t unread = s.smcd->hand_off();
    demote_moved(s);
    if (unread == 0) {
        log_debug("%s: connection handed to TCP", why);
        return;
    }
    const size_t kept = fds.empty() ? 0 : substitute(s, fds, unread);
    if (kept < unread)
        log_always("%s: %zu received bytes the program had not read could not go to the new image (the peer had "
                   "closed, and no socketpair could take them)",
                   why, unread - kept);
    else
        log_debug("%s: the peer had closed: %zu unread bytes go to the new image through a socketpair", why, kept);
}

}  // namespace

void before_exec(const char* path, bool search) {
    InsideShunt guard;
    SavedErrno keep;
    auto held = connections({});
    if (held.empty() || !will_run(path, search)) return;
    for (auto& [_, h] : held) {
        if (h.inherited) {
            hand_off(*h.s, h.fds, "exec");
        } else {
            std::lock_guard lock(h.s->mu);
            if (h.s->conn) h.s->conn->release();
        }
    }
}

void before_spawn(const char* path, bool search, const posix_spawn_file_actions_t* actions) {
    InsideShunt guard;
    SavedErrno keep;
    std::vector<int> dup2;
    if (actions) {
        std::lock_guard lock(g_dup2_mu);
        if (auto it = g_dup2.find(actions); it != g_dup2.end()) dup2 = it->second;
    }
    auto held = connections(dup2);
    if (held.empty() || !will_run(path, search)) return;
    for (auto& [_, h] : held)
        if (h.inherited) hand_off(*h.s, {}, "posix_spawn");  // the parent keeps the socket
}

void on_spawn_adddup2(const posix_spawn_file_actions_t* actions, int fd) {
    std::lock_guard lock(g_dup2_mu);
    g_dup2[actions].push_back(fd);
}

void on_spawn_actions_destroy(const posix_spawn_file_actions_t* actions) {
    std::lock_guard lock(g_dup2_mu);
    g_dup2.erase(actions);
}

}  // namespace shunt::preload
