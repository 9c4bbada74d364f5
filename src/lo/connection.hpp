#pragma once
// One shunt lo connection after its handshake: SMC-D over shared memory, or plain TCP with the
// reason why. The data path follows Linux SMC-D loopback with no-copy (docs/wire-format.md):
//
// * write() copies the application's bytes straight into the peer's DMB ring and then
//   publishes our producer cursor in the peer's CDC header (release store);
// * read() copies out of our own DMB ring up to the peer's producer cursor, then publishes our
//   consumer cursor back only when the 10%-of-ring rule says so (no silly window), when the
//   writer is blocked, or before we sleep;
// * a side that finds nothing to do spins for `spin`, then announces that it sleeps (a flag in
//   its DMB's meta page), re-checks, and sleeps on an eventfd; the other side signals only a
//   sleeper, with a seq_cst fence between "publish" and "look at the flag" on both sides, so no
//   wake-up is lost and a busy peer costs no syscall;
// * close flags (peer_done_writing, peer_conn_closed, peer_conn_abort) travel in the CDC header
//   as in RFC 7609; the TCP socket stays open and idle, and its EOF without a close flag means
//   the peer process died (SIGKILL): that is noticed while waiting, never by hanging.
//
// * a process that execs with the connection open hands it to TCP (hand_off): the new program
//   image cannot reach the rings, so both sides go on over the TCP socket, each resending what
//   the other had not read (the cursors say exactly what that is), and the peer's data path
//   notices at its next call (take_over).
//
// Cursors the peer writes are checked (never backwards, never more than a ring ahead); a bad one
// aborts the connection. Errors follow the kernel: EAGAIN, EPIPE, ECONNRESET.
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/spin.hpp"
#include "core/unique_fd.hpp"
#include "lo/handshake.hpp"
#include "lo/stats_region.hpp"

namespace shunt::lo {

// SMC socket states as smcss names them (Linux net/smc/smc.h).
enum class SmcState {
    Active = 1,
    Init = 2,
    Closed = 7,
    Listen = 10,
    PeerCloseWait1 = 20,
    PeerCloseWait2 = 21,
    AppCloseWait1 = 22,
    AppCloseWait2 = 23,
    AppFinCloseWait = 24,
    PeerFinCloseWait = 25,
    PeerAbortWait = 26,
    ProcessAbort = 27,
};
const char* to_string(SmcState s);
// The state from what each side has signalled (RFC 7609 close: active, passive, abort).
SmcState derive_state(bool smcd, bool closed, uint8_t sent_flags, uint8_t got_flags, bool peer_died);

struct ConnectionInfo {
    bool smcd = false;
    bool server = false;
    uint32_t fallback_reason = 0;
    uint32_t peer_reason = 0;
    SmcState state = SmcState::Active;
    uint32_t rx_ring = 0, tx_ring = 0;
    Cursor rx_consumed, rx_peer_produced, tx_produced, tx_peer_consumed;
    uint8_t rx_conn_flags = 0, tx_conn_flags = 0;
};

// What poll() would say of the connection now.
struct Readiness {
    bool in = false;     // read() returns data, EOF or an error without waiting
    bool out = false;    // write() makes progress or fails without waiting
    bool rdhup = false;  // the peer will send nothing more
    bool hup = false;    // both directions are finished
    bool err = false;    // reset
};

// How one read or write call behaves (per-call MSG_ flags on top of the socket's O_NONBLOCK).
struct IoMode {
    bool nonblock = false;
    bool peek = false;  // read only: copy without consuming (MSG_PEEK)
};

class Connection {
public:
    // Plain TCP after a fallback.
    Connection(UniqueFd tcp, bool server, uint32_t reason, uint32_t peer_reason);
    // SMC-D.
    Connection(UniqueFd tcp, bool server, Link link, std::chrono::microseconds spin);
    // Only a line in `shunt stat` for a connection the kernel carries on its own (the
    // preload's TCP fallback): `tcp` is looked at for its addresses and never touched again.
    static std::unique_ptr<Connection> tcp_record(int tcp, bool server, uint32_t reason, uint32_t peer_reason);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Return bytes moved, or -1 with errno set, like readv/writev on a socket.
    ssize_t readv(const iovec* iov, int iovcnt);
    ssize_t writev(const iovec* iov, int iovcnt);
    ssize_t readv(const iovec* iov, int iovcnt, IoMode mode);
    ssize_t writev(const iovec* iov, int iovcnt, IoMode mode);
    int shutdown(int how);
    // Sends the close (or abort, if unread data remains) and closes the TCP socket.
    void close();

    void set_nonblocking(bool on);
    bool nonblocking() const { return nonblocking_; }
    // Readable when read() or write() may make progress or the peer closed.
    int poll_fd();
    int tcp_fd() const { return tcp_.get(); }
    bool smcd() const { return link_.has_value(); }
    ConnectionInfo info() const;

    // ---- readiness for poll/select/epoll emulation (SMC-D mode only) ----
    Readiness readiness() const;
    // Asks the peer to signal rx_wake_fd() (want_in) or tx_wake_fd() (want_out) on its next
    // change, then returns the state as it is after asking: if it is not ready, a signal will
    // come (no wake-up is lost). A waiter also watches tcp_fd() unless tcp_eof().
    // `drain` empties the eventfds first, for level-triggered waiters (poll); an edge-triggered
    // epoll set does not need it (each signal is a new event) and saves the syscalls.
    Readiness arm(bool want_in, bool want_out, bool drain = true);
    // The TCP socket showed an event: learn whether the peer died.
    void on_tcp_event();
    int rx_wake_fd() const { return link_ ? link_->rx_wake.get() : -1; }
    int tx_wake_fd() const { return link_ ? link_->tx_wake.get() : -1; }
    // Every descriptor the connection owns (its TCP duplicate, the four eventfds).
    std::vector<int> own_fds() const;
    bool tcp_eof() const { return tcp_eof_; }
    // Progress markers for edge-triggered readiness: the peer's producer cursor (new data) and
    // its consumer cursor (space freed), packed.
    uint64_t rx_mark() const;
    uint64_t tx_mark() const;
    size_t readable_bytes() const;  // FIONREAD
    size_t unsent_bytes() const;    // SIOCOUTQ: written, not yet consumed by the peer
    size_t writable_bytes() const;  // free space in the peer's ring
    uint32_t rx_ring_size() const { return link_ ? link_->local.ring_size() : 0; }
    uint32_t tx_ring_size() const { return link_ ? link_->peer.ring_size() : 0; }

    // ---- moving to TCP mid-life (exec) ----
    // This process is about to exec with the connection open, and the new program image
    // cannot reach shared memory: the connection goes on over its TCP socket. Publishes our
    // exact consumer cursor with kMovedToTcp (the peer resends over TCP what we had not read),
    // resends over TCP what we wrote beyond the consumer cursor the peer announced, and
    // carries our shutdowns over to the socket. Returns how many received bytes could not be
    // handed on because the peer had already closed or died (nobody is left to resend them).
    // Before an exec the other threads are about to vanish, so their locks are only tried;
    // a live process (urgent data) waits up to `lock_wait` for a thread copying to finish (one
    // asleep in a read or write keeps its lock, and notices the move when it wakes).
    size_t hand_off(std::chrono::microseconds lock_wait = {});
    // After a hand_off() that returned n > 0: writes those n received bytes into `fd` (without
    // waiting) so that whoever reads `fd` gets them; returns how many it took.
    size_t unread_to(int fd) const;
    // Either side moved the connection to TCP (the peer, or another process holding our side):
    // take_over() before using it again.
    bool handed_off() const;
    // Goes on over TCP after a hand-off. If the peer moved: skips on TCP what we had already
    // read from the ring of its resend, and resends what it had not read of ours. Idempotent.
    void take_over();
    // Over TCP after hand_off() or take_over(): every call goes to the socket.
    bool moved() const { return moved_; }

    // ---- several processes holding one connection (fork) ----
    // One more process holds this connection: `pid` (a forked child, listed by the parent
    // before fork() returns to it) or, by default, the calling process.
    void add_holder(pid_t pid = 0);
    // Lets go of the connection in this process: if another process still holds it, the
    // connection stays open for that one (no close flag, no FIN); otherwise this is close().
    void release();
    // In a forked child: list the connection in the child's own stats region.
    void rehome_stats();

private:
    enum class PeerEnd { Open, DoneWriting, Closed, Aborted };

    ssize_t smcd_read(const iovec* iov, int iovcnt, IoMode mode);
    ssize_t smcd_write(const iovec* iov, int iovcnt, IoMode mode);
    // What the peer's close flags and the TCP socket say about the other end.
    PeerEnd peer_end();
    void check_tcp();
    // Consumer side: publish our consumer cursor when the rule says so, wake a blocked writer.
    void after_consume(bool force);
    void publish_cons_word(std::optional<Cursor> cursor, uint8_t set_prod, uint8_t clear_prod, uint8_t set_conn);
    // Blocks until `wake` is signalled or the TCP socket shows the peer's end: 0, or EAGAIN
    // at `deadline`, EINTR for a signal the kernel would not restart after, another errno.
    int sleep_on(int wake, const std::optional<std::chrono::steady_clock::time_point>& deadline);
    // One blocking read or write call's waiting: its spin episodes, and the socket timeout
    // (SO_RCVTIMEO/SO_SNDTIMEO, read once, at the first sleep) that bounds the whole call.
    struct Waiting {
        WaitEpisode episode;
        bool deadline_known = false;
        std::optional<std::chrono::steady_clock::time_point> deadline;
        template <class Ready>
        bool spin(SpinPolicy& policy, Ready&& ready) {
            return episode.spin(policy, ready);
        }
        void done(SpinPolicy& policy) { episode.done(policy); }
        // Sleeps on `wake` (see sleep_on); `timeout_opt` is SO_RCVTIMEO or SO_SNDTIMEO.
        int sleep(Connection& c, int wake, int timeout_opt);
    };
    void drain(int wake);
    void signal(int wake);
    void abort_protocol();
    SmcState state() const;
    // Over the TCP socket, whatever its O_NONBLOCK: ring bytes [from, from + n) of `ring`, or
    // n bytes read and dropped. False if the socket fails first.
    bool send_ring(const Dmb& ring, Cursor from, uint32_t n);
    bool skip_tcp(size_t n);
    void mark_moved();
    Readiness tcp_readiness() const;

    UniqueFd tcp_;
    bool server_;
    uint32_t reason_ = 0, peer_reason_ = 0;
    ConnSlot* slot_ = nullptr;  // our line in `shunt stat`
    void fill_slot();
    std::optional<Link> link_;
    SpinPolicy rx_spin_, tx_spin_;  // under rx_mu_ and tx_mu_
    bool nonblocking_ = false;
    UniqueFd poll_fd_;

    // Reader state (rx_mu_).
    std::mutex rx_mu_;
    Cursor consumed_;
    // consumed_ as published in our meta page (DmbMeta::owner_consumed), readable without rx_mu_.
    Cursor consumed_now() const {
        return CdcWord::unpack(link_->local.meta()->owner_consumed.load(std::memory_order_acquire)).cursor;
    }
    Cursor announced_;       // consumer cursor last published to the peer
    bool rx_armed_ = false;  // we asked the peer for a signal and have not withdrawn it

    // Writer state (tx_mu_).
    std::mutex tx_mu_;
    Cursor produced_;
    bool tx_armed_ = false;

    uint8_t sent_conn_flags() const;
    // Our cursors as the shared words say them: after a fork, another process holding this
    // connection may have read or written since we last did (a child that wrote and exited).
    void resync_rx();  // under rx_mu_
    void resync_tx();  // under tx_mu_

    std::atomic<bool> shut_rd_{false}, shut_wr_{false}, closed_{false}, detached_{false};
    std::atomic<bool> tcp_eof_{false}, peer_died_{false}, protocol_error_{false}, moved_{false};
};

}  // namespace shunt::lo
