// The CDC layer (Linux smc_cdc): publishing our consumer cursor and flags into the peer's CDC
// header, reading the peer's close flags, and the wake-ups that let a waiter sleep without
// losing a signal (docs/waiting.md). Peer death shows on the TCP socket, watched while asleep.
#include "lo/connection.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

#include "core/blocking.hpp"
#include "lo/connection_internal.hpp"
#include "lo/engine.hpp"

namespace shunt::lo {

namespace {

// Waits (bounded) until a process that we saw die has let go of its descriptors: the kernel
// closes them one by one on exit, so its TCP socket may reach us before its rundir locks are
// released. A zombie or a vanished pid holds nothing.
void wait_exited(pid_t pid, std::chrono::milliseconds limit) {
    if (pid <= 0) return;
    const auto until = Clock::now() + limit;
    const std::string path = "/proc/" + std::to_string(pid) + "/stat";
    while (Clock::now() < until) {
        char buf[512] = {};
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        const ssize_t n = ::read(fd, buf, sizeof buf - 1);
        ::close(fd);
        const char* paren = n > 0 ? std::strrchr(buf, ')') : nullptr;
        if (!paren || paren[1] == '\0' || paren[2] == 'Z' || paren[2] == 'X') return;
        ::usleep(1000);
    }
}

}  // namespace

void Connection::signal(int wake) {
    const uint64_t one = 1;
    if (::write(wake, &one, sizeof one) == sizeof one) Engine::instance().counters().wakeups_sent.fetch_add(1, kRelaxed);
}

void Connection::drain(int wake) {
    uint64_t v;  // one read takes an eventfd's whole count
    [[maybe_unused]] const ssize_t n = ::read(wake, &v, sizeof v);
}

int Connection::sleep_on(int wake, const std::optional<Clock::time_point>& deadline) {
    pollfd p[2] = {{wake, POLLIN, 0}, {tcp_.get(), POLLIN | POLLRDHUP, 0}};
    const nfds_t n = tcp_eof_ ? 1 : 2;
    for (;;) {
        int ms = -1;
        if (deadline) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
            if (left <= 0) return EAGAIN;  // SO_RCVTIMEO / SO_SNDTIMEO ran out, as TCP says it
            ms = static_cast<int>(std::min<long long>(left, INT32_MAX));
        }
        const int r = ::poll(p, n, ms);
        if (r > 0) break;
        if (r < 0 && errno != EINTR) return errno;
        // A signal handler ran: the kernel restarts a blocking socket call only if that handler
        // asked for it (SA_RESTART) and the socket has no timeout.
        if (r < 0 && (deadline || !restart_after_signal())) return EINTR;
    }
    if (n == 2 && p[1].revents) check_tcp();
    return 0;
}

int Connection::Waiting::sleep(Connection& c, int wake, int timeout_opt) {
    if (!deadline_known) {
        deadline = socket_deadline(c.tcp_.get(), timeout_opt);
        deadline_known = true;
    }
    episode.sleeping();
    return c.sleep_on(wake, deadline);
}

void Connection::check_tcp() {
    if (handed_off()) return;  // the socket carries the data now
    char c;
    const ssize_t n = ::recv(tcp_.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    // EOF, a reset, or stray bytes: the peer has left this socket. One that closed properly
    // set its close flag first; without one it died (or broke the protocol).
    if (n > 0) protocol_error_ = true;
    const CdcWord w = CdcWord::unpack(link_->local.cons_slot().load(kAcquire));
    if (!(w.conn_flags & (conn_flag::kPeerConnClosed | conn_flag::kPeerConnAbort)) && !peer_died_.exchange(true)) {
        wait_exited(link_->peer_pid, std::chrono::milliseconds(200));
        Engine::instance().sweep_rundirs();  // the dead peer cannot clean up after itself
    }
    tcp_eof_ = true;
}

Connection::PeerEnd Connection::peer_end() {
    const CdcWord w = CdcWord::unpack(link_->local.cons_slot().load(kAcquire));
    if (slot_) {
        slot_->got_flags.store(w.conn_flags, kRelaxed);
        slot_->peer_died.store(peer_died_, kRelaxed);
    }
    if (w.conn_flags & conn_flag::kPeerConnAbort || protocol_error_) return PeerEnd::Aborted;
    if (w.conn_flags & conn_flag::kPeerConnClosed) return PeerEnd::Closed;
    if (peer_died_) {
        // A process that dies leaves as close() would: an abort if it had not read all we sent.
        const Cursor ours = CdcWord::unpack(link_->peer.prod_slot().load(kRelaxed)).cursor;
        const Cursor read = CdcWord::unpack(link_->peer.meta()->owner_consumed.load(kAcquire)).cursor;
        const auto unread = cursor_distance(read, ours, link_->peer.ring_size());
        return unread && *unread == 0 ? PeerEnd::Closed : PeerEnd::Aborted;
    }
    if (w.conn_flags & conn_flag::kPeerDoneWriting) return PeerEnd::DoneWriting;
    return PeerEnd::Open;
}

void Connection::abort_protocol() {
    protocol_error_ = true;
    publish_cons_word(std::nullopt, 0, 0, conn_flag::kPeerConnAbort);
    signal(link_->peer_rx_wake.get());
    signal(link_->peer_tx_wake.get());
}

void Connection::publish_cons_word(std::optional<Cursor> cursor, uint8_t set_prod, uint8_t clear_prod, uint8_t set_conn) {
    // The word in the peer's CDC header is the only copy: after a fork, the parent and the child
    // publish into it in turn (their own copies would diverge), so each change is a
    // compare-and-swap on the shared word. Only our side ever writes it.
    auto slot = link_->peer.cons_slot();  // an atomic_ref onto the shared word
    uint64_t old = slot.load(kRelaxed);
    CdcWord w;
    do {
        w = CdcWord::unpack(old);
        if (cursor) w.cursor = *cursor;
        w.prod_flags = static_cast<uint8_t>((w.prod_flags | set_prod) & ~clear_prod);
        w.conn_flags |= set_conn;
    } while (!slot.compare_exchange_weak(old, w.pack(), kSeqCst, kRelaxed));
    if (slot_) slot_->sent_flags.store(w.conn_flags, kRelaxed);
}

void Connection::resync_rx() {
    consumed_ = consumed_now();
    announced_ = CdcWord::unpack(link_->peer.cons_slot().load(kAcquire)).cursor;
}

void Connection::resync_tx() { produced_ = CdcWord::unpack(link_->peer.prod_slot().load(kAcquire)).cursor; }

void Connection::after_consume(bool force) {
    const Dmb& local = link_->local;
    const uint32_t ring = local.ring_size();
    const uint32_t unannounced = cursor_distance(announced_, consumed_, ring).value_or(0);
    if (unannounced == 0) return;
    const CdcWord writer = CdcWord::unpack(local.cons_slot().load(kAcquire));
    const bool asked = writer.prod_flags & (prod_flag::kWriteBlocked | prod_flag::kConsCursorUpdateRequest);
    const Cursor peer_prod = CdcWord::unpack(local.prod_slot().load(kRelaxed)).cursor;
    const uint32_t writer_free = ring - cursor_distance(announced_, peer_prod, ring).value_or(ring);
    const uint32_t limit = std::max(ring / 10, kMinWindowUpdate);
    if (!(force || asked || (unannounced > limit && writer_free <= ring / 2))) return;
    announced_ = consumed_;
    publish_cons_word(announced_, 0, 0, 0);
    auto& wants = link_->peer.meta()->writer_wants_signal;
    if (wants.load(kSeqCst) && wants.exchange(0)) signal(link_->peer_tx_wake.get());
}

uint8_t Connection::sent_conn_flags() const {
    return CdcWord::unpack(link_->peer.cons_slot().load(kAcquire)).conn_flags;
}

}  // namespace shunt::lo
