#pragma once
// One TCP socket of the application, as the preload follows it from socket() to close():
//
//   Fresh --listen()--> Listening          accept() runs the server handshake on each new socket
//   Fresh --connect()-> Connected          the client handshake ran inside connect()
//
// A connected socket holds a lo::Connection: SMC-D (data and readiness go through shared
// memory) or a TCP record (the kernel does everything; the record only lists the connection
// and its fallback reason in `shunt stat`).
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <sys/epoll.h>

#include "lo/connection.hpp"
#include "lo/rundir.hpp"
#include "preload/fd_table.hpp"

namespace shunt::preload {

struct SocketState : Tracked {
    enum class Phase { Fresh, Listening, Connected };

    explicit SocketState(int domain_, bool nonblocking) : domain(domain_), nonblock(nonblocking) {}
    // Lets go of the connection's own descriptors (FdKind::Private) and closes them.
    ~SocketState() override;

    const int domain;
    // O_NONBLOCK of the socket as set through socket(), accept4(), fcntl() or ioctl(FIONBIO).
    std::atomic<bool> nonblock;

    std::mutex mu;  // the fields below
    Phase phase = Phase::Fresh;
    // Listening: the rendezvous registration, or why accepted connections stay TCP.
    std::optional<lo::Registration> registration;
    uint16_t listen_port = 0;  // counted in own_listeners while registered
    std::shared_ptr<const lo::Rundir> rundir;
    uint32_t listen_reason = 0;
    // Connected.
    std::shared_ptr<lo::Connection> conn;
    uint32_t pending_reason = 0;  // PendingTcp: the reason to list once connected

    // epoll registrations made before the connection existed (epfd, what was asked): moved
    // into our epoll emulation when it turns out SMC-D.
    std::vector<std::pair<int, epoll_event>> early_epoll;

    // Set once, before the descriptor becomes FdKind::Smcd; read without the lock after.
    lo::Connection* smcd = nullptr;
    // The last descriptor is closed: epoll sets drop it at their next look.
    std::atomic<bool> released{false};
};

}  // namespace shunt::preload
