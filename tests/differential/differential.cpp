// Differential test of socket semantics: seeded random sequences of socket calls on a connected
// TCP pair, run once on the plain kernel and once under `shunt run` (differential.sh compares).
//
// Design. One thread drives both ends of each connection (a helper thread only accepts, because
// a process cannot accept its own connection from the thread that connects). Every call and its
// outcome (return value, errno, revents, bytes, SIGPIPEs) becomes one trace line; a sequence's
// result is the hash of its lines, and the caller compares hashes between the two runs.
//
// Determinism despite timing: the generator draws each call from the seed and a model of the
// pair (bytes in flight each way, shutdowns, closes, descriptors, O_NONBLOCK, timeouts), and the
// model is updated from what the kernel is known to do, never from the results - so the same
// seed issues the same calls in both runs until the first difference, which is what is
// reported. After any call that sends something to the peer (data, FIN, RST) the driver waits,
// with a deadline, until the peer's side shows it (FIONREAD reaches the expected count, or poll
// reports RDHUP/HUP): on loopback the kernel delivers within the sending call almost always,
// shunt's rings within the call always, so what follows sees a settled state. A call that could
// block forever is never issued; a blocking call is issued only when the model says it returns
// at once, or under SO_RCVTIMEO (it then times out after a few ms).
//
// Bytes in flight stay far below every buffer (16 KiB and 16 writes per direction) so writes
// never block or come back short on either transport. What is deliberately not compared (it is
// timing in the kernel itself): SIOCOUTQ (depends on delayed ACKs), EPOLLOUT edges under EPOLLET
// (window updates), which of several ready events a small maxevents returns.
//
// Features (--features a,b,...; "default" = the set that must match; see differential.md):
//   io       reads and writes of every form and flag (always on)
//   poll     poll/ppoll/select readiness with random event sets
//   epoll    an epoll set per sequence: ADD/MOD/DEL with LT/ET/ONESHOT/RDHUP, waits
//   dup      dup/dup2/dup3/F_DUPFD, closing one copy
//   nonblock O_NONBLOCK via fcntl and FIONBIO
//   shut     shutdown(SHUT_WR / SHUT_RDWR)
//   shutrd   shutdown(SHUT_RD) (reads after it)
//   close    closing an end with the peer open (FIN, or RST when unread data is discarded)
//   afterclose  writes to a peer that has closed (RST comes back)
//   timeo    SO_RCVTIMEO/SO_SNDTIMEO, blocking reads that time out
//   sockopt  FIONREAD, SO_ERROR, getpeername, SO_RCVTIMEO round trips
//   oob      MSG_OOB sends and receives, SIOCATMARK
//   signal   a signal interrupting a blocking read (EINTR)
//   fork     a forked child makes one call on the connection and exits
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

// ---- small pieces -------------------------------------------------------------------------

struct Rng {
    uint64_t s;
    uint64_t next() {  // splitmix64
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    uint32_t below(uint32_t n) { return n ? static_cast<uint32_t>(next() % n) : 0; }
    bool chance(uint32_t percent) { return below(100) < percent; }
    template <class T> const T& pick(const std::vector<T>& v) { return v[below(static_cast<uint32_t>(v.size()))]; }
};

// The byte at offset k of direction d (0: client to server, 1: server to client).
uint8_t stream_byte(uint64_t seed, int d, uint64_t k) {
    uint64_t x = (k + 1) * 0x9E3779B97F4A7C15ull ^ (seed * 0xD6E8FEB86659FD93ull) ^ (static_cast<uint64_t>(d) << 62);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return static_cast<uint8_t>(x >> 56);
}

const char* errname(int e) {
    switch (e) {
        case 0: return "0";
        case EAGAIN: return "EAGAIN";
        case EBADF: return "EBADF";
        case EPIPE: return "EPIPE";
        case ECONNRESET: return "ECONNRESET";
        case ENOTCONN: return "ENOTCONN";
        case EINVAL: return "EINVAL";
        case EINTR: return "EINTR";
        case EEXIST: return "EEXIST";
        case ENOENT: return "ENOENT";
        case EBUSY: return "EBUSY";
        case EOPNOTSUPP: return "EOPNOTSUPP";
        case EFAULT: return "EFAULT";
        case ETIMEDOUT: return "ETIMEDOUT";
        case EPERM: return "EPERM";
        case ENOTSOCK: return "ENOTSOCK";
        default: return nullptr;
    }
}
std::string errstr(int e) {
    const char* n = errname(e);
    return n ? n : "errno" + std::to_string(e);
}

std::string poll_bits(unsigned v) {
    static const std::pair<unsigned, const char*> names[] = {
        {POLLIN, "IN"}, {POLLPRI, "PRI"}, {POLLOUT, "OUT"}, {POLLERR, "ERR"}, {POLLHUP, "HUP"},
        {POLLNVAL, "NVAL"}, {POLLRDNORM, "RDNORM"}, {POLLRDBAND, "RDBAND"}, {POLLWRNORM, "WRNORM"},
        {POLLWRBAND, "WRBAND"}, {POLLRDHUP, "RDHUP"}};
    std::string s;
    for (auto& [bit, name] : names)
        if (v & bit) { s += s.empty() ? "" : "|"; s += name; v &= ~bit; }
    if (v) {  // appended piece by piece: GCC 12 -O3 -Wrestrict misreads "literal" + string here
        if (!s.empty()) s += '|';
        s += std::to_string(v);
    }
    return s.empty() ? "0" : s;
}
std::string epoll_bits(uint32_t v) {
    std::string s = poll_bits(v & ~(EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE));
    if (v & EPOLLET) s += "|ET";
    if (v & EPOLLONESHOT) s += "|ONESHOT";
    return s;
}

std::atomic<int> g_sigpipes{0};
// The watchdog: the sequence and step running now, and since when (0: between calls).
std::atomic<uint64_t> g_seed{0};
std::atomic<int> g_op{0};
std::atomic<int64_t> g_step_since{0};
std::atomic<int> g_sigusr{0};
extern "C" void on_sigpipe(int) { g_sigpipes.fetch_add(1, std::memory_order_relaxed); }
extern "C" void on_sigusr(int) { g_sigusr.fetch_add(1, std::memory_order_relaxed); }

int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---- features -----------------------------------------------------------------------------

struct Features {
    bool poll = false, epoll = false, dup = false, nonblock = false, shut = false, shutrd = false,
         close = false, afterclose = false, timeo = false, sockopt = false, oob = false, signal = false,
         zero = false, rst = false, finished = false, fork = false;
    bool set(const std::string& name) {
        if (name == "default") { poll = epoll = dup = nonblock = shut = close = sockopt = true; return true; }
        if (name == "all") {
            poll = epoll = dup = nonblock = shut = shutrd = close = afterclose = timeo = sockopt = oob = signal = zero = rst = finished = fork = true;
            return true;
        }
        if (name == "io") return true;
        bool* f = name == "poll" ? &poll : name == "epoll" ? &epoll : name == "dup" ? &dup
                : name == "nonblock" ? &nonblock : name == "shut" ? &shut : name == "shutrd" ? &shutrd
                : name == "close" ? &close : name == "afterclose" ? &afterclose : name == "timeo" ? &timeo
                : name == "sockopt" ? &sockopt : name == "oob" ? &oob : name == "signal" ? &signal
                : name == "zero" ? &zero : name == "rst" ? &rst : name == "finished" ? &finished
                : name == "fork" ? &fork : nullptr;
        if (!f) return false;
        *f = true;
        return true;
    }
};

// ---- the pair and its model ---------------------------------------------------------------

constexpr uint64_t kMaxInFlight = 16 * 1024;  // unread bytes per direction
constexpr int kMaxWritesInFlight = 16;
constexpr int kSyncDeadlineUs = 2'000'000;

struct End {
    std::vector<int> fds;       // descriptors of this end still open
    bool closed = false;        // every descriptor closed
    bool shut_wr = false, shut_rd = false;
    bool nonblock = false;
    bool reset = false;         // an RST reached this end (reads/writes fail)
    bool saw_eof_sync = false;
    int rcvtimeo_ms = 0;
    uint64_t sent = 0;          // bytes written by this end that the peer's stack accepted
    uint64_t received = 0;      // bytes of the peer's stream consumed here
    int writes_in_flight = 0;
};

class Sequence {
public:
    Sequence(uint64_t seed, const Features& f, int ops, bool print) : seed_(seed), f_(f), ops_(ops), print_(print) {
        rng_.s = seed * 0x2545F4914F6CDD1Dull + 1;
    }

    uint64_t hash() const { return hash_; }
    int lines() const { return lines_; }
    bool broken() const { return broken_; }

    void run(int client, int server) {
        end_[0].fds = {client};
        end_[1].fds = {server};
        for (int i = 0; i < ops_ && !broken_ && !stop_; ++i) step(i);
        g_step_since = 0;
        teardown();
    }

private:
    uint64_t seed_;
    Features f_;
    int ops_;
    bool print_;
    Rng rng_;
    End end_[2];
    int epfd_ = -1;
    uint64_t hash_ = 0xcbf29ce484222325ull;
    int lines_ = 0;
    bool broken_ = false;  // a wait for the peer timed out: nothing after it is meaningful
    bool stop_ = false;
    int op_ = 0;
    int next_dup_target_ = 700;

    [[gnu::format(printf, 2, 3)]] void out(const char* fmt, ...) {
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        std::string line = std::to_string(op_) + " " + buf;
        for (unsigned char c : line) { hash_ ^= c; hash_ *= 0x100000001b3ull; }
        hash_ ^= '\n';
        hash_ *= 0x100000001b3ull;
        ++lines_;
        if (print_) { std::printf("  %s\n", line.c_str()); std::fflush(stdout); }
    }

    // A result "r errno" and the SIGPIPEs the call raised.
    std::string res(long r, int e, int pipes_before) {
        std::string s = std::to_string(r);
        if (r < 0) s += " " + errstr(e);
        const int p = g_sigpipes.load() - pipes_before;
        if (p) s += " SIGPIPE" + (p > 1 ? "x" + std::to_string(p) : "");
        return s;
    }

    int peer(int e) const { return 1 - e; }
    bool open(int e) const { return !end_[e].closed; }
    int fd_of(int e) { return rng_.pick(end_[e].fds); }
    // Bytes sent by the peer that e has not consumed.
    uint64_t unread(int e) const { return end_[peer(e)].sent - end_[e].received; }
    bool eof_coming(int e) const { const End& p = end_[peer(e)]; return p.shut_wr || p.closed; }
    // Both directions have ended (FIN each way): the kernel's socket is in CLOSE.
    bool finished() const { return (end_[0].shut_wr || end_[0].closed) && (end_[1].shut_wr || end_[1].closed); }

    // ---- waiting for the peer to see what was sent (not part of the trace unless it fails) --

    bool wait_inq(int e, uint64_t want) {
        if (!open(e)) return true;
        const int fd = end_[e].fds.front();
        const int64_t until = now_us() + kSyncDeadlineUs;
        int n = -1;
        for (int round = 0;; ++round) {
            if (::ioctl(fd, FIONREAD, &n) == 0 && static_cast<uint64_t>(n) == want) {
                if (round > 0 && getenv("DIFF_DEBUG")) fprintf(stderr, "seed %llu op %d: FIONREAD %d after %d rounds\n", (unsigned long long)seed_, op_, n, round);
                return true;
            }
            if (round == 0 && getenv("DIFF_DEBUG")) fprintf(stderr, "seed %llu op %d: FIONREAD %d want %llu\n", (unsigned long long)seed_, op_, n, (unsigned long long)want);
            if (now_us() > until) break;
            pollfd p{fd, POLLIN, 0};
            ::poll(&p, 1, 1);
        }
        out("SYNC-TIMEOUT end %d FIONREAD %d want %llu", e, n, static_cast<unsigned long long>(want));
        broken_ = true;
        return false;
    }

    bool wait_revents(int e, short bits, const char* what) {
        if (!open(e)) return true;
        const int fd = end_[e].fds.front();
        const int64_t until = now_us() + kSyncDeadlineUs;
        pollfd p{fd, static_cast<short>(POLLIN | POLLRDHUP), 0};
        for (;;) {
            p.revents = 0;
            ::poll(&p, 1, 1);
            if (p.revents & bits) return true;
            if (now_us() > until) break;
        }
        out("SYNC-TIMEOUT end %d waiting for %s, revents %s", e, what, poll_bits(static_cast<unsigned short>(p.revents)).c_str());
        broken_ = true;
        return false;
    }

    // ---- operations -------------------------------------------------------------------------

    void step(int i) {
        op_ = i;
        g_op = i;
        g_step_since = now_us();
        // Pick an open end (there always is one until both are closed).
        std::vector<int> ends;
        for (int e = 0; e < 2; ++e) if (open(e)) ends.push_back(e);
        if (ends.empty()) return;
        const int e = rng_.pick(ends);
        const uint32_t r = rng_.below(100);
        if (r < 30) return op_write(e);
        if (r < 58) return op_read(e);
        if (r < 66) { if (f_.poll) return op_poll(); return op_read(e); }
        if (r < 70) { if (f_.poll) return op_select(); return op_write(e); }
        if (r < 78) { if (f_.epoll) return op_epoll(e); return op_read(e); }
        if (r < 82) { if (f_.dup) return op_dup(e); return op_write(e); }
        if (r < 85) { if (f_.nonblock) return op_nonblock(e); return op_read(e); }
        if (r < 88) { if (f_.shut || f_.shutrd) return op_shutdown(e); return op_write(e); }
        if (r < 90) { if (f_.close) return op_close(e); return op_read(e); }
        if (r < 95) { if (f_.sockopt) return op_sockopt(e); return op_read(e); }
        if (r < 97) { if (f_.timeo) return op_timeo(e); return op_write(e); }
        if (r < 98) { if (f_.oob) return op_oob_send(e); return op_write(e); }
        if (f_.signal && rng_.chance(50)) return op_signal_read(e);
        if (f_.fork) return op_fork(e);
        return op_read(e);
    }

    void fill(std::vector<uint8_t>& buf, int d, uint64_t from, size_t n) {
        buf.resize(n);
        for (size_t k = 0; k < n; ++k) buf[k] = stream_byte(seed_, d, from + k);
    }

    void op_write(int e) {
        End& me = end_[e];
        End& them = end_[peer(e)];
        // Writes to a closed peer only with afterclose (RST timing); writes after our own SHUT_WR
        // fail at once on both transports.
        // A peer that shut down both ways (FIN_WAIT with RCV_SHUTDOWN) answers data with RST,
        // like a closed one.
        const bool peer_gone = them.closed || (them.shut_rd && them.shut_wr);
        if (peer_gone && !f_.afterclose) return op_read(e);
        if (me.reset && !f_.afterclose) return op_read(e);
        const uint64_t in_flight = me.sent - them.received;
        if (in_flight >= kMaxInFlight || me.writes_in_flight >= kMaxWritesInFlight) return op_read(open(peer(e)) ? peer(e) : e);
        uint64_t room = kMaxInFlight - in_flight;
        size_t n = f_.zero && rng_.chance(5) ? 0 : 1 + rng_.below(static_cast<uint32_t>(std::min<uint64_t>(room, rng_.chance(70) ? 512 : 8192)));
        std::vector<uint8_t> buf;
        fill(buf, e, me.sent, n);
        const int fd = fd_of(e);
        const uint32_t form = rng_.below(5);
        int flags = 0;
        if (rng_.chance(30)) flags |= MSG_DONTWAIT;
        if (rng_.chance(20)) flags |= MSG_NOSIGNAL;
        const int pipes = g_sigpipes.load();
        ssize_t w;
        const char* name;
        errno = 0;
        switch (form) {
            case 0: name = "write"; w = ::write(fd, buf.data(), n); flags = 0; break;
            case 1: name = "send"; w = ::send(fd, buf.data(), n, flags); break;
            case 2: {
                name = "writev";
                size_t cut = n ? rng_.below(static_cast<uint32_t>(n + 1)) : 0;
                iovec iov[2] = {{buf.data(), cut}, {buf.data() + cut, n - cut}};
                w = ::writev(fd, iov, 2);
                flags = 0;
                break;
            }
            case 3: {
                name = "sendmsg";
                size_t cut = n ? rng_.below(static_cast<uint32_t>(n + 1)) : 0;
                iovec iov[2] = {{buf.data(), cut}, {buf.data() + cut, n - cut}};
                msghdr m{};
                m.msg_iov = iov;
                m.msg_iovlen = 2;
                w = ::sendmsg(fd, &m, flags);
                break;
            }
            default: name = "sendto"; w = ::sendto(fd, buf.data(), n, flags, nullptr, 0); break;
        }
        const int err = errno;
        out("%s end %d fd %d n %zu flags %#x -> %s", name, e, fd == end_[e].fds.front() ? 0 : 1, n, flags,
            res(w, err, pipes).c_str());
        if (w > 0) {
            me.sent += static_cast<uint64_t>(w);
            ++me.writes_in_flight;
            if (peer_gone) {
                // The peer's stack answers with RST: wait until this end sees it.
                me.reset = true;
                if (!them.closed) them.reset = true;
                wait_revents(e, POLLHUP | POLLERR, "RST");
            } else {
                wait_inq(peer(e), unread(peer(e)));
            }
        }
    }

    void op_read(int e) {
        End& me = end_[e];
        const uint64_t avail = unread(e);
        const bool eof = eof_coming(e) || me.shut_rd;
        const int fd = fd_of(e);
        int flags = 0;
        if (rng_.chance(20)) flags |= MSG_PEEK;
        if (rng_.chance(20)) flags |= MSG_WAITALL;
        if (rng_.chance(25)) flags |= MSG_DONTWAIT;
        if (rng_.chance(4)) flags |= MSG_TRUNC;
        size_t n = f_.zero && rng_.chance(5) ? 0 : 1 + rng_.below(rng_.chance(50) ? 256 : 20000);
        const uint32_t form = rng_.below(6);
        if (form == 0 || form == 5) flags = 0;  // read, readv
        const bool nonblocking = me.nonblock || (flags & MSG_DONTWAIT);
        // Would this call wait? (A read of 0 bytes on TCP waits for a byte like any other.)
        const bool satisfied = flags & MSG_WAITALL ? avail >= std::max<size_t>(n, 1) : avail > 0;
        const bool returns_now = satisfied || eof || me.reset || nonblocking;
        // A call that would wait: with no timeout it would wait forever; with one it costs the
        // timeout, so only now and then.
        if (!returns_now && (me.rcvtimeo_ms == 0 || rng_.chance(85))) {
            if (me.rcvtimeo_ms == 0 && f_.timeo && rng_.chance(30)) return op_timeo(e);
            flags |= MSG_DONTWAIT;  // keep the call, make it non-blocking
            if (form == 0 || form == 5) return op_read_dontwait(e, fd, n);
        }
        std::vector<uint8_t> buf(n + 1);
        const int pipes = g_sigpipes.load();
        ssize_t got;
        const char* name;
        errno = 0;
        switch (form) {
            case 0: name = "read"; got = ::read(fd, buf.data(), n); break;
            case 1: name = "recv"; got = ::recv(fd, buf.data(), n, flags); break;
            case 2: {
                name = "recvfrom";
                sockaddr_storage from{};
                socklen_t len = sizeof from;
                got = ::recvfrom(fd, buf.data(), n, flags, reinterpret_cast<sockaddr*>(&from), &len);
                break;
            }
            case 3:
            case 5: {
                name = form == 3 ? "recvmsg" : "readv";
                size_t cut = n ? rng_.below(static_cast<uint32_t>(n + 1)) : 0;
                iovec iov[2] = {{buf.data(), cut}, {buf.data() + cut, n - cut}};
                if (form == 5) { got = ::readv(fd, iov, 2); break; }
                msghdr m{};
                m.msg_iov = iov;
                m.msg_iovlen = 2;
                got = ::recvmsg(fd, &m, flags);
                break;
            }
            default: name = "recv"; got = ::recv(fd, buf.data(), n, flags); break;
        }
        const int err = errno;
        finish_read(e, name, fd, n, flags, got, err, pipes, buf);
    }

    void op_read_dontwait(int e, int fd, size_t n) {
        std::vector<uint8_t> buf(n + 1);
        const int pipes = g_sigpipes.load();
        errno = 0;
        const ssize_t got = ::recv(fd, buf.data(), n, MSG_DONTWAIT);
        finish_read(e, "recv", fd, n, MSG_DONTWAIT, got, errno, pipes, buf);
    }

    void finish_read(int e, const char* name, int fd, size_t n, int flags, ssize_t got, int err, int pipes,
                     const std::vector<uint8_t>& buf) {
        End& me = end_[e];
        std::string data = "";
        if (got > 0 && !(flags & MSG_TRUNC)) {
            // Compare with the peer's stream at our read offset.
            const int d = peer(e);
            for (ssize_t k = 0; k < got; ++k)
                if (buf[static_cast<size_t>(k)] != stream_byte(seed_, d, me.received + static_cast<uint64_t>(k))) {
                    data = " DATA-MISMATCH at +" + std::to_string(k);
                    break;
                }
        }
        out("%s end %d fd %d n %zu flags %#x -> %s%s", name, e, fd == end_[e].fds.front() ? 0 : 1, n, flags,
            res(got, err, pipes).c_str(), data.c_str());
        if (got > 0 && !(flags & MSG_PEEK)) {
            me.received += static_cast<uint64_t>(got);
            End& them = end_[peer(e)];
            if (them.sent == me.received) them.writes_in_flight = 0;
        }
    }

    void op_poll() {
        std::vector<pollfd> p;
        std::vector<int> owner;
        for (int e = 0; e < 2; ++e)
            if (open(e) && rng_.chance(70)) {
                short ev = 0;
                if (rng_.chance(60)) ev |= POLLIN;
                if (rng_.chance(50)) ev |= POLLOUT;
                if (rng_.chance(30)) ev |= POLLRDHUP;
                if (rng_.chance(10)) ev |= POLLPRI;
                if (rng_.chance(10)) ev |= POLLRDNORM | POLLWRNORM;
                p.push_back({fd_of(e), ev, 0});
                owner.push_back(e);
            }
        if (p.empty()) return;
        const bool use_ppoll = rng_.chance(30);
        errno = 0;
        int r;
        if (use_ppoll) {
            timespec ts{0, 0};
            r = ::ppoll(p.data(), p.size(), &ts, nullptr);
        } else {
            r = ::poll(p.data(), p.size(), 0);
        }
        const int err = errno;
        std::string s;
        for (size_t k = 0; k < p.size(); ++k)
            s += " end" + std::to_string(owner[k]) + ":" + poll_bits(static_cast<unsigned short>(p[k].events)) + "=>" +
                 poll_bits(static_cast<unsigned short>(p[k].revents));
        out("%s%s -> %s", use_ppoll ? "ppoll" : "poll", s.c_str(), res(r, err, g_sigpipes.load()).c_str());
    }

    void op_select() {
        fd_set rd, wr, ex;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_ZERO(&ex);
        int maxfd = -1;
        std::string s;
        std::vector<std::pair<int, int>> asked;  // (end, fd)
        for (int e = 0; e < 2; ++e)
            if (open(e) && rng_.chance(70)) {
                const int fd = fd_of(e);
                if (rng_.chance(60)) FD_SET(fd, &rd);
                if (rng_.chance(50)) FD_SET(fd, &wr);
                if (rng_.chance(20)) FD_SET(fd, &ex);
                maxfd = std::max(maxfd, fd);
                asked.push_back({e, fd});
                s += " end" + std::to_string(e) + ":" + (FD_ISSET(fd, &rd) ? "r" : "") + (FD_ISSET(fd, &wr) ? "w" : "") +
                     (FD_ISSET(fd, &ex) ? "x" : "");
            }
        if (asked.empty()) return;
        timeval tv{0, 0};
        errno = 0;
        const int r = ::select(maxfd + 1, &rd, &wr, &ex, &tv);
        const int err = errno;
        s += " =>";
        for (auto& [e, fd] : asked)
            s += " end" + std::to_string(e) + ":" + (FD_ISSET(fd, &rd) ? "r" : "") + (FD_ISSET(fd, &wr) ? "w" : "") +
                 (FD_ISSET(fd, &ex) ? "x" : "");
        out("select%s -> %s", s.c_str(), res(r, err, g_sigpipes.load()).c_str());
    }

    void op_epoll(int e) {
        if (epfd_ < 0) {
            epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
            out("epoll_create1 -> %s", epfd_ >= 0 ? "ok" : errstr(errno).c_str());
            if (epfd_ < 0) { broken_ = true; return; }
        }
        const uint32_t r = rng_.below(10);
        if (r < 4) {
            // A wait: every registration fits in maxevents, events sorted by descriptor.
            epoll_event ev[16];
            errno = 0;
            const int n = ::epoll_wait(epfd_, ev, 16, 0);
            const int err = errno;
            std::vector<std::pair<int, uint32_t>> got;
            for (int k = 0; k < n; ++k) got.push_back({static_cast<int>(ev[k].data.u64), static_cast<uint32_t>(ev[k].events)});
            std::sort(got.begin(), got.end());
            std::string s;
            for (auto& [tag, events] : got) s += " " + std::to_string(tag) + ":" + epoll_bits(events);
            out("epoll_wait -> %s%s", res(n, err, g_sigpipes.load()).c_str(), s.c_str());
            return;
        }
        // ADD / MOD / DEL on a descriptor of end e, tagged with the end and which descriptor.
        const int fd = fd_of(e);
        uint32_t events = 0;
        if (rng_.chance(70)) events |= EPOLLIN;
        if (rng_.chance(30)) events |= EPOLLRDHUP;
        if (rng_.chance(30)) events |= EPOLLET;
        if (rng_.chance(20)) events |= EPOLLONESHOT;
        if (!(events & EPOLLET) && rng_.chance(40)) events |= EPOLLOUT;  // no OUT edges: window updates
        int opn = r < 7 ? EPOLL_CTL_ADD : r < 9 ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = static_cast<uint64_t>(e * 10 + (fd == end_[e].fds.front() ? 0 : 1));
        errno = 0;
        const int rc = ::epoll_ctl(epfd_, opn, fd, &ev);
        const int err = errno;
        out("epoll_ctl %s end %d fd %d %s -> %s", opn == EPOLL_CTL_ADD ? "ADD" : opn == EPOLL_CTL_MOD ? "MOD" : "DEL", e,
            fd == end_[e].fds.front() ? 0 : 1, epoll_bits(events).c_str(), res(rc, err, g_sigpipes.load()).c_str());
    }

    void op_dup(int e) {
        End& me = end_[e];
        const int fd = fd_of(e);
        const uint32_t r = rng_.below(10);
        if (r < 3 && me.fds.size() > 1) {
            // Close one copy: the end stays open.
            const int victim = rng_.pick(me.fds);
            errno = 0;
            const int rc = ::close(victim);
            out("close copy end %d -> %s", e, res(rc, errno, g_sigpipes.load()).c_str());
            me.fds.erase(std::find(me.fds.begin(), me.fds.end(), victim));
            return;
        }
        if (me.fds.size() >= 4) return;
        int nfd;
        const char* name;
        errno = 0;
        // A target number no descriptor of ours uses (dup2/dup3 would close it silently).
        int target;
        do {
            target = next_dup_target_++;
            if (next_dup_target_ > 760) next_dup_target_ = 700;
        } while (std::count(end_[0].fds.begin(), end_[0].fds.end(), target) ||
                 std::count(end_[1].fds.begin(), end_[1].fds.end(), target));
        switch (rng_.below(4)) {
            case 0: name = "dup"; nfd = ::dup(fd); break;
            case 1: name = "dup2"; ::close(target); nfd = ::dup2(fd, target); break;
            case 2: name = "dup3"; ::close(target); nfd = ::dup3(fd, target, O_CLOEXEC); break;
            default: name = "F_DUPFD"; nfd = ::fcntl(fd, F_DUPFD_CLOEXEC, 600); break;
        }
        const int err = errno;
        out("%s end %d -> %s", name, e, nfd >= 0 ? "ok" : errstr(err).c_str());
        if (nfd >= 0) me.fds.push_back(nfd);
    }

    void op_nonblock(int e) {
        End& me = end_[e];
        const int fd = fd_of(e);
        const bool on = rng_.chance(50);
        errno = 0;
        int rc;
        if (rng_.chance(50)) {
            int fl = ::fcntl(fd, F_GETFL);
            out("F_GETFL end %d -> nonblock %d rdwr %d", e, fl >= 0 && (fl & O_NONBLOCK) ? 1 : 0, fl >= 0 && (fl & O_ACCMODE) == O_RDWR);
            rc = ::fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
            out("F_SETFL end %d nonblock %d -> %s", e, on, res(rc, errno, g_sigpipes.load()).c_str());
        } else {
            int v = on;
            rc = ::ioctl(fd, FIONBIO, &v);
            out("FIONBIO end %d %d -> %s", e, on, res(rc, errno, g_sigpipes.load()).c_str());
        }
        if (rc == 0) me.nonblock = on;
    }

    void op_shutdown(int e) {
        End& me = end_[e];
        std::vector<int> hows;
        if (f_.shut) hows.push_back(SHUT_WR);
        if (f_.shutrd) { hows.push_back(SHUT_RD); hows.push_back(SHUT_RDWR); }
        if (finished() && !f_.finished) return op_read(e);
        const int how = rng_.pick(hows);
        const int fd = fd_of(e);
        errno = 0;
        const int rc = ::shutdown(fd, how);
        out("shutdown end %d %s -> %s", e, how == SHUT_WR ? "WR" : how == SHUT_RD ? "RD" : "RDWR",
            res(rc, errno, g_sigpipes.load()).c_str());
        if (rc != 0) return;
        const bool was_wr = me.shut_wr;
        if (how != SHUT_RD) me.shut_wr = true;
        if (how != SHUT_WR) me.shut_rd = true;
        if (me.shut_wr && !was_wr && open(peer(e)) && !end_[peer(e)].saw_eof_sync) {
            wait_revents(peer(e), POLLRDHUP | POLLHUP, "FIN");
            end_[peer(e)].saw_eof_sync = true;
        }
    }

    void op_close(int e) {
        End& me = end_[e];
        // Closing with unread bytes discards them: the kernel answers with RST.
        const bool rst = unread(e) > 0;
        if (rst && !f_.rst) return op_read(e);
        for (int fd : me.fds) {
            errno = 0;
            const int rc = ::close(fd);
            out("close end %d -> %s", e, res(rc, errno, g_sigpipes.load()).c_str());
        }
        me.fds.clear();
        me.closed = true;
        End& them = end_[peer(e)];
        if (!them.closed) {
            if (rst) {
                them.reset = true;
                wait_revents(peer(e), POLLHUP | POLLERR, "RST");
            } else if (!me.shut_wr && !them.saw_eof_sync) {
                wait_revents(peer(e), POLLRDHUP | POLLHUP, "FIN");
            }
            them.saw_eof_sync = true;
        }
    }

    void op_sockopt(int e) {
        const int fd = fd_of(e);
        const uint32_t r = rng_.below(5);
        errno = 0;
        if (r == 0 || r == 1) {
            int n = -1;
            const int rc = ::ioctl(fd, FIONREAD, &n);
            out("FIONREAD end %d -> %s %d", e, res(rc, errno, g_sigpipes.load()).c_str(), rc == 0 ? n : -1);
        } else if (r == 2) {
            int v = -1;
            socklen_t len = sizeof v;
            const int rc = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len);
            out("SO_ERROR end %d -> %s %s", e, res(rc, errno, g_sigpipes.load()).c_str(), rc == 0 ? errstr(v).c_str() : "-");
        } else if (r == 3 && (!finished() || f_.finished)) {
            sockaddr_storage a{};
            socklen_t len = sizeof a;
            const int rc = ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len);
            out("getpeername end %d -> %s family %d", e, res(rc, errno, g_sigpipes.load()).c_str(), rc == 0 ? a.ss_family : -1);
        } else {
            int v = 0;
            socklen_t len = sizeof v;
            const int rc = ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len);
            out("SO_TYPE end %d -> %s %d", e, res(rc, errno, g_sigpipes.load()).c_str(), v);
        }
    }

    void op_timeo(int e) {
        End& me = end_[e];
        const int fd = fd_of(e);
        const bool rcv = rng_.chance(70);
        const int ms = rng_.chance(30) ? 0 : 2 + static_cast<int>(rng_.below(4));
        timeval tv{0, ms * 1000};
        errno = 0;
        int rc = ::setsockopt(fd, SOL_SOCKET, rcv ? SO_RCVTIMEO : SO_SNDTIMEO, &tv, sizeof tv);
        out("setsockopt %s end %d %d ms -> %s", rcv ? "SO_RCVTIMEO" : "SO_SNDTIMEO", e, ms, res(rc, errno, g_sigpipes.load()).c_str());
        if (rc == 0 && rcv) me.rcvtimeo_ms = ms;
        timeval back{};
        socklen_t len = sizeof back;
        rc = ::getsockopt(fd, SOL_SOCKET, rcv ? SO_RCVTIMEO : SO_SNDTIMEO, &back, &len);
        out("getsockopt -> %s %ld.%06ld", res(rc, errno, g_sigpipes.load()).c_str(), static_cast<long>(back.tv_sec), static_cast<long>(back.tv_usec));
        // A blocking read that times out (or returns what is there).
        if (rcv && ms > 0 && !me.nonblock && rng_.chance(60)) {
            std::vector<uint8_t> buf(4097);
            const int pipes = g_sigpipes.load();
            const int64_t t0 = now_us();
            errno = 0;
            const int flags = rng_.chance(30) ? MSG_WAITALL : 0;
            const ssize_t got = ::recv(fd, buf.data(), 4096, flags);
            const int err = errno;
            const int64_t took = now_us() - t0;
            // Timed out: must have waited at least the timeout, and not far longer.
            if (got < 0 && err == EAGAIN) out("  waited-enough %d", took >= ms * 1000 - 1000 && took < ms * 1000 + 500'000);
            finish_read(e, "recv-timeo", fd, 4096, flags, got, err, pipes, buf);
        }
    }

    void op_oob_send(int e) {
        End& me = end_[e];
        if (end_[peer(e)].closed || me.shut_wr || me.reset) return op_read(e);
        if (me.sent - end_[peer(e)].received + 1 > kMaxInFlight) return op_read(e);
        uint8_t b = stream_byte(seed_, e, me.sent);
        const int fd = fd_of(e);
        errno = 0;
        const ssize_t w = ::send(fd, &b, 1, MSG_OOB);
        out("send OOB end %d -> %s", e, res(w, errno, g_sigpipes.load()).c_str());
        if (w != 1) return;
        me.sent += 1;
        // The urgent byte is out of the stream on the receiving side (SO_OOBINLINE off): read it
        // with MSG_OOB now, so the model's stream offsets stay the stream's.
        const int pfd = end_[peer(e)].fds.front();
        pollfd p{pfd, POLLPRI, 0};
        const int64_t until = now_us() + kSyncDeadlineUs;
        while (::poll(&p, 1, 1) == 0 && now_us() < until) {}
        out("  poll PRI -> %s", poll_bits(static_cast<unsigned short>(p.revents)).c_str());
        int mark = -1;
        ::ioctl(pfd, SIOCATMARK, &mark);
        uint8_t got = 0;
        errno = 0;
        const ssize_t r = ::recv(pfd, &got, 1, MSG_OOB | MSG_DONTWAIT);
        out("  recv OOB -> %s byte-ok %d atmark %d", res(r, errno, g_sigpipes.load()).c_str(), r == 1 && got == b, mark);
        // The urgent byte is not part of what normal reads return: the model's stream offsets no
        // longer hold, so the sequence ends here.
        stop_ = true;
    }

    void op_signal_read(int e) {
        End& me = end_[e];
        if (me.nonblock || unread(e) > 0 || eof_coming(e) || me.reset || me.shut_rd) return op_read(e);
        // A blocking read with nothing to read, interrupted by SIGUSR1 (no SA_RESTART) from a
        // thread that waits until this one sleeps; SO_RCVTIMEO bounds it if the signal is late.
        const int fd = fd_of(e);
        timeval tv{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        const pid_t tid = gettid();
        std::atomic<bool> done{false};
        pthread_t self = pthread_self();
        std::thread killer([&] {
            char path[64];
            std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
            const int64_t until = now_us() + 500'000;
            while (!done.load() && now_us() < until) {
                FILE* f = std::fopen(path, "r");
                char state = '?';
                if (f) {
                    char line[512];
                    if (std::fgets(line, sizeof line, f)) {
                        const char* p = std::strrchr(line, ')');
                        if (p && p[1] == ' ') state = p[2];
                    }
                    std::fclose(f);
                }
                if (state == 'S') { ::usleep(2000); pthread_kill(self, SIGUSR1); return; }
                ::usleep(200);
            }
        });
        char buf[64];
        errno = 0;
        const int before = g_sigusr.load();
        const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
        const int err = errno;
        done = true;
        killer.join();
        out("recv interrupted end %d -> %s signals %d", e, res(got, err, g_sigpipes.load()).c_str(), g_sigusr.load() - before);
        tv = timeval{me.rcvtimeo_ms / 1000, (me.rcvtimeo_ms % 1000) * 1000};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }

    // fork: the child makes one call on the connection (a write, or a non-blocking read it
    // checks), reports it through a pipe and exits; its exit closes its copies of every
    // descriptor, which must leave the connection to the parent.
    void op_fork(int e) {
        End& me = end_[e];
        const bool write = rng_.chance(50) && !end_[peer(e)].closed && !end_[peer(e)].shut_rd && !me.shut_wr && !me.reset &&
                           me.sent - end_[peer(e)].received + 8192 <= kMaxInFlight && me.writes_in_flight < kMaxWritesInFlight;
        const size_t n = 1 + rng_.below(write ? 8192 : 20000);
        const int fd = fd_of(e);
        int p[2];
        if (::pipe(p) != 0) { broken_ = true; return; }
        std::fflush(stdout);
        const pid_t pid = ::fork();
        if (pid < 0) { out("fork -> %s", errstr(errno).c_str()); broken_ = true; return; }
        if (pid == 0) {
            ::close(p[0]);
            long r[3] = {0, 0, 1};  // result, errno, data ok
            std::vector<uint8_t> buf;
            if (write) {
                fill(buf, e, me.sent, n);
                r[0] = ::send(fd, buf.data(), n, MSG_NOSIGNAL);
                r[1] = errno;
            } else {
                buf.resize(n);
                r[0] = ::recv(fd, buf.data(), n, MSG_DONTWAIT);
                r[1] = errno;
                for (long k = 0; k < r[0]; ++k)
                    if (buf[static_cast<size_t>(k)] != stream_byte(seed_, peer(e), me.received + static_cast<uint64_t>(k))) r[2] = 0;
            }
            [[maybe_unused]] ssize_t w = ::write(p[1], r, sizeof r);
            ::_exit(0);
        }
        ::close(p[1]);
        long r[3] = {-1, 0, 0};
        const ssize_t got = ::read(p[0], r, sizeof r);
        ::close(p[0]);
        int status = 0;
        ::waitpid(pid, &status, 0);
        out("fork child %s end %d n %zu -> %s%s exit %d", write ? "send" : "recv", e, n,
            got == sizeof r ? res(r[0], static_cast<int>(r[1]), g_sigpipes.load()).c_str() : "no report",
            r[2] ? "" : " DATA-MISMATCH", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        if (got != sizeof r || r[0] <= 0) return;
        if (write) {
            me.sent += static_cast<uint64_t>(r[0]);
            ++me.writes_in_flight;
            wait_inq(peer(e), unread(peer(e)));
        } else {
            me.received += static_cast<uint64_t>(r[0]);
            if (end_[peer(e)].sent == me.received) end_[peer(e)].writes_in_flight = 0;
        }
    }

    void teardown() {
        for (auto& me : end_) {
            for (int fd : me.fds) ::close(fd);
            me.fds.clear();
        }
        if (epfd_ >= 0) ::close(epfd_);
        epfd_ = -1;
    }
};

}  // namespace

namespace {

// ---- the accepting thread ------------------------------------------------------------------

class Acceptor {
public:
    explicit Acceptor(int listener) : listener_(listener), thread_([this] { loop(); }) {}
    ~Acceptor() { thread_.detach(); }
    int take() {
        std::unique_lock lock(mu_);
        if (!cv_.wait_for(lock, std::chrono::seconds(20), [this] { return !ready_.empty(); })) return -1;
        const int fd = ready_.front();
        ready_.pop_front();
        return fd;
    }

private:
    int listener_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<int> ready_;
    std::thread thread_;
    void loop() {
        for (;;) {
            const int fd = ::accept4(listener_, nullptr, nullptr, 0);
            if (fd < 0) { if (errno == EINTR) continue; std::perror("accept"); std::exit(3); }
            std::lock_guard lock(mu_);
            ready_.push_back(fd);
            cv_.notify_one();
        }
    }
};

}  // namespace

int main(int argc, char** argv) {
    uint64_t first = 1, count = 100;
    int ops = 40;
    bool trace = false;
    Features f;
    std::string features = "default";
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&] { if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", a.c_str()); std::exit(2); } return std::string(argv[++i]); };
        if (a == "--first") first = std::stoull(val());
        else if (a == "--count") count = std::stoull(val());
        else if (a == "--ops") ops = std::stoi(val());
        else if (a == "--trace") trace = true;
        else if (a == "--features") features = val();
        else {
            std::fprintf(stderr, "usage: %s [--first SEED] [--count N] [--ops N] [--features LIST] [--trace]\n", argv[0]);
            return 2;
        }
    }
    size_t pos = 0;
    while (pos <= features.size()) {
        size_t c = features.find(',', pos);
        if (c == std::string::npos) c = features.size();
        const std::string name = features.substr(pos, c - pos);
        if (!name.empty() && !f.set(name)) { std::fprintf(stderr, "unknown feature %s\n", name.c_str()); return 2; }
        pos = c + 1;
    }

    struct sigaction sa {};
    sa.sa_handler = on_sigpipe;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGPIPE, &sa, nullptr);
    sa.sa_handler = on_sigusr;
    sa.sa_flags = 0;  // no SA_RESTART: a blocking read returns EINTR
    sigaction(SIGUSR1, &sa, nullptr);

    const int lst = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    if (lst < 0 || ::bind(lst, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lst, 64) != 0 ||
        ::getsockname(lst, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) {
        std::perror("listen");
        return 3;
    }
    Acceptor acceptor(lst);
    // A call that blocks although the kernel would have returned: report it and stop (the
    // longest legitimate step waits for a peer deadline of 2 s).
    std::thread([] {
        for (;;) {
            ::usleep(100'000);
            const int64_t since = g_step_since.load();
            if (since && now_us() - since > 5'000'000) {
                std::fflush(stdout);
                std::printf("seed %llu HANG at step %d (blocked 5 s)\n", static_cast<unsigned long long>(g_seed.load()), g_op.load());
                std::fflush(stdout);
                std::_Exit(4);
            }
        }
    }).detach();
    int connections = 0;
    for (uint64_t seed = first; seed < first + count; ++seed) {
        const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0 || ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) { std::perror("connect"); return 3; }
        const int s = acceptor.take();
        if (s < 0) { std::fprintf(stderr, "accept timed out\n"); return 3; }
        ++connections;
        g_seed = seed;
        // Nagle would hold a small write until the peer's delayed ACK (40 ms): the data would
        // not be there when the driver looks.
        const int one = 1;
        ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (trace) std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
        Sequence seq(seed, f, ops, trace);
        seq.run(c, s);
        std::printf("seed %llu lines %d hash %016llx%s\n", static_cast<unsigned long long>(seed), seq.lines(),
                    static_cast<unsigned long long>(seq.hash()), seq.broken() ? " broken" : "");
    }
    std::printf("done %d connections\n", connections);
    return 0;
}
