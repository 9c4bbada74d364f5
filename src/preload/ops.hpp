#pragma once
// The preload's behaviour behind each interposed call (interpose.cpp only dispatches here).
// Each takes the call's arguments and returns what the C library call would, with errno.
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <memory>

#include "preload/socket_state.hpp"

namespace shunt::preload {

// sockets.cpp: life cycle.
int on_socket(int domain, int type, int protocol);
int on_listen(int fd, int backlog);
int on_accept(int fd, sockaddr* addr, socklen_t* len, int flags);
int on_connect(int fd, const sockaddr* addr, socklen_t len);
int on_close(int fd);
int on_close_range(unsigned first, unsigned last, int flags);
int on_dup(int oldfd, int newfd, int flags, int how);  // how: 0 dup, 2 dup2, 3 dup3, 'F' F_DUPFD
void on_nonblock_change(int fd, bool on);
int on_shutdown(int fd, int how);
int on_getsockopt(int fd, int level, int name, void* value, socklen_t* len);
int on_ioctl_size(int fd, unsigned long request, int* out);  // FIONREAD / SIOCOUTQ; 1: not ours
// The SMC-D connection behind `fd`, or nullptr (a PendingTcp client is listed on the way).
std::shared_ptr<SocketState> smcd_state(int fd);
// Counts connections released (last descriptor closed) or moved to TCP: an epoll set sweeps its
// registrations for those only when this changed.
uint64_t release_generation();
// A connection moved to TCP (Connection::moved): its descriptors become plain sockets again.
void demote_moved(SocketState& s);
// If either side handed the connection to TCP (an exec), goes on over TCP and demotes its
// descriptors; returns whether it did (the kernel answers for the connection from now on).
bool settle_hand_off(SocketState& s);

// io.cpp: data.
ssize_t on_recv(SocketState& s, const iovec* iov, int iovcnt, int flags);
ssize_t on_send(SocketState& s, const iovec* iov, int iovcnt, int flags);
ssize_t on_recvmsg(SocketState& s, msghdr* msg, int flags);
ssize_t on_sendfile(SocketState& s, int in_fd, off_t* offset, size_t count);
ssize_t on_splice_in(SocketState& s, int in_fd, loff_t* off_in, size_t len, unsigned flags);    // to the connection
ssize_t on_splice_out(SocketState& s, int out_fd, loff_t* off_out, size_t len, unsigned flags); // from it

// readiness.cpp: poll and select.
int on_poll(pollfd* fds, nfds_t nfds, const timespec* timeout, const sigset_t* mask);
int on_select(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* timeout, const sigset_t* mask);
// Also marks the emulated epoll sets among `fds` as nested (mark_nested).
bool any_smcd(const pollfd* fds, nfds_t nfds);

// epoll.cpp.
int on_epoll_ctl(int epfd, int op, int fd, epoll_event* ev);
int on_epoll_wait(int epfd, epoll_event* events, int maxevents, const timespec* timeout, const sigset_t* mask);
// Registrations of `fd` made while it was a plain socket move into the emulation (SMC-D now).
void adopt_early_epoll(int fd, SocketState& s);
// `epfd`'s own descriptor is watched (poll, select, another epoll set): its connections must
// then show in the kernel set too. No-op for a descriptor that is not an emulated set.
void mark_nested(int epfd);

// process.cpp: fork.
void install_fork_handlers();
pid_t on_fork();

// exec.cpp: the connections a new program image inherits go on over TCP; the others are let
// go as exec closes them. `path`: what will be executed (checked first: a call that will fail
// changes nothing), nullptr to skip the check; `search`: look it up in PATH as execvp does.
void before_exec(const char* path, bool search);
// posix_spawn: the child is created without us; the connections it inherits (no FD_CLOEXEC, or
// named by an adddup2 action) go on over TCP in both processes.
void before_spawn(const char* path, bool search, const posix_spawn_file_actions_t* actions);
void on_spawn_adddup2(const posix_spawn_file_actions_t* actions, int fd);
void on_spawn_actions_destroy(const posix_spawn_file_actions_t* actions);

}  // namespace shunt::preload
