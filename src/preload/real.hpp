#pragma once
// The C library functions the preload stands in front of, found once with dlsym(RTLD_NEXT).
// Every interposed entry point ends up here for whatever it does not handle itself, and so
// does all of shunt's own work while it runs inside the preload (see guard.hpp).
#include <poll.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

namespace shunt::preload {

struct Libc {
    int (*socket)(int, int, int);
    int (*listen)(int, int);
    int (*accept)(int, sockaddr*, socklen_t*);
    int (*accept4)(int, sockaddr*, socklen_t*, int);
    int (*connect)(int, const sockaddr*, socklen_t);
    ssize_t (*read)(int, void*, size_t);
    ssize_t (*readv)(int, const iovec*, int);
    ssize_t (*recv)(int, void*, size_t, int);
    ssize_t (*recvfrom)(int, void*, size_t, int, sockaddr*, socklen_t*);
    ssize_t (*recvmsg)(int, msghdr*, int);
    int (*recvmmsg)(int, mmsghdr*, unsigned, int, timespec*);
    ssize_t (*write)(int, const void*, size_t);
    ssize_t (*writev)(int, const iovec*, int);
    ssize_t (*send)(int, const void*, size_t, int);
    ssize_t (*sendto)(int, const void*, size_t, int, const sockaddr*, socklen_t);
    ssize_t (*sendmsg)(int, const msghdr*, int);
    int (*sendmmsg)(int, mmsghdr*, unsigned, int);
    ssize_t (*sendfile)(int, int, off_t*, size_t);
    ssize_t (*splice)(int, loff_t*, int, loff_t*, size_t, unsigned);
    int (*shutdown)(int, int);
    int (*close)(int);
    int (*close_range)(unsigned, unsigned, int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    int (*getsockopt)(int, int, int, void*, socklen_t*);
    int (*poll)(pollfd*, nfds_t, int);
    int (*ppoll)(pollfd*, nfds_t, const timespec*, const sigset_t*);
    int (*select)(int, fd_set*, fd_set*, fd_set*, timeval*);
    int (*pselect)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*);
    int (*epoll_ctl)(int, int, int, epoll_event*);
    int (*epoll_wait)(int, epoll_event*, int, int);
    int (*epoll_pwait)(int, epoll_event*, int, int, const sigset_t*);
    int (*epoll_pwait2)(int, epoll_event*, int, const timespec*, const sigset_t*);
    pid_t (*fork)();
    int (*execve)(const char*, char* const[], char* const[]);
    int (*execv)(const char*, char* const[]);
    int (*execvp)(const char*, char* const[]);
    int (*execvpe)(const char*, char* const[], char* const[]);
    int (*fexecve)(int, char* const[], char* const[]);
    int (*execveat)(int, const char*, char* const[], char* const[], int);
    int (*posix_spawn)(pid_t*, const char*, const posix_spawn_file_actions_t*, const posix_spawnattr_t*,
                       char* const[], char* const[]);
    int (*posix_spawnp)(pid_t*, const char*, const posix_spawn_file_actions_t*, const posix_spawnattr_t*,
                        char* const[], char* const[]);
    int (*posix_spawn_file_actions_adddup2)(posix_spawn_file_actions_t*, int, int);
    int (*posix_spawn_file_actions_init)(posix_spawn_file_actions_t*);
    int (*posix_spawn_file_actions_destroy)(posix_spawn_file_actions_t*);
};

// Resolved on first use (an interposed call may come before our constructor runs).
const Libc& libc();

}  // namespace shunt::preload
