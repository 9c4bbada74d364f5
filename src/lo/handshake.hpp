#pragma once
// The SMC-D handshake over one TCP connection, both sides (docs/wire-format.md):
//
//   client                                server
//   announce 4-tuple (rundir), SYN  --->  accept()
//                                         connect to the announcement (UNIX)
//                            Hello  <---  the tuple as the server sees it
//   check tuple and credentials
//   Go                              --->
//   CLC Proposal (TCP)              --->  choose, create DMB
//                          Buffers  <---  memfd + eventfds (UNIX)
//                       CLC Accept  <---  (TCP)
//   check, create DMB, attach peer's
//   Buffers                         --->  (UNIX)
//   CLC Confirm (TCP)               --->  check, attach client's DMB
//
// No CLC byte is sent before both sides have proven they hold the two ends of this exact
// connection; until then either side may walk away and the connection is plain TCP with no
// byte spent. After that, any failure is answered with a CLC Decline carrying the Linux DECL
// code, and both sides continue on plain TCP over the same socket.
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "clc/messages.hpp"
#include "lo/dmb.hpp"
#include "lo/rundir.hpp"

namespace shunt::lo {

struct HandshakeConfig {
    std::shared_ptr<const Rundir> rundir;
    size_t buffer_size = 0;  // wanted DMB size, rounded to 16 KiB .. 1 MiB
    clc::Eid ueid{};
    std::chrono::milliseconds timeout{6000};
    std::chrono::microseconds spin{0};  // busy-wait before each sleep of the handshake
};

// The handshake's spin for a data-path spin budget: its few trips between the two processes
// follow one another within microseconds, so it spins longer than the data path's learned
// budget (connection setup time is a target of its own), and not at all when spinning is off.
inline std::chrono::microseconds handshake_spin(std::chrono::microseconds data_spin) {
    return data_spin.count() > 0 ? std::max(data_spin, std::chrono::microseconds(50)) : data_spin;
}

// Keeps one unit of the process's DMB budget while alive.
class DmbBudget {
public:
    DmbBudget() = default;
    static std::optional<DmbBudget> take();
    DmbBudget(DmbBudget&& o) noexcept : held_(std::exchange(o.held_, false)) {}
    DmbBudget& operator=(DmbBudget&& o) noexcept;
    ~DmbBudget();

private:
    bool held_ = false;
};

// Everything a successful handshake yields.
struct Link {
    Dmb local;               // ours: the peer writes payload and its cursors here
    Dmb peer;                // the peer's: we write here
    UniqueFd rx_wake;        // signalled by the peer when data or a close flag arrives
    UniqueFd tx_wake;        // signalled by the peer when it frees space we wait for
    UniqueFd peer_rx_wake;
    UniqueFd peer_tx_wake;
    DmbBudget budget;
    bool first_contact = false;
    pid_t peer_pid = 0;
};

struct HandshakeResult {
    std::optional<Link> link;  // set: the connection is SMC-D
    uint32_t reason = 0;       // otherwise the local fallback reason (a DECL code)
    uint32_t peer_reason = 0;  // the diagnosis in the peer's Decline, if it sent one
    bool aborted = false;      // the connection cannot be used at all (reset sent)
};

// Client side, after connect() on a socket whose tuple `t` was announced with `ann`.
HandshakeResult client_handshake(int tcp_fd, Announcement& ann, const FourTuple& t, const HandshakeConfig& cfg);
// Server side, on a freshly accepted socket.
HandshakeResult server_handshake(int tcp_fd, const HandshakeConfig& cfg);

}  // namespace shunt::lo
