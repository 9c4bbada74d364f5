#include "lo/handshake.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "clc/negotiate.hpp"
#include "clc/transfer.hpp"
#include "core/fd_passing.hpp"
#include "core/random.hpp"
#include "core/socket_owner.hpp"
#include "core/wait.hpp"
#include "lo/engine.hpp"
#include "lo/side_channel.hpp"
#include "shunt/decline.hpp"

namespace shunt::lo {
namespace {

using Clock = WaitClock;
using clc::AcceptConfirm;
using clc::Decline;
using clc::Proposal;
constexpr uint32_t code(DeclineCode c) { return static_cast<uint32_t>(c); }
constexpr uint8_t kGo = 0x47;

std::chrono::milliseconds left(Clock::time_point deadline) {
    const auto l = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    return l.count() > 0 ? l : std::chrono::milliseconds(0);
}

HandshakeResult fallback(uint32_t reason, uint32_t peer_reason = 0) { return {std::nullopt, reason, peer_reason, false}; }

// Declines on the wire and falls back: for failures after CLC has started.
HandshakeResult decline_and_fallback(int tcp_fd, uint32_t reason) {
    Decline d = clc::decline(reason);
    d.out_of_sync = reason == code(DeclineCode::SyncErr);
    clc::send_message(tcp_fd, d);
    return fallback(reason);
}

// The reason for a CLC receive that did not yield the message wanted.
uint32_t receive_failure(const clc::TransferError& e) {
    using K = clc::TransferError::Kind;
    return e.kind == K::Timeout ? code(DeclineCode::TimeoutCl) : code(DeclineCode::SyncErr);
}

// The rendezvous peer may speak for the connection if it runs as us or as root; a process of
// another user only if it holds the other end of this very TCP connection (`their_local`,
// `their_remote` as it sees them): an nginx worker that dropped to nobody serving a root
// client passes, a stranger who guessed the announcement's name does not.
bool credentials_allowed(int unix_fd, pid_t* pid, const IpPort& their_local, const IpPort& their_remote) {
    auto cred = peer_credentials(unix_fd);
    if (!cred) return false;
    *pid = cred->pid;
    static const uid_t me = ::geteuid();
    if (cred->uid == me || cred->uid == 0) return true;
    return process_holds_tcp_socket(cred->pid, their_local, their_remote);
}

const clc::Eid& hostname() {
    static const clc::Eid name = [] {
        char buf[256] = {};
        ::gethostname(buf, sizeof buf - 1);
        return clc::pad_blank(buf);
    }();
    return name;
}

// Our receive buffer and wake-up eventfds.
struct LocalSide {
    Dmb dmb;
    UniqueFd rx_wake, tx_wake;
    DmbBudget budget;
};

Result<LocalSide, uint32_t> make_local(size_t dmb_size) {
    auto budget = DmbBudget::take();
    if (!budget) return Unexpected{code(DeclineCode::MaxDmb)};
    uint64_t token;
    do token = quick_random_u64();
    while (token == 0);
    auto dmb = Dmb::create(dmb_size, token);
    if (!dmb) return Unexpected{code(DeclineCode::Mem)};
    LocalSide s{std::move(*dmb), UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
                UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)), std::move(*budget)};
    if (!s.rx_wake || !s.tx_wake) return Unexpected{code(DeclineCode::Mem)};
    return s;
}

int send_buffers(int unix_fd, const LocalSide& s) {
    const auto msg = encode(Buffers{s.dmb.token(), static_cast<uint32_t>(s.dmb.ring_size() + kCdcHeaderLen)});
    const std::array<int, kBufferFds> fds{s.dmb.fd(), s.rx_wake.get(), s.tx_wake.get()};
    return send_with_fds(unix_fd, msg, fds);
}

bool is_eventfd(int fd) {
    char link[64] = {};
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
    return n > 0 && std::strcmp(link, "anon_inode:[eventfd]") == 0;
}

// The peer's buffers, checked against what its CLC message announced.
struct PeerSide {
    Dmb dmb;
    UniqueFd rx_wake, tx_wake;
};
std::optional<PeerSide> receive_buffers(int unix_fd, uint64_t token, size_t dmb_size, Clock::time_point deadline,
                                        std::chrono::microseconds spin) {
    auto got = receive_with_fds(unix_fd, kMaxSideMessage, kBufferFds, left(deadline), spin);
    if (!got || got->fds.size() != kBufferFds) return std::nullopt;
    const auto b = decode_buffers(got->data);
    if (!b || b->token != token || b->dmb_size != dmb_size) return std::nullopt;
    if (!is_eventfd(got->fds[1].get()) || !is_eventfd(got->fds[2].get())) return std::nullopt;
    auto dmb = Dmb::attach(std::move(got->fds[0]), dmb_size, token);
    if (!dmb) return std::nullopt;
    dmb->close_fd();
    return PeerSide{std::move(*dmb), std::move(got->fds[1]), std::move(got->fds[2])};
}

// The next CLC message if it is not a Decline, or how the handshake ends instead.
struct Received {
    std::optional<clc::Message> msg;
    HandshakeResult end;
};
Received receive_clc(int tcp_fd, Clock::time_point deadline, const HandshakeConfig& cfg) {
    auto m = clc::receive_message(tcp_fd, left(deadline), cfg.spin);
    if (!m) {
        if (m.error().kind == clc::TransferError::Kind::Closed) return {std::nullopt, fallback(code(DeclineCode::PeerDecl))};
        return {std::nullopt, decline_and_fallback(tcp_fd, receive_failure(m.error()))};
    }
    if (const auto* d = std::get_if<Decline>(&*m)) return {std::nullopt, fallback(code(DeclineCode::PeerDecl), d->diagnosis)};
    return {std::move(*m), {}};
}

Link make_link(LocalSide local, PeerSide peer, bool first_contact, pid_t peer_pid) {
    local.dmb.close_fd();
    return Link{std::move(local.dmb), std::move(peer.dmb), std::move(local.rx_wake), std::move(local.tx_wake),
                std::move(peer.rx_wake), std::move(peer.tx_wake), std::move(local.budget), first_contact, peer_pid};
}

}  // namespace

std::optional<DmbBudget> DmbBudget::take() {
    if (!Engine::instance().reserve_dmb()) return std::nullopt;
    DmbBudget b;
    b.held_ = true;
    return b;
}
DmbBudget& DmbBudget::operator=(DmbBudget&& o) noexcept {
    if (this != &o) {
        if (held_) Engine::instance().release_dmb();
        held_ = std::exchange(o.held_, false);
    }
    return *this;
}
DmbBudget::~DmbBudget() {
    if (held_) Engine::instance().release_dmb();
}

HandshakeResult client_handshake(int tcp_fd, Announcement& ann, const FourTuple& t, const HandshakeConfig& cfg) {
    const auto deadline = Clock::now() + cfg.timeout;
    const clc::LocalIdentity me{cfg.rundir->gid(), std::span(&cfg.ueid, 1)};

    // 1. The server reaches for our announcement once it has accepted the connection.
    if (wait_readable(ann.fd(), deadline, cfg.spin) != 0) return fallback(code(DeclineCode::TimeoutCl));
    UniqueFd side(::accept4(ann.fd(), nullptr, nullptr, SOCK_CLOEXEC));
    ann.withdraw();
    if (!side) return fallback(code(DeclineCode::PeerNoSmc));
    pid_t peer_pid = 0;
    if (!credentials_allowed(side.get(), &peer_pid, t.server, t.client)) return fallback(code(DeclineCode::CnfErr));
    auto hello_msg = receive_with_fds(side.get(), kMaxSideMessage, 0, left(deadline), cfg.spin);
    if (!hello_msg) return fallback(code(DeclineCode::PeerNoSmc));
    const auto hello = decode_hello(hello_msg->data);
    if (!hello || !(hello->tuple == t)) return fallback(code(DeclineCode::CnfErr));

    // 2. Commit: from here on the server expects CLC on the TCP connection.
    if (::send(side.get(), &kGo, 1, MSG_NOSIGNAL) != 1) return fallback(code(DeclineCode::PeerNoSmc));
    if (clc::send_message(tcp_fd, clc::loopback_proposal(me.gid, me.ueids)) != 0)
        return fallback(code(DeclineCode::IntErr));
    Received reply = receive_clc(tcp_fd, deadline, cfg);
    if (!reply.msg) return std::move(reply.end);
    const auto* accept = std::get_if<AcceptConfirm>(&*reply.msg);
    if (!accept || accept->type != clc::MsgType::Accept) return decline_and_fallback(tcp_fd, code(DeclineCode::SyncErr));
    if (uint32_t c = clc::check_accept(*accept, me)) return decline_and_fallback(tcp_fd, c);

    // 3. Buffers: ours, then the server's (already waiting on the side channel), then Confirm.
    const uint8_t size_code = clc::compress_dmbe_size(cfg.buffer_size);
    auto local = make_local(clc::dmbe_bytes(size_code));
    if (!local) return decline_and_fallback(tcp_fd, local.error());
    auto peer = receive_buffers(side.get(), accept->dmb_token, clc::dmbe_bytes(accept->dmbe_size), deadline, cfg.spin);
    if (!peer) return decline_and_fallback(tcp_fd, code(DeclineCode::ErrRtok));
    if (send_buffers(side.get(), *local) != 0) return decline_and_fallback(tcp_fd, code(DeclineCode::IntErr));
    AcceptConfirm confirm = clc::loopback_confirm(me.gid, accept->eid, {local->dmb.token(), size_code},
                                                  accept->first_contact, hostname());
    confirm.fce.release = accept->fce.release;
    if (clc::send_message(tcp_fd, confirm) != 0) return fallback(code(DeclineCode::IntErr));
    return {make_link(std::move(*local), std::move(*peer), accept->first_contact, peer_pid), 0, 0, false};
}

HandshakeResult server_handshake(int tcp_fd, const HandshakeConfig& cfg) {
    const auto deadline = Clock::now() + cfg.timeout;
    const clc::LocalIdentity me{cfg.rundir->gid(), std::span(&cfg.ueid, 1)};
    const auto client = peer_endpoint(tcp_fd);
    const auto server = local_endpoint(tcp_fd);
    if (!client || !server) return fallback(code(DeclineCode::PeerNoSmc));
    const FourTuple t{*client, *server};

    // 1. Only a client that announced this tuple speaks CLC; anyone else is plain TCP.
    const std::string path = cfg.rundir->announcement_path(t);
    UniqueFd side(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    if (!side || ::connect(side.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
        return fallback(code(DeclineCode::PeerNoSmc));
    pid_t peer_pid = 0;
    if (!credentials_allowed(side.get(), &peer_pid, t.client, t.server)) return fallback(code(DeclineCode::CnfErr));
    const auto hello = encode(Hello{t});
    if (send_with_fds(side.get(), hello, {}) != 0) return fallback(code(DeclineCode::PeerNoSmc));
    uint8_t go = 0;
    if (wait_readable(side.get(), deadline, cfg.spin) != 0 || ::recv(side.get(), &go, 1, MSG_DONTWAIT) != 1 || go != kGo)
        return fallback(code(DeclineCode::PeerNoSmc));

    // 2. The client has committed: a CLC Proposal follows on TCP.
    Received msg = receive_clc(tcp_fd, deadline, cfg);
    if (!msg.msg) return std::move(msg.end);
    const auto* proposal = std::get_if<Proposal>(&*msg.msg);
    if (!proposal) return decline_and_fallback(tcp_fd, code(DeclineCode::SyncErr));
    const auto choice = clc::choose_on_proposal(*proposal, me);
    if (const uint32_t* c = std::get_if<uint32_t>(&choice)) return decline_and_fallback(tcp_fd, *c);
    const auto& agreed = std::get<clc::ServerChoice>(choice);

    const uint8_t size_code = clc::compress_dmbe_size(cfg.buffer_size);
    auto local = make_local(clc::dmbe_bytes(size_code));
    if (!local) return decline_and_fallback(tcp_fd, local.error());
    if (send_buffers(side.get(), *local) != 0) return decline_and_fallback(tcp_fd, code(DeclineCode::IntErr));
    const bool first = Engine::instance().first_contact(peer_pid);
    AcceptConfirm accept = clc::loopback_accept(me.gid, agreed.eid, {local->dmb.token(), size_code}, first, hostname());
    accept.fce.release = agreed.release;
    if (clc::send_message(tcp_fd, accept) != 0) return fallback(code(DeclineCode::IntErr));

    // 3. Confirm, then the client's buffers. The client already counts the connection as
    // SMC-D, so a failure here cannot fall back: the connection is reset.
    Received reply = receive_clc(tcp_fd, deadline, cfg);
    if (!reply.msg) return std::move(reply.end);
    const auto* confirm = std::get_if<AcceptConfirm>(&*reply.msg);
    HandshakeResult abort{std::nullopt, code(DeclineCode::SyncErr), 0, true};
    if (!confirm || clc::check_confirm(*confirm, accept, me) != 0) return abort;
    auto peer = receive_buffers(side.get(), confirm->dmb_token, clc::dmbe_bytes(confirm->dmbe_size), deadline, cfg.spin);
    if (!peer) {
        abort.reason = code(DeclineCode::ErrRtok);
        return abort;
    }
    return {make_link(std::move(*local), std::move(*peer), first, peer_pid), 0, 0, false};
}

}  // namespace shunt::lo
