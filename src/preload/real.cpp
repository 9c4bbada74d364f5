#include "preload/real.hpp"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

namespace shunt::preload {
namespace {

template <typename F>
void resolve(F& slot, const char* name, bool required = true) {
    slot = reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
    if (!slot && required) {
        std::fprintf(stderr, "shunt-preload: cannot find %s in the C library\n", name);
        std::abort();
    }
}

Libc load() {
    Libc c{};
    resolve(c.socket, "socket");
    resolve(c.listen, "listen");
    resolve(c.accept, "accept");
    resolve(c.accept4, "accept4");
    resolve(c.connect, "connect");
    resolve(c.read, "read");
    resolve(c.readv, "readv");
    resolve(c.recv, "recv");
    resolve(c.recvfrom, "recvfrom");
    resolve(c.recvmsg, "recvmsg");
    resolve(c.recvmmsg, "recvmmsg");
    resolve(c.write, "write");
    resolve(c.writev, "writev");
    resolve(c.send, "send");
    resolve(c.sendto, "sendto");
    resolve(c.sendmsg, "sendmsg");
    resolve(c.sendmmsg, "sendmmsg");
    resolve(c.sendfile, "sendfile");
    resolve(c.splice, "splice");
    resolve(c.shutdown, "shutdown");
    resolve(c.close, "close");
    resolve(c.close_range, "close_range", false);
    resolve(c.dup, "dup");
    resolve(c.dup2, "dup2");
    resolve(c.dup3, "dup3");
    resolve(c.fcntl, "fcntl");
    resolve(c.ioctl, "ioctl");
    resolve(c.getsockopt, "getsockopt");
    resolve(c.poll, "poll");
    resolve(c.ppoll, "ppoll");
    resolve(c.select, "select");
    resolve(c.pselect, "pselect");
    resolve(c.epoll_ctl, "epoll_ctl");
    resolve(c.epoll_wait, "epoll_wait");
    resolve(c.epoll_pwait, "epoll_pwait");
    resolve(c.epoll_pwait2, "epoll_pwait2", false);
    resolve(c.fork, "fork");
    resolve(c.execve, "execve");
    resolve(c.execv, "execv");
    resolve(c.execvp, "execvp");
    resolve(c.execvpe, "execvpe");
    resolve(c.fexecve, "fexecve");
    resolve(c.execveat, "execveat", false);
    resolve(c.posix_spawn, "posix_spawn");
    resolve(c.posix_spawnp, "posix_spawnp");
    resolve(c.posix_spawn_file_actions_adddup2, "posix_spawn_file_actions_adddup2");
    resolve(c.posix_spawn_file_actions_init, "posix_spawn_file_actions_init");
    resolve(c.posix_spawn_file_actions_destroy, "posix_spawn_file_actions_destroy");
    return c;
}

}  // namespace

const Libc& libc() {
    static const Libc c = load();
    return c;
}

}  // namespace shunt::preload
