// epoll semantics of TCP connections, written so that the same binary passes on the plain kernel
// (run it directly: that validates the checks) and under `shunt run` (both ends accelerated, the
// preload emulating epoll for them).
//
// The parent listens on 127.0.0.1; forked peers connect to it and obey commands sent over an
// AF_UNIX socketpair made before the fork (never TCP, so never accelerated): connect, write N
// bytes, read N bytes, shutdown(SHUT_WR), close, each optionally after a delay (to wake a parent
// asleep in epoll_wait). A peer acknowledges each command with one status byte once done. The
// parent checks what epoll_wait reports: 0 ms waits where nothing may be ready, up to 2 s (3 s
// with a delay) where something must become ready.
//
// Usage: preload_epoll_semantics [--only CHECK] [--list] [--pause-file PATH]
//   --pause-file: once the 64 connections of the "many" check are up, print "paused port P" and
//   wait (60 s at most) until PATH exists, so that a script can look at `shunt stat`.
// The first failure prints "FAIL [check] line N: ..." and exits 1; a check hung 30 s fails too.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
const char* g_check = "setup";
std::vector<pid_t> g_pids;       // peers, killed when we fail
std::vector<int> g_parent_only;  // what a new peer closes: the listener, other peers' control ends
int g_listener = -1;
uint16_t g_port = 0;
const char* g_pause_file = nullptr;

void kill_peers() { for (pid_t p : g_pids) kill(p, SIGKILL); }

[[noreturn]] __attribute__((format(printf, 3, 4))) void fail(int line, const char* what, const char* fmt, ...) {
    std::fprintf(stderr, "FAIL [%s] line %d: ", g_check, line);
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fprintf(stderr, " (%s)\n", what);
    kill_peers();
    std::exit(1);
}
#define CHECK(cond, ...) \
    do { if (!(cond)) fail(__LINE__, #cond, __VA_ARGS__); } while (0)

void on_alarm(int) {
    const char a[] = "FAIL [", b[] = "] hung: no progress for 30 s\n";
    (void)!write(2, a, sizeof a - 1);
    (void)!write(2, g_check, strlen(g_check));
    (void)!write(2, b, sizeof b - 1);
    kill_peers();
    _exit(1);
}

long ms_since(Clock::time_point t0) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

std::string evstr(uint32_t e) {
    const std::pair<uint32_t, const char*> names[] = {
        {EPOLLIN, "IN"}, {EPOLLOUT, "OUT"}, {EPOLLRDHUP, "RDHUP"}, {EPOLLHUP, "HUP"}, {EPOLLERR, "ERR"}};
    // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict for "|" + std::string.
    std::string s;
    auto add = [&s](const std::string& part) {
        if (!s.empty()) s += '|';
        s += part;
    };
    for (auto [bit, name] : names) {
        if (e & bit) add(name);
        e &= ~bit;
    }
    if (e) add(std::to_string(e));
    return s.empty() ? "0" : s;
}

// ---- the peer: a forked child holding the client ends ----

enum Op : uint8_t { kConnect = 'c', kWrite = 'w', kRead = 'r', kShutWr = 's', kClose = 'x' };
struct Cmd { uint8_t op, pad[3]; uint32_t conn, n, delay_ms; };
constexpr char kFromParent = 'P';
char pattern(uint32_t conn) { return static_cast<char>('a' + conn % 26); }  // what peer conn #i writes

bool read_all(int fd, void* p, size_t n) {
    for (auto* b = static_cast<char*>(p); n;) {
        const ssize_t r = read(fd, b, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        b += r, n -= static_cast<size_t>(r);
    }
    return true;
}

// A peer's write or read of c.n bytes: 0, an errno, 253 for EOF or 254 for unexpected bytes.
int peer_io(const Cmd& c, int fd) {
    static char buf[1 << 16];
    if (c.op == kWrite) std::memset(buf, pattern(c.conn), sizeof buf);
    for (size_t n = c.n; n;) {
        const size_t chunk = std::min(n, sizeof buf);
        const ssize_t r = c.op == kWrite ? write(fd, buf, chunk) : read(fd, buf, chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r < 0 ? errno : 253;
        if (c.op == kRead && std::count(buf, buf + r, kFromParent) != r) return 254;
        n -= static_cast<size_t>(r);
    }
    return 0;
}

[[noreturn]] void peer_main(int ctl) {
    std::vector<int> conns;
    for (Cmd c{}; read_all(ctl, &c, sizeof c);) {
        if (c.delay_ms) usleep(c.delay_ms * 1000);
        int st = 0;
        if (c.op == kConnect) {
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(g_port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            conns.push_back(socket(AF_INET, SOCK_STREAM, 0));
            if (connect(conns.back(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) st = errno;
        } else if (c.conn >= conns.size()) {
            st = EBADF;
        } else if (c.op == kWrite || c.op == kRead) {
            st = peer_io(c, conns[c.conn]);
        } else if (c.op == kShutWr || c.op == kClose) {
            st = (c.op == kShutWr ? shutdown(conns[c.conn], SHUT_WR) : close(conns[c.conn])) < 0 ? errno : 0;
        }
        const auto ack = static_cast<uint8_t>(std::min(st, 255));
        if (write(ctl, &ack, 1) != 1) break;
    }
    _exit(0);
}

struct Peer { pid_t pid = -1; int ctl = -1; uint32_t next = 0; /* index of its next connection */ };
struct Conn { int fd; uint32_t idx; /* the peer's index for it */ };
Peer g_peer;  // the one most checks use

Peer start_peer() {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair: %s", strerror(errno));
    const pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        for (int fd : g_parent_only) close(fd);
        close(sv[0]);
        peer_main(sv[1]);
    }
    close(sv[1]);
    g_parent_only.push_back(sv[0]);
    g_pids.push_back(pid);
    return Peer{pid, sv[0], 0};
}

void send_cmd(int line, const Peer& p, Op op, uint32_t conn, uint32_t n, uint32_t delay_ms) {
    const Cmd c{op, {}, conn, n, delay_ms};
    if (write(p.ctl, &c, sizeof c) != sizeof c) fail(line, "send", "cannot command the peer: %s", strerror(errno));
}
void ack(int line, const Peer& p) {
    uint8_t st = 0;
    if (!read_all(p.ctl, &st, 1)) fail(line, "ack", "peer %d is gone", p.pid);
    if (st) fail(line, "ack", "peer command failed: %s", st == 254 ? "wrong bytes" : st == 253 ? "EOF" : strerror(st));
}
Conn connect_peer(int line, Peer& p) {
    send_cmd(line, p, kConnect, 0, 0, 0);
    const int fd = accept(g_listener, nullptr, nullptr);
    if (fd < 0) fail(line, "accept", "accept: %s", strerror(errno));
    ack(line, p);
    return Conn{fd, p.next++};
}

// ---- what the parent checks ----

void epctl(int line, int ep, int op, int fd, uint32_t events, uint64_t key) {
    epoll_event e{events, {.u64 = key}};
    if (epoll_ctl(ep, op, fd, &e) < 0)
        fail(line, "epoll_ctl", "epoll_ctl(op %d, fd %d, %s): %s", op, fd, evstr(events).c_str(), strerror(errno));
}

std::string list(const epoll_event* ev, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += " {" + evstr(ev[i].events) + " data " + std::to_string(ev[i].data.u64) + "}";
    return s;
}

// All events within ms (at most max), by data.u64; n < 0 fails.
std::map<uint64_t, uint32_t> collect(int line, int ep, int max, int ms, std::string* text = nullptr) {
    epoll_event ev[128];
    int n;
    while ((n = epoll_wait(ep, ev, std::min(max, 128), ms)) < 0 && errno == EINTR) {}
    if (n < 0) fail(line, "epoll_wait", "epoll_wait: %s", strerror(errno));
    std::map<uint64_t, uint32_t> m;
    for (int i = 0; i < n; ++i) {
        if (!m.emplace(uint64_t{ev[i].data.u64}, uint32_t{ev[i].events}).second)
            fail(line, "unique", "one entry reported twice:%s", list(ev, n).c_str());
    }
    if (text) *text = std::to_string(n) + ":" + list(ev, n);
    return m;
}

void none(int line, int ep, int ms) {
    std::string got;
    const auto t0 = Clock::now();
    if (!collect(line, ep, 8, ms, &got).empty())
        fail(line, "nothing ready", "epoll_wait(%d ms) must report nothing, returned %s", ms, got.c_str());
    if (ms_since(t0) < ms * 9 / 10) fail(line, "timeout", "epoll_wait(%d ms) gave up after %ld ms", ms, ms_since(t0));
}

// Exactly one event, for key, with all of must and none of forbid, within ms; returns its events.
uint32_t one(int line, int ep, uint64_t key, uint32_t must, uint32_t forbid, int ms) {
    std::string got;
    const auto m = collect(line, ep, 128, ms, &got);
    if (m.size() != 1 || !m.count(key) || (m.at(key) & must) != must || (m.at(key) & forbid))
        fail(line, "one event", "epoll_wait(%d ms) must report data %llu with %s (and not %s), returned %s", ms,
             static_cast<unsigned long long>(key), evstr(must).c_str(), evstr(forbid).c_str(), got.c_str());
    return m.at(key);
}

// Exactly one event, for key, only once the peer has done what it was told kDelay ms ago.
constexpr uint32_t kDelay = 150;
uint32_t one_later(int line, int ep, uint64_t key, uint32_t must, uint32_t forbid, Clock::time_point sent) {
    const uint32_t ev = one(line, ep, key, must, forbid, 3000);
    if (ms_since(sent) < kDelay - 20)
        fail(line, "woke early", "reported after %ld ms, before the peer (or thread) acted", ms_since(sent));
    return ev;
}

void read_exact(int line, Conn c, size_t n) {
    char buf[4096];
    for (size_t got = 0; got < n;) {
        const ssize_t r = read(c.fd, buf, std::min(sizeof buf, n - got));
        if (r <= 0)
            fail(line, "read", "read after %zu of %zu bytes: %zd (%s)", got, n, r, r < 0 ? strerror(errno) : "EOF");
        if (std::count(buf, buf + r, pattern(c.idx)) != r) fail(line, "read", "bytes of another connection");
        got += static_cast<size_t>(r);
    }
    char b;
    const ssize_t r = recv(c.fd, &b, 1, MSG_DONTWAIT);  // and that was all
    if (r != -1 || errno != EAGAIN)
        fail(line, "drained", "recv(MSG_DONTWAIT) after the data: %zd (%s)", r, r ? strerror(errno) : "EOF");
}

void expect_errno(int line, const char* call, int rc, int want) {
    const int err = errno;
    if (rc != -1 || err != want)
        fail(line, call, "must fail with %s, returned %d (%s)", strerror(want), rc, rc ? strerror(err) : "success");
}

void write_p(int line, int fd, size_t n) {
    const std::string s(n, kFromParent);
    if (write(fd, s.data(), n) != static_cast<ssize_t>(n)) fail(line, "write", "write: %s", strerror(errno));
}

// Non-blocking writes until EAGAIN; returns how many bytes went.
uint32_t fill(int line, int fd) {
    static const std::string chunk(1 << 16, kFromParent);
    const int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    uint32_t total = 0;
    for (ssize_t w; (w = write(fd, chunk.data(), chunk.size())) > 0;) total += static_cast<uint32_t>(w);
    if (errno != EAGAIN) fail(line, "fill", "write: %s", strerror(errno));
    fcntl(fd, F_SETFL, fl);
    return total;
}

#define SEND(p, op, c, n, delay) send_cmd(__LINE__, p, op, c.idx, n, delay)
#define ACK(p) ack(__LINE__, p)
#define RUN(p, op, c, n) (SEND(p, op, c, n, 0), ACK(p))
#define CONNECT(p) connect_peer(__LINE__, p)
#define ADD(ep, fd, ev, key) epctl(__LINE__, ep, EPOLL_CTL_ADD, fd, ev, key)
#define MOD(ep, fd, ev, key) epctl(__LINE__, ep, EPOLL_CTL_MOD, fd, ev, key)
#define DEL(ep, fd) epctl(__LINE__, ep, EPOLL_CTL_DEL, fd, 0, 0)
#define NONE(ep, ms) none(__LINE__, ep, ms)
#define ONE(ep, key, must, forbid, ms) one(__LINE__, ep, key, must, forbid, ms)
#define COLLECT(ep, max, ms) collect(__LINE__, ep, max, ms)
#define READ(c, n) read_exact(__LINE__, c, n)
#define WRITE_P(fd, n) write_p(__LINE__, fd, n)
#define FILL(fd) fill(__LINE__, fd)
#define EXPECT_ERRNO(call, want) expect_errno(__LINE__, #call, call, want)
// The peer writes n bytes on c after kDelay ms while we sleep: exactly key's EPOLLIN wakes us.
#define ONE_WHEN_PEER_WRITES(ep, key, c, n) \
    (SEND(g_peer, kWrite, c, n, kDelay), one_later(__LINE__, ep, key, EPOLLIN, kNotIn, Clock::now()), ACK(g_peer))

// A thread that runs f after kDelay ms.
template <class F>
std::thread after_delay(F f) {
    return std::thread([f] { usleep(kDelay * 1000), f(); });
}

constexpr uint32_t kNotIn = EPOLLOUT | EPOLLHUP | EPOLLERR | EPOLLRDHUP;  // for an EPOLLIN-only registration
constexpr uint32_t kNotOut = EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP;  // for an EPOLLOUT-only one

// Level-triggered EPOLLIN: reported while data remains, again and again; not once drained.
void check_lt_in() {
    const Conn c = CONNECT(g_peer);
    const int ep = epoll_create1(0);
    ADD(ep, c.fd, EPOLLIN, 11);
    NONE(ep, 0);
    RUN(g_peer, kWrite, c, 100);
    ONE(ep, 11, EPOLLIN, kNotIn, 2000);
    ONE(ep, 11, EPOLLIN, kNotIn, 0);
    ONE(ep, 11, EPOLLIN, kNotIn, 0);
    CHECK(read(c.fd, std::string(60, 0).data(), 60) == 60, "read 60 of 100");
    ONE(ep, 11, EPOLLIN, kNotIn, 0);  // 40 bytes left
    READ(c, 40);
    NONE(ep, 0);
    RUN(g_peer, kWrite, c, 10);
    ONE(ep, 11, EPOLLIN, kNotIn, 2000);
    READ(c, 10);
    NONE(ep, 0);
    SEND(g_peer, kWrite, c, 5, kDelay);  // no timeout at all (-1): woken by the data
    ONE(ep, 11, EPOLLIN, kNotIn, -1);
    ACK(g_peer);
    READ(c, 5);
    NONE(ep, 0);
    close(ep), close(c.fd);
}

// Edge-triggered EPOLLIN: once per arrival, not again for data left unread, again on new data.
void check_et_in() {
    const Conn c = CONNECT(g_peer);
    const int ep = epoll_create1(0);
    ADD(ep, c.fd, EPOLLIN | EPOLLET, 21);
    NONE(ep, 0);
    RUN(g_peer, kWrite, c, 100);
    ONE(ep, 21, EPOLLIN, kNotIn, 2000);
    NONE(ep, 0);  // 100 bytes unread, but no new edge
    CHECK(read(c.fd, std::string(40, 0).data(), 40) == 40, "read 40 of 100");
    NONE(ep, 0);  // nor is a partial read one
    RUN(g_peer, kWrite, c, 10);
    ONE(ep, 21, EPOLLIN, kNotIn, 2000);
    NONE(ep, 0);
    READ(c, 70);
    NONE(ep, 0);
    ONE_WHEN_PEER_WRITES(ep, 21, c, 5);
    NONE(ep, 0);
    MOD(ep, c.fd, EPOLLIN | EPOLLET, 22);  // MOD looks again: the unread data is reported once more
    ONE(ep, 22, EPOLLIN, kNotIn, 0);
    NONE(ep, 0);
    READ(c, 5);
    close(ep), close(c.fd);
}

// EPOLLONESHOT: one report, then silent (even on new data) until EPOLL_CTL_MOD re-arms it.
void check_oneshot() {
    const Conn c = CONNECT(g_peer);
    const int ep = epoll_create1(0);
    ADD(ep, c.fd, EPOLLIN | EPOLLONESHOT, 31);
    NONE(ep, 0);
    RUN(g_peer, kWrite, c, 10);
    ONE(ep, 31, EPOLLIN, kNotIn, 2000);
    NONE(ep, 0);
    RUN(g_peer, kWrite, c, 10);
    NONE(ep, 100);  // disabled: new data is not reported
    MOD(ep, c.fd, EPOLLIN | EPOLLONESHOT, 32);
    ONE(ep, 32, EPOLLIN, kNotIn, 2000);  // re-armed, 20 bytes waiting
    NONE(ep, 0);
    READ(c, 20);
    MOD(ep, c.fd, EPOLLIN | EPOLLONESHOT, 33);
    NONE(ep, 0);
    ONE_WHEN_PEER_WRITES(ep, 33, c, 7);
    NONE(ep, 100);
    READ(c, 7);
    close(ep), close(c.fd);
}

// redis's ae loop: DEL and ADD per request, LT and ET, with data that came while not registered;
// then redis-benchmark's: MOD between EPOLLOUT (to send a request) and EPOLLIN (for the reply).
void check_del_add_mod() {
    const Conn c = CONNECT(g_peer);
    const int ep = epoll_create1(0);
    epoll_event e{};
    EXPECT_ERRNO(epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, &e), ENOENT);
    EXPECT_ERRNO(epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &e), ENOENT);
    for (uint32_t i = 0; i < 24; ++i) {
        const bool before = i % 2, et = (i / 2) % 2;
        if (before) RUN(g_peer, kWrite, c, 5), NONE(ep, 0);  // not registered: not reported
        ADD(ep, c.fd, EPOLLIN | (et ? static_cast<uint32_t>(EPOLLET) : 0u), 40 + i);
        if (i == 0) EXPECT_ERRNO(epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &e), EEXIST);
        if (!before) NONE(ep, 0), RUN(g_peer, kWrite, c, 5);
        ONE(ep, 40 + i, EPOLLIN, kNotIn, 2000);
        if (et) NONE(ep, 0);
        else ONE(ep, 40 + i, EPOLLIN, kNotIn, 0);
        READ(c, 5);
        NONE(ep, 0);
        DEL(ep, c.fd);
    }
    ADD(ep, c.fd, EPOLLOUT, 50);
    for (int i = 0; i < 10; ++i) {
        ONE(ep, 50, EPOLLOUT, kNotOut, 2000);
        WRITE_P(c.fd, 20);
        MOD(ep, c.fd, EPOLLIN, 51);
        NONE(ep, 0);  // no reply yet, and EPOLLOUT is no longer asked for
        RUN(g_peer, kRead, c, 20);
        RUN(g_peer, kWrite, c, 30);
        ONE(ep, 51, EPOLLIN, kNotIn, 2000);
        READ(c, 30);
        MOD(ep, c.fd, EPOLLOUT, 50);
    }
    close(ep), close(c.fd);
}

// EPOLLOUT: reported on a writable socket; not once writes fail with EAGAIN; again once the peer
// has read everything (it reads while we sleep), level- and edge-triggered.
void check_out() {
    const Conn c = CONNECT(g_peer);
    const int ep = epoll_create1(0);
    for (const uint32_t et : {0u, static_cast<uint32_t>(EPOLLET)}) {
        const uint64_t key = et ? 62 : 61;
        ADD(ep, c.fd, EPOLLOUT | et, key);
        ONE(ep, key, EPOLLOUT, kNotOut, 2000);  // edge-triggered: the first report right after ADD
        if (et) NONE(ep, 0);
        else ONE(ep, key, EPOLLOUT, kNotOut, 0);
        const uint32_t sent = FILL(c.fd);
        NONE(ep, 0);
        SEND(g_peer, kRead, c, sent, 0);
        ONE(ep, key, EPOLLOUT, kNotOut, 2000);
        ACK(g_peer);
        // No NONE for ET here: the kernel may report EPOLLOUT again for space freed after that.
        if (!et) ONE(ep, key, EPOLLOUT, kNotOut, 0);
        DEL(ep, c.fd);
    }
    // nginx registers EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET once per connection. At an edge the
    // kernel reports the whole current state (EPOLLIN with EPOLLOUT); reporting only what changed
    // is allowed too, so EPOLLOUT is neither required nor forbidden with the EPOLLIN.
    ADD(ep, c.fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, 63);
    ONE(ep, 63, EPOLLOUT, kNotOut, 2000);
    NONE(ep, 0);
    RUN(g_peer, kWrite, c, 8);
    ONE(ep, 63, EPOLLIN, EPOLLHUP | EPOLLERR | EPOLLRDHUP, 2000);
    NONE(ep, 0);
    READ(c, 8);
    NONE(ep, 0);
    const uint32_t sent = FILL(c.fd);
    NONE(ep, 0);
    SEND(g_peer, kRead, c, sent, 0);
    ONE(ep, 63, EPOLLOUT, kNotOut, 2000);
    ACK(g_peer);
    close(ep), close(c.fd);
}

// One descriptor in two sets (one LT, one ET): both see its data; DEL from one leaves the other.
void check_two_sets() {
    const Conn c = CONNECT(g_peer);
    const int ep1 = epoll_create1(0), ep2 = epoll_create1(0);
    ADD(ep1, c.fd, EPOLLIN, 71);
    ADD(ep2, c.fd, EPOLLIN | EPOLLET, 72);
    NONE(ep1, 0), NONE(ep2, 0);
    RUN(g_peer, kWrite, c, 9);
    ONE(ep1, 71, EPOLLIN, kNotIn, 2000);
    ONE(ep2, 72, EPOLLIN, kNotIn, 2000);
    ONE(ep1, 71, EPOLLIN, kNotIn, 0);
    NONE(ep2, 0);
    READ(c, 9);
    NONE(ep1, 0), NONE(ep2, 0);
    ONE_WHEN_PEER_WRITES(ep2, 72, c, 4);  // wakes a sleeper on ep2 while ep1 holds it too
    ONE(ep1, 71, EPOLLIN, kNotIn, 0);
    READ(c, 4);
    DEL(ep1, c.fd);
    RUN(g_peer, kWrite, c, 2);
    ONE(ep2, 72, EPOLLIN, kNotIn, 2000);
    NONE(ep1, 0);
    READ(c, 2);
    close(ep1), close(ep2), close(c.fd);
}

// 64 connections in one set, data on one: exactly that one is reported, with its data.u64.
void check_many() {
    constexpr uint64_t kBase = 0x5eed0000;
    const int ep = epoll_create1(0);
    std::vector<Conn> cs;
    for (uint32_t i = 0; i < 64; ++i) {
        cs.push_back(CONNECT(g_peer));
        ADD(ep, cs.back().fd, EPOLLIN, kBase + i);
    }
    if (g_pause_file) {
        alarm(0);
        std::printf("paused port %u\n", g_port);
        struct stat st;
        for (int i = 0; i < 600 && stat(g_pause_file, &st) < 0; ++i) usleep(100000);
        alarm(30);
    }
    NONE(ep, 0);
    for (uint32_t k : {0u, 37u, 63u}) {
        RUN(g_peer, kWrite, cs[k], 7);
        ONE(ep, kBase + k, EPOLLIN, kNotIn, 2000);
        READ(cs[k], 7);
        NONE(ep, 0);
    }
    RUN(g_peer, kWrite, cs[5], 3);
    RUN(g_peer, kWrite, cs[60], 3);
    const auto got = COLLECT(ep, 128, 2000);
    CHECK(got.size() == 2 && got.count(kBase + 5) && got.count(kBase + 60), "expected 5 and 60, got %zu events", got.size());
    READ(cs[5], 3), READ(cs[60], 3);
    NONE(ep, 0);
    for (const Conn& c : cs) close(c.fd);
    close(ep);
}

// More ready than maxevents: successive calls go round all the ready ones. Not a documented
// guarantee but what the kernel does (a reported level-triggered entry goes to the back of the
// ready list), which keeps a busy connection from starving the others.
void check_maxevents() {
    const int ep = epoll_create1(0);
    std::vector<Conn> cs;
    for (uint32_t i = 0; i < 3; ++i) {
        cs.push_back(CONNECT(g_peer));
        ADD(ep, cs.back().fd, EPOLLIN, 200 + i);
        RUN(g_peer, kWrite, cs.back(), 1);
    }
    std::map<uint64_t, uint32_t> seen;
    for (int call = 0; call < 3; ++call) {
        const auto got = COLLECT(ep, 1, 2000);
        CHECK(got.size() == 1, "maxevents 1: %zu events", got.size());
        seen.insert(got.begin(), got.end());
    }
    CHECK(seen.size() == 3, "3 calls with maxevents 1, 3 connections ready: saw %zu of them", seen.size());
    for (const Conn& c : cs) READ(c, 1), close(c.fd);
    close(ep);
}

// A plain descriptor (a pipe) in the same set as an accelerated one is reported too.
void check_mixed() {
    const Conn c = CONNECT(g_peer);
    int p[2];
    CHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
    const int ep = epoll_create1(0);
    ADD(ep, p[0], EPOLLIN, 81);
    ADD(ep, c.fd, EPOLLIN, 82);
    NONE(ep, 0);
    char b = 'x';
    CHECK(write(p[1], &b, 1) == 1, "pipe write");
    ONE(ep, 81, EPOLLIN, EPOLLOUT, 2000);
    RUN(g_peer, kWrite, c, 3);
    const auto got = COLLECT(ep, 128, 2000);
    CHECK(got.size() == 2 && got.count(81) && got.count(82), "expected the pipe and the connection, got %zu events", got.size());
    CHECK(read(p[0], &b, 1) == 1, "pipe read");
    ONE(ep, 82, EPOLLIN, kNotIn, 0);
    READ(c, 3);
    NONE(ep, 0);
    const auto t0 = Clock::now();  // the pipe, written by another thread, wakes a sleeper
    std::thread t = after_delay([&] { (void)!write(p[1], "y", 1); });
    one_later(__LINE__, ep, 81, EPOLLIN, EPOLLOUT, t0);
    t.join();
    CHECK(read(p[0], &b, 1) == 1, "pipe read");
    ONE_WHEN_PEER_WRITES(ep, 82, c, 4);  // and so does the connection, with the pipe in the set
    READ(c, 4);
    NONE(ep, 0);
    close(ep), close(p[0]), close(p[1]), close(c.fd);
}

// The peer's shutdown(SHUT_WR), then close, then close while we sleep (ET): EPOLLIN|EPOLLRDHUP,
// read returns 0, never a hang.
void check_peer_shutdown_close() {
    const Conn c = CONNECT(g_peer), d = CONNECT(g_peer), e = CONNECT(g_peer);
    const int ep = epoll_create1(0);
    char b;
    ADD(ep, c.fd, EPOLLIN | EPOLLRDHUP, 91);
    RUN(g_peer, kShutWr, c, 0);
    // Half-closed: no EPOLLHUP (the kernel sets it only once both directions are shut).
    ONE(ep, 91, EPOLLIN | EPOLLRDHUP, EPOLLHUP | EPOLLERR | EPOLLOUT, 2000);
    CHECK(read(c.fd, &b, 1) == 0, "read after the peer's SHUT_WR must return 0");
    ONE(ep, 91, EPOLLIN | EPOLLRDHUP, EPOLLHUP | EPOLLERR | EPOLLOUT, 0);  // level: it stays
    WRITE_P(c.fd, 10);  // the other direction still works
    RUN(g_peer, kRead, c, 10);
    DEL(ep, c.fd);

    ADD(ep, d.fd, EPOLLIN | EPOLLRDHUP, 92);
    RUN(g_peer, kWrite, d, 4);
    RUN(g_peer, kClose, d, 0);
    ONE(ep, 92, EPOLLIN | EPOLLRDHUP, EPOLLOUT, 2000);  // EPOLLHUP allowed (and EPOLLERR)
    CHECK(read(d.fd, std::string(4, 0).data(), 4) == 4, "the 4 bytes before the EOF");
    CHECK(read(d.fd, &b, 1) == 0, "read after the peer's close must return 0");
    ONE(ep, 92, EPOLLIN | EPOLLRDHUP, EPOLLOUT, 0);
    DEL(ep, d.fd);

    ADD(ep, e.fd, EPOLLIN | EPOLLRDHUP | EPOLLET, 93);
    NONE(ep, 0);
    SEND(g_peer, kClose, e, 0, kDelay);
    one_later(__LINE__, ep, 93, EPOLLIN | EPOLLRDHUP, EPOLLOUT, Clock::now());
    ACK(g_peer);
    NONE(ep, 100);  // edge-triggered: nothing new after the FIN
    CHECK(read(e.fd, &b, 1) == 0, "read after the peer's close must return 0");
    close(ep), close(c.fd), close(d.fd), close(e.fd);
}

// SIGKILL of the peer, first before we wait (the kernel sends FIN), then while we sleep in
// epoll_wait with bytes of ours it never read (the kernel sends RST): some of IN/HUP/ERR/RDHUP
// within 2 s, and read returns 0 or ECONNRESET.
void check_peer_kill(Peer& v0, Peer& v1) {
    const int ep = epoll_create1(0);
    for (Peer* v : {&v0, &v1}) {
        const Conn c = CONNECT(*v);
        const bool asleep = v == &v1;
        if (asleep) WRITE_P(c.fd, 10);
        ADD(ep, c.fd, EPOLLIN | EPOLLRDHUP, 95);
        NONE(ep, 0);
        const pid_t pid = v->pid;
        const auto t0 = Clock::now();
        if (!asleep) kill(pid, SIGKILL);
        std::thread killer = after_delay([pid, asleep] {
            if (asleep) kill(pid, SIGKILL);
        });
        const uint32_t ev = asleep ? one_later(__LINE__, ep, 95, 0, EPOLLOUT, t0) : ONE(ep, 95, 0, EPOLLOUT, 2000);
        killer.join();
        CHECK(ev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP), "reported %s", evstr(ev).c_str());
        char b;
        const ssize_t r = read(c.fd, &b, 1);
        CHECK(r == 0 || (r < 0 && errno == ECONNRESET), "read after the peer died: %zd (%s)", r, r ? strerror(errno) : "");
        waitpid(pid, nullptr, 0);
        std::erase(g_pids, pid);
        close(c.fd);  // registered: leaves the set
    }
    close(ep);
}

// An epoll set is itself pollable (epoll(7), Q3): an outer set and poll() see the inner one become
// readable when one of its connections gets data.
void check_nested() {
    const Conn c = CONNECT(g_peer);
    const int inner = epoll_create1(0), outer = epoll_create1(0);
    ADD(inner, c.fd, EPOLLIN, 111);
    ADD(outer, inner, EPOLLIN, 112);
    pollfd pfd{inner, POLLIN, 0};
    CHECK(poll(&pfd, 1, 0) == 0, "poll on the inner set with nothing ready: revents %#x", pfd.revents);
    NONE(outer, 0);
    RUN(g_peer, kWrite, c, 3);
    ONE(outer, 112, EPOLLIN, EPOLLOUT, 2000);
    CHECK(poll(&pfd, 1, 2000) == 1 && (pfd.revents & POLLIN), "poll on the inner set: revents %#x", pfd.revents);
    ONE(inner, 111, EPOLLIN, kNotIn, 0);
    READ(c, 3);
    NONE(inner, 0), NONE(outer, 0);
    ONE_WHEN_PEER_WRITES(outer, 112, c, 2);  // wakes a sleeper on the outer set
    ONE(inner, 111, EPOLLIN, kNotIn, 0);
    READ(c, 2);
    close(outer), close(inner), close(c.fd);
}

// A registration belongs to the open file, not the number: closing one of two descriptors of a
// connection leaves it registered and reporting (epoll(7), Q6); closing the last removes it.
void check_dup_close() {
    const Conn c = CONNECT(g_peer), d{dup(c.fd), c.idx};
    const int ep = epoll_create1(0);
    ADD(ep, c.fd, EPOLLIN, 121);
    close(c.fd);
    NONE(ep, 0);
    RUN(g_peer, kWrite, c, 4);
    ONE(ep, 121, EPOLLIN, kNotIn, 2000);
    READ(d, 4);
    NONE(ep, 0);
    RUN(g_peer, kWrite, c, 1);
    ONE(ep, 121, EPOLLIN, kNotIn, 2000);
    close(d.fd);
    NONE(ep, 0);
    close(ep);
}

// epoll_wait(2): "While one thread is blocked in a call to epoll_wait(), it is possible for another
// thread to add a file descriptor to the waited-upon epoll instance. If the new file descriptor
// becomes ready, it will cause the epoll_wait() call to unblock." Into a set that watches a
// connection already: added ready, added then ready, and (thread pools with EPOLLONESHOT)
// re-armed by MOD while ready; then into sets that watch no connection yet: added ready, and
// added, then closed by its peer (only the application's own data.u64 may come back).
void check_ctl_while_waiting() {
    const Conn a = CONNECT(g_peer), c = CONNECT(g_peer), d = CONNECT(g_peer), f = CONNECT(g_peer), g = CONNECT(g_peer);
    const int ep = epoll_create1(0);
    ADD(ep, a.fd, EPOLLIN, 130);  // silent throughout
    RUN(g_peer, kWrite, c, 3);    // c is ready before it is added
    auto t0 = Clock::now();
    std::thread t = after_delay([&] { ADD(ep, c.fd, EPOLLIN | EPOLLONESHOT, 131); });
    one_later(__LINE__, ep, 131, EPOLLIN, kNotIn, t0);
    t.join();
    SEND(g_peer, kWrite, d, 2, 2 * kDelay);  // d is added while we sleep, its data comes later
    t0 = Clock::now();
    t = after_delay([&] { ADD(ep, d.fd, EPOLLIN, 132); });
    one_later(__LINE__, ep, 132, EPOLLIN, kNotIn, t0);
    t.join();
    ACK(g_peer);
    READ(d, 2);
    NONE(ep, 0);  // c: one shot, its 3 bytes still unread
    t0 = Clock::now();
    t = after_delay([&] { MOD(ep, c.fd, EPOLLIN | EPOLLONESHOT, 133); });
    one_later(__LINE__, ep, 133, EPOLLIN, kNotIn, t0);
    t.join();
    READ(c, 3);
    const int ep2 = epoll_create1(0), ep3 = epoll_create1(0);  // no connection in them yet
    RUN(g_peer, kWrite, f, 1);
    t0 = Clock::now();
    t = after_delay([&] { ADD(ep2, f.fd, EPOLLIN, 134); });
    one_later(__LINE__, ep2, 134, EPOLLIN, kNotIn, t0);
    t.join();
    READ(f, 1);
    SEND(g_peer, kClose, g, 0, 2 * kDelay);  // g is added while we sleep, then its peer closes
    t0 = Clock::now();
    t = after_delay([&] { ADD(ep3, g.fd, EPOLLIN, 135); });
    one_later(__LINE__, ep3, 135, EPOLLIN, EPOLLOUT, t0);
    t.join();
    ACK(g_peer);
    close(ep), close(ep2), close(ep3), close(a.fd), close(c.fd), close(d.fd), close(f.fd), close(g.fd);
}

// Errors as the kernel gives them, and a failed call leaves the connection working: epoll_ctl on
// a descriptor that is not an epoll set (a pipe, another connection, a closed number) with an
// accelerated one as the target, a bad op, maxevents 0.
void check_errors() {
    const Conn c = CONNECT(g_peer), d = CONNECT(g_peer);
    const int ep = epoll_create1(0);
    int p[2];
    CHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
    epoll_event e{EPOLLIN, {.u64 = 141}};
    EXPECT_ERRNO(epoll_ctl(p[0], EPOLL_CTL_ADD, c.fd, &e), EINVAL);
    EXPECT_ERRNO(epoll_ctl(d.fd, EPOLL_CTL_ADD, c.fd, &e), EINVAL);
    const int closed = dup(p[1]);
    close(closed);
    EXPECT_ERRNO(epoll_ctl(closed, EPOLL_CTL_ADD, c.fd, &e), EBADF);
    EXPECT_ERRNO(epoll_ctl(ep, 99, c.fd, &e), EINVAL);
    ADD(ep, c.fd, EPOLLIN, 142);
    EXPECT_ERRNO(epoll_wait(ep, &e, 0, 0), EINVAL);
    EXPECT_ERRNO(epoll_wait(p[0], &e, 1, 0), EINVAL);
    EXPECT_ERRNO(epoll_wait(d.fd, &e, 1, 0), EINVAL);
    for (const Conn& x : {c, d}) {  // both connections still carry data both ways
        RUN(g_peer, kWrite, x, 5);
        READ(x, 5);
        WRITE_P(x.fd, 5);
        RUN(g_peer, kRead, x, 5);
    }
    CHECK(write(p[1], "p", 1) == 1 && read(p[0], &e, 1) == 1, "the pipe still works");
    RUN(g_peer, kWrite, c, 1);
    ONE(ep, 142, EPOLLIN, kNotIn, 2000);
    READ(c, 1);
    close(ep), close(p[0]), close(p[1]), close(c.fd), close(d.fd);
}

// A registered descriptor closed without DEL, its number reused by a new connection: nothing
// stale is reported, the new one works in the same set after ADD; then a pipe reuses the number.
void check_close_reuse() {
    const int ep = epoll_create1(0);
    const Conn a = CONNECT(g_peer);
    ADD(ep, a.fd, EPOLLIN, 101);
    RUN(g_peer, kWrite, a, 5);
    ONE(ep, 101, EPOLLIN, kNotIn, 2000);
    const int n = a.fd;
    close(a.fd);  // 5 bytes unread, no DEL
    NONE(ep, 0);
    Conn b = CONNECT(g_peer);
    if (b.fd != n) {  // accept normally returns the lowest free number: the one just closed
        CHECK(fcntl(n, F_GETFD) < 0, "fd %d was taken by something else, cannot reuse it", n);
        CHECK(dup2(b.fd, n) == n, "dup2: %s", strerror(errno));
        close(b.fd), b.fd = n;
    }
    RUN(g_peer, kWrite, b, 6);
    NONE(ep, 0);  // the old registration does not report the new connection
    ADD(ep, b.fd, EPOLLIN, 102);
    ONE(ep, 102, EPOLLIN, kNotIn, 2000);
    READ(b, 6);
    NONE(ep, 0);
    ONE_WHEN_PEER_WRITES(ep, 102, b, 2);
    READ(b, 2);
    close(b.fd);  // again without DEL
    int p[2];
    CHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
    if (p[0] != n) CHECK(dup2(p[0], n) == n && close(p[0]) == 0, "dup2: %s", strerror(errno));
    NONE(ep, 0);
    ADD(ep, n, EPOLLIN, 103);
    CHECK(write(p[1], "z", 1) == 1, "pipe write");
    ONE(ep, 103, EPOLLIN, EPOLLOUT, 2000);
    close(n), close(p[1]);
    // The set itself closed with a connection in it: a new set (normally the same number) is empty.
    const Conn f = CONNECT(g_peer);
    ADD(ep, f.fd, EPOLLIN, 104);
    RUN(g_peer, kWrite, f, 3);
    ONE(ep, 104, EPOLLIN, kNotIn, 2000);
    close(ep);
    const int ep2 = epoll_create1(0);
    NONE(ep2, 0);
    ADD(ep2, f.fd, EPOLLIN, 105);
    ONE(ep2, 105, EPOLLIN, kNotIn, 2000);
    READ(f, 3);
    close(ep2), close(f.fd);
}

}  // namespace

int main(int argc, char** argv) {
    std::string only;
    bool list_only = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--only" && i + 1 < argc) only = argv[++i];
        else if (arg == "--pause-file" && i + 1 < argc) g_pause_file = argv[++i];
        else if (arg == "--list") list_only = true;
        else return std::fprintf(stderr, "usage: %s [--only CHECK] [--list] [--pause-file PATH]\n", argv[0]), 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    setvbuf(stdout, nullptr, _IOLBF, 0);

    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    g_listener = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(bind(g_listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && listen(g_listener, 128) == 0 &&
              getsockname(g_listener, reinterpret_cast<sockaddr*>(&a), &len) == 0,
          "listener: %s", strerror(errno));
    g_port = ntohs(a.sin_port);
    g_parent_only.push_back(g_listener);
    // Every peer is forked now, before any connection exists, so that none holds one of ours.
    g_peer = start_peer();
    Peer v0 = start_peer(), v1 = start_peer();  // for peer-kill

    const std::pair<const char*, void (*)()> checks[] = {
        {"lt-in", check_lt_in},     {"et-in", check_et_in},         {"oneshot", check_oneshot},
        {"del-add-mod", check_del_add_mod}, {"out", check_out},     {"two-sets", check_two_sets},
        {"many", check_many},       {"maxevents", check_maxevents}, {"mixed", check_mixed},
        {"peer-shutdown-close", check_peer_shutdown_close},         {"peer-kill", nullptr},
        {"nested", check_nested},   {"dup-close", check_dup_close}, {"ctl-while-waiting", check_ctl_while_waiting},
        {"errors", check_errors},   {"close-reuse", check_close_reuse},
    };
    int ran = 0;
    for (auto [name, fn] : checks) {
        if (list_only) std::printf("%s\n", name);
        if (list_only || (!only.empty() && only != name)) continue;
        g_check = name;
        alarm(30);
        fn ? fn() : check_peer_kill(v0, v1);
        alarm(0);
        std::printf("ok   %s\n", name);
        ++ran;
    }
    g_check = "teardown";
    CHECK(list_only || ran > 0, "no check named '%s' (--list)", only.c_str());
    kill_peers();  // their remaining connections go with them
    for (pid_t p : g_pids) waitpid(p, nullptr, 0);
    if (!list_only) std::printf("all %d checks passed\n", ran);
    return 0;
}
