// The shard event loop (see shard.hpp).
#include "proxy/shard.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "proxy/proxy_protocol.hpp"

namespace shunt::proxy {

namespace {
constexpr size_t kChunk = 64 * 1024;   // one splice / read
constexpr int kRounds = 32;            // pump rounds per direction before yielding
constexpr size_t kSparePipes = 256;
constexpr int kConnectAttemptsPerTarget = 16;
constexpr std::chrono::seconds kCooldown{2};  // > 1 s: tcp_tw_reuse takes over TIME_WAIT after 1 s
enum Tag : uint8_t { kListener, kClientSide, kServerSide };

int sock_int(int fd, int level, int opt) {
    int v = -1;
    socklen_t len = sizeof v;
    if (::getsockopt(fd, level, opt, &v, &len) < 0) return -1;
    return v;
}
}  // namespace

struct Tagged {
    Tag tag;
};

struct Shard::Listener : Tagged {
    UniqueFd fd;
    size_t frontend = 0;
};

struct Endpoint : Tagged {
    Session* session = nullptr;
    int fd = -1;
    bool can_read = false;
    bool can_write = false;
    std::chrono::steady_clock::time_point last;
};

// One direction of a session: bytes read from one side and not yet written to the other.
struct Dir {
    bool spliced = false;           // moved to splice mode (a large transfer)
    int pipe_r = -1, pipe_w = -1;   // splice mode: bytes in the pipe
    std::vector<char> buf;          // buffer mode: what the destination did not take at once
    size_t off = 0;
    size_t pending = 0;
    bool eof = false;   // the source sent FIN
    bool shut = false;  // ... and we passed it on (shutdown(SHUT_WR) of the destination)
    bool done() const { return eof && pending == 0 && shut; }
};

struct Session {
    Endpoint client, server;
    UniqueFd client_fd;
    UniqueFd server_sock;
    rss::PortLease lease;  // the aligned source port (empty when the kernel chose the port)
    Dir up, down;                // client -> server, server -> client
    size_t frontend = 0;
    ShardServer* srv = nullptr;
    const ShardServer* failed = nullptr;  // the server whose connect just failed
    int attempts = 0;
    bool connected = false, closed = false, queued = false;
    std::chrono::steady_clock::time_point connect_deadline;
    Session* prev = nullptr;
    Session* next = nullptr;
};

std::vector<rss::Target> shard_targets(const RssModel& model, int cpu, rss::PortAllocator& alloc,
                                       const SockAddr& remote) {
    std::vector<rss::Target> out;
    for (uint32_t q : model.queues_of_cpu(cpu)) out.push_back(alloc.target(remote.ip(), remote.port(), q));
    return out;
}

Shard::Shard(size_t index, int cpu, Runtime& rt, std::vector<UniqueFd> listeners)
    : index_(index), cpu_(cpu), rt_(rt) {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    for (size_t f = 0; f < listeners.size(); ++f) {
        auto l = std::make_unique<Listener>();
        l->tag = kListener;
        l->fd = std::move(listeners[f]);
        l->frontend = f;
        listeners_.push_back(std::move(l));
    }
    scratch_ = std::make_unique<char[]>(kChunk);
    const size_t shards = rt_.config().cpus.size();
    limit_ = (rt_.config().max_connections + shards - 1) / shards;
    rr_.assign(rt_.config().backends.size(), index);  // shards start their rotation apart
    aligned_ = rt_.aligned() && !rt_.model()->queues_of_cpu(cpu_).empty();
    setup_servers();
}

Shard::~Shard() {
    while (head_) close_session(*head_, nullptr);
    for (Session* s : graveyard_) delete s;
    cooling_.clear();
    for (auto [r, w] : pipes_) {
        ::close(r);
        ::close(w);
    }
}

void Shard::setup_servers() {
    seen_generation_ = rt_.address_generation.load(std::memory_order_acquire);
    servers_.resize(rt_.servers().size());
    uint64_t pool = 0;
    for (size_t i = 0; i < servers_.size(); ++i) {
        ShardServer& s = servers_[i];
        s.state = rt_.servers()[i].get();
        s.addr = s.state->address();
        if (!aligned_) continue;
        s.allocators = rt_.allocators_for(s.addr);
        s.targets.clear();
        for (auto* a : s.allocators) {
            s.targets.push_back(shard_targets(*rt_.model(), cpu_, *a, s.addr));
            bump(counters_.toeplitz_hashes, s.targets.back().size());
            for (const auto& t : s.targets.back()) pool += a->pool_size(t);
        }
    }
    counters_.pool_ports.store(pool, std::memory_order_relaxed);
}

// A server moved: same allocators if the source address stays, targets retargeted in place
// (one hash each, free lists untouched).
void Shard::refresh_addresses() {
    const uint64_t gen = rt_.address_generation.load(std::memory_order_acquire);
    if (gen == seen_generation_) return;
    seen_generation_ = gen;
    for (auto& s : servers_) {
        const SockAddr a = s.state->address();
        if (a == s.addr) continue;
        s.addr = a;
        bump(counters_.retargets);
        if (!aligned_) continue;
        auto allocators = rt_.allocators_for(a);
        if (allocators == s.allocators) {
            for (size_t k = 0; k < s.allocators.size(); ++k)
                for (auto& t : s.targets[k]) {
                    s.allocators[k]->retarget(t, a.ip(), a.port());
                    bump(counters_.toeplitz_hashes);
                }
        } else {
            s.allocators = std::move(allocators);
            s.targets.clear();
            for (auto* al : s.allocators) {
                s.targets.push_back(shard_targets(*rt_.model(), cpu_, *al, a));
                bump(counters_.toeplitz_hashes, s.targets.back().size());
            }
        }
    }
}

#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51  // Linux 6.3
#endif

// A port whose 4-tuple is taken (our own TIME_WAIT, mostly) must not be the next one handed out:
// the per-syndrome free lists are LIFO, so a port given straight back would be popped again at
// once. Such ports cool down for a while first, oldest released first.
void Shard::cool(rss::PortLease lease) {
    cooling_.emplace_back(now_ + kCooldown, std::move(lease));
    bump(counters_.ports_cooling);
}

void Shard::release_cooled() {
    while (!cooling_.empty() && cooling_.front().first <= now_) {
        cooling_.pop_front();
        drop(counters_.ports_cooling);
    }
}

// A non-blocking connect from a port of t's pool: IP_LOCAL_PORT_RANGE lo == hi with
// IP_BIND_ADDRESS_NO_PORT (the kernel checks the 4-tuple at connect(), nothing is reserved at
// bind()), or SO_REUSEADDR + bind() on kernels without it. False when the pool is empty or every
// port tried was taken; other errors throw.
bool Shard::connect_from_pool(Session& s, rss::PortAllocator& alloc, rss::Target& t, const SockAddr& remote) {
    for (int attempt = 0; attempt < kConnectAttemptsPerTarget; ++attempt) {
        const auto port = alloc.acquire(t);
        if (!port) return false;
        rss::PortLease lease(alloc, *port);
        UniqueFd fd(::socket(remote.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) throw std::system_error(errno, std::generic_category(), "socket");
        const int one = 1;
        const uint32_t range = uint32_t{*port} << 16 | *port;
        const bool by_range =
            use_port_range_ &&
            ::setsockopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) == 0 &&
            ::setsockopt(fd.get(), IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof range) == 0;
        if (!by_range) {
            use_port_range_ = false;
            ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        }
        const SockAddr self = make_sockaddr(alloc.local(), by_range ? 0 : *port);
        int rc = ::bind(fd.get(), self.get(), self.len);
        if (rc == 0) rc = ::connect(fd.get(), remote.get(), remote.len);
        if (rc < 0 && errno != EINPROGRESS) {
            if (errno == EADDRINUSE || errno == EADDRNOTAVAIL) {
                bump(counters_.port_retries);
                cool(std::move(lease));
                continue;
            }
            throw std::system_error(errno, std::generic_category(), "connect");
        }
        if (local_name(fd.get()).port() != *port) {  // never count a port we did not get
            use_port_range_ = false;
            cool(std::move(lease));
            continue;
        }
        s.server_sock = std::move(fd);
        s.lease = std::move(lease);
        return true;
    }
    return false;
}

void Shard::pause_listeners(bool pause) {
    if (pause == paused_) return;
    paused_ = pause;
    for (auto& l : listeners_) {
        if (!l->fd) continue;
        if (pause) {
            ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, l->fd.get(), nullptr);
        } else {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.ptr = static_cast<Tagged*>(l.get());
            ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, l->fd.get(), &ev);
        }
    }
    if (pause) bump(counters_.limit_reached);
}

void Shard::run() {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu_, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
        fmt::print(stderr, "shunt proxy: shard {}: cannot pin to CPU {}\n", index_, cpu_);
    paused_ = true;
    pause_listeners(false);
    counters_.limit_reached.store(0, std::memory_order_relaxed);

    std::vector<epoll_event> events(256);
    auto last_sweep = Clock::now();
    bool draining = false;
    Clock::time_point drain_deadline;
    for (;;) {
        const int timeout = again_.empty() ? 100 : 0;
        const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout);
        now_ = Clock::now();
        if (n < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "epoll_wait");
        refresh_addresses();
        for (int i = 0; i < n; ++i) {
            auto* t = static_cast<Tagged*>(events[i].data.ptr);
            if (t->tag == kListener) {
                accept_from(*static_cast<Listener*>(t));
            } else {
                auto* e = static_cast<Endpoint*>(t);
                if (!e->session->closed) on_event(*e->session, t->tag == kServerSide, events[i].events);
            }
        }
        // Sessions that still had work: one more turn each, after everyone else's.
        std::vector<Session*> again;
        again.swap(again_);
        for (Session* s : again) {
            s->queued = false;
            if (!s->closed) run_session(*s);
        }
        for (Session* s : graveyard_) delete s;
        graveyard_.clear();

        if (now_ - last_sweep >= std::chrono::milliseconds(100)) {
            last_sweep = now_;
            sweep();
        }
        if (rt_.stopping.load(std::memory_order_relaxed) && !draining) {
            draining = true;
            drain_deadline = now_ + rt_.config().grace;
            pause_listeners(true);
            for (auto& l : listeners_) l->fd.reset();
        }
        if (draining && (!head_ || now_ >= drain_deadline)) break;
    }
    while (head_) close_session(*head_, nullptr);
    for (Session* s : graveyard_) delete s;
    graveyard_.clear();
}

void Shard::accept_from(Listener& l) {
    for (int k = 0; k < 64; ++k) {
        if (counters_.sessions_active.load(std::memory_order_relaxed) >= limit_) {
            pause_listeners(true);
            return;
        }
        const int fd = ::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) bump(counters_.accept_errors);
            return;
        }
        start_session(UniqueFd(fd), l.frontend);
    }
}

void Shard::start_session(UniqueFd client, size_t frontend) {
    bump(counters_.sessions_total);
    bump(counters_.sessions_active);
    bump(sock_int(client.get(), SOL_SOCKET, SO_INCOMING_CPU) == cpu_ ? counters_.aligned_in
                                                                      : counters_.misaligned_in);
    const int one = 1;
    ::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    auto* s = new Session;
    s->frontend = frontend;
    s->client.tag = kClientSide;
    s->client.session = s;
    s->client.fd = client.get();
    s->client.last = now_;
    s->server.tag = kServerSide;
    s->server.session = s;
    s->client_fd = std::move(client);
    s->next = head_;
    if (head_) head_->prev = s;
    head_ = s;

    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = static_cast<Tagged*>(&s->client);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, s->client.fd, &ev) < 0) {
        close_session(*s, &counters_.errors);
        return;
    }
    if (!connect_server(*s)) close_session(*s, nullptr);
}

void Shard::log_exhausted(const ShardServer& srv) {
    if (now_ - last_exhausted_log_ < std::chrono::seconds(1)) return;
    last_exhausted_log_ = now_;
    fmt::print(stderr,
               "shunt proxy: CPU {}: no RSS-aligned source port left towards {} ({}/{}); session "
               "refused (counter port_exhausted; widen rss.port_range or add rss.sources)\n",
               cpu_, srv.addr.to_string(), srv.state->backend, srv.state->name);
}

// Picks a server that is up (skipping the one that just failed) and starts a non-blocking
// connect from an aligned port. False: the session cannot be served (counted).
bool Shard::connect_server(Session& s) {
    const Config& cfg = rt_.config();
    const size_t b = cfg.frontends[s.frontend].backend;
    const auto& idx = rt_.backend_servers(b);
    while (s.attempts <= cfg.retries) {
        ShardServer* srv = nullptr;
        const size_t n = idx.size();
        if (cfg.backends[b].balance == Balance::kRoundRobin) {
            for (size_t k = 0; k < n && !srv; ++k) {
                ShardServer& c = servers_[idx[rr_[b]++ % n]];
                if (c.state->up.load(std::memory_order_relaxed) && &c != s.failed) srv = &c;
            }
        } else {
            const size_t start = rr_[b]++;
            for (size_t k = 0; k < n; ++k) {
                ShardServer& c = servers_[idx[(start + k) % n]];
                if (!c.state->up.load(std::memory_order_relaxed) || &c == s.failed) continue;
                if (!srv || c.active < srv->active) srv = &c;
            }
        }
        if (!srv) {
            bump(counters_.no_server);
            return false;
        }
        ++s.attempts;
        int fd = -1;
        try {
            if (aligned_) {
                bool exhausted = true;
                for (size_t a = 0; a < srv->allocators.size() && exhausted; ++a) {
                    auto& targets = srv->targets[a];
                    for (size_t k = 0; k < targets.size() && exhausted; ++k) {
                        auto& t = targets[(srv->next_target + k) % targets.size()];
                        exhausted = !connect_from_pool(s, *srv->allocators[a], t, srv->addr);
                    }
                }
                ++srv->next_target;
                if (exhausted) {
                    bump(counters_.port_exhausted);
                    log_exhausted(*srv);
                    return false;
                }
                bump(counters_.aligned_ports);
                bump(counters_.ports_held);
            } else {
                s.server_sock.reset(::socket(srv->addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
                if (!s.server_sock) throw std::system_error(errno, std::generic_category(), "socket");
                if (::connect(s.server_sock.get(), srv->addr.get(), srv->addr.len) < 0 && errno != EINPROGRESS)
                    throw std::system_error(errno, std::generic_category(), "connect");
                bump(counters_.kernel_ports);
            }
            fd = s.server_sock.get();
        } catch (const std::system_error&) {
            bump(counters_.connect_errors);
            s.server_sock.reset();
            s.lease.reset();
            s.failed = srv;
            if (s.attempts <= cfg.retries) bump(counters_.redispatches);
            continue;
        }
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        s.srv = srv;
        ++srv->active;
        s.server.fd = fd;
        s.server.can_read = s.server.can_write = false;
        s.server.last = now_;
        s.connect_deadline = now_ + cfg.connect_timeout;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = static_cast<Tagged*>(&s.server);
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) return false;
        return true;
    }
    return false;
}

// Drops the server connection of a session that is not connected yet, to try another. The
// socket never got past SYN_SENT, so its port can go straight back.
static void drop_server(Session& s, ShardCounters& c) {
    if (s.srv) --s.srv->active;
    if (s.lease) drop(c.ports_held);
    s.server_sock.reset();  // closing the fd also removes it from epoll
    s.lease.reset();
    s.server.fd = -1;
    s.failed = s.srv;
    s.srv = nullptr;
}

void Shard::on_event(Session& s, bool server_side, uint32_t events) {
    Endpoint& e = server_side ? s.server : s.client;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) e.can_read = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) e.can_write = true;
    if (server_side && !s.connected) {
        on_connected(s);
        return;
    }
    if (!server_side && !s.connected && (events & (EPOLLERR | EPOLLHUP))) {
        close_session(s, &counters_.errors);  // the client gave up while we were connecting
        return;
    }
    run_session(s);
}

void Shard::on_connected(Session& s) {
    const int err = sock_int(s.server.fd, SOL_SOCKET, SO_ERROR);
    if (err != 0) {
        if (!s.server.can_write) return;  // not decided yet
        bump(counters_.connect_errors);
        drop_server(s, counters_);
        if (s.attempts <= rt_.config().retries) bump(counters_.redispatches);
        if (!connect_server(s)) close_session(s, nullptr);
        return;
    }
    if (!s.server.can_write) return;
    // A stale event of a dropped earlier attempt can reach the new socket: trust only getpeername.
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    if (::getpeername(s.server.fd, reinterpret_cast<sockaddr*>(&peer), &plen) < 0) {
        s.server.can_write = false;
        return;
    }
    s.connected = true;
    bump(sock_int(s.server.fd, SOL_SOCKET, SO_INCOMING_CPU) == cpu_ ? counters_.aligned_out
                                                                    : counters_.misaligned_out);
    if (rt_.config().backends[rt_.config().frontends[s.frontend].backend].proxy_protocol) {
        const std::string h = proxy_v2_header(peer_name(s.client.fd), local_name(s.client.fd));
        if (::send(s.server.fd, h.data(), h.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(h.size())) {
            close_session(s, &counters_.errors);
            return;
        }
    }
    s.client.last = s.server.last = now_;
    run_session(s);
}

// Moves bytes from `from` to `to` until the source is empty, the destination full, or the
// round budget is spent (kMore). EOF is passed on once everything before it was written.
//
// Splice where it pays: a direction starts in buffer mode — recv into the shard's scratch buffer
// and send straight on, so a small request or response costs two copies and no pipe; the session
// keeps only what the destination did not take. A read that fills the whole scratch buffer marks
// a bulk transfer, and the direction switches to splice(2) through a pipe (no copy to user space).
Pump Shard::pump(Dir& d, Endpoint& from, Endpoint& to, std::atomic<uint64_t>& bytes) {
    for (int round = 0; round < kRounds; ++round) {
        if (d.pending > 0) {
            if (!to.can_write) return Pump::kIdle;
            ssize_t n;
            if (d.spliced)
                n = ::splice(d.pipe_r, nullptr, to.fd, nullptr, d.pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            else
                n = ::send(to.fd, d.buf.data() + d.off, d.pending, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    to.can_write = false;
                    return Pump::kIdle;
                }
                if (errno == EINTR) continue;
                return Pump::kError;
            }
            d.pending -= static_cast<size_t>(n);
            d.off += static_cast<size_t>(n);
            bump(bytes, static_cast<uint64_t>(n));
            to.last = now_;
            if (d.pending > 0) continue;
            d.off = 0;
        }
        if (d.eof) {
            if (!d.shut) {
                ::shutdown(to.fd, SHUT_WR);
                d.shut = true;
            }
            return Pump::kIdle;
        }
        if (!from.can_read) return Pump::kIdle;
        ssize_t n;
        if (d.spliced)
            n = ::splice(from.fd, nullptr, d.pipe_w, nullptr, kChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        else
            n = ::recv(from.fd, scratch_.get(), kChunk, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                from.can_read = false;
                return Pump::kIdle;
            }
            if (errno == EINTR) continue;
            return Pump::kError;
        }
        if (n == 0) {
            d.eof = true;
            continue;
        }
        from.last = now_;
        if (d.spliced) {
            d.pending = static_cast<size_t>(n);
            continue;
        }
        // Buffer mode: straight on to the destination, keep the rest.
        ssize_t w = 0;
        if (to.can_write) {
            w = ::send(to.fd, scratch_.get(), static_cast<size_t>(n), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return Pump::kError;
                if (errno != EINTR) to.can_write = false;
                w = 0;
            }
        }
        if (w > 0) {
            bump(bytes, static_cast<uint64_t>(w));
            to.last = now_;
        }
        if (w < n) {
            d.buf.assign(scratch_.get() + w, scratch_.get() + n);
            d.off = 0;
            d.pending = static_cast<size_t>(n - w);
        } else if (static_cast<size_t>(n) == kChunk && rt_.config().splice) {
            start_splice(d);
        }
    }
    return Pump::kMore;
}

// Switches an empty direction to splice mode (stays in buffer mode if no pipe can be had).
void Shard::start_splice(Dir& d) {
    if (!pipes_.empty()) {
        std::tie(d.pipe_r, d.pipe_w) = pipes_.back();
        pipes_.pop_back();
    } else {
        int p[2];
        if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return;
        d.pipe_r = p[0];
        d.pipe_w = p[1];
    }
    d.spliced = true;
    std::vector<char>().swap(d.buf);
}

void Shard::run_session(Session& s) {
    if (!s.connected || s.closed) return;
    const Pump up = pump(s.up, s.client, s.server, counters_.bytes_in);
    if (up == Pump::kError) return close_session(s, &counters_.errors);
    const Pump down = pump(s.down, s.server, s.client, counters_.bytes_out);
    if (down == Pump::kError) return close_session(s, &counters_.errors);
    if (s.up.done() && s.down.done()) return close_session(s, nullptr);
    if ((up == Pump::kMore || down == Pump::kMore) && !s.queued) {
        s.queued = true;
        again_.push_back(&s);
    }
}

void Shard::close_session(Session& s, std::atomic<uint64_t>* reason) {
    if (s.closed) return;
    s.closed = true;
    if (reason) bump(*reason);
    if (s.prev) s.prev->next = s.next;
    else head_ = s.next;
    if (s.next) s.next->prev = s.prev;
    s.prev = s.next = nullptr;
    if (s.srv) --s.srv->active;
    // Both directions finished: the server has our FIN, so our socket would sit in TIME_WAIT for
    // a minute holding its 4-tuple, and an aligned port with it (the pools are small, one coset
    // per queue). If everything but at most the FIN itself is acknowledged nothing can be lost:
    // close with a reset instead, as HAProxy does towards servers.
    bool reset = false;
    if (s.server_sock && s.up.done() && s.down.done()) {
        int unacked = 0;
        if (::ioctl(s.server.fd, SIOCOUTQ, &unacked) == 0 && unacked <= 1) {
            const linger abort{1, 0};
            reset = ::setsockopt(s.server.fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort) == 0;
        }
    }
    s.client_fd.reset();
    s.server_sock.reset();
    if (s.lease) {
        drop(counters_.ports_held);
        if (reset) s.lease.reset();
        else cool(std::move(s.lease));  // may be in TIME_WAIT: not the next port handed out
    }
    for (Dir* d : {&s.up, &s.down}) {
        if (d->pipe_r < 0) continue;
        if (d->pending == 0 && pipes_.size() < kSparePipes) {
            pipes_.emplace_back(d->pipe_r, d->pipe_w);
        } else {
            ::close(d->pipe_r);
            ::close(d->pipe_w);
        }
        d->pipe_r = d->pipe_w = -1;
    }
    drop(counters_.sessions_active);
    graveyard_.push_back(&s);
    if (paused_ && !rt_.stopping.load(std::memory_order_relaxed) &&
        counters_.sessions_active.load(std::memory_order_relaxed) < limit_)
        pause_listeners(false);
}

void Shard::sweep() {
    const Config& cfg = rt_.config();
    release_cooled();
    for (Session* s = head_; s;) {
        Session* next = s->next;
        if (!s->connected) {
            if (s->srv && now_ >= s->connect_deadline) {
                bump(counters_.timeouts_connect);
                drop_server(*s, counters_);
                if (!connect_server(*s)) close_session(*s, nullptr);
            }
        } else if (now_ - s->client.last >= cfg.client_idle) {
            close_session(*s, &counters_.timeouts_client);
        } else if (now_ - s->server.last >= cfg.server_idle) {
            close_session(*s, &counters_.timeouts_server);
        }
        s = next;
    }
}

}  // namespace shunt::proxy
