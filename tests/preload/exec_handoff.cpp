// A server that execs (or spawns a program) with a connection open, while bytes are in flight
// both ways: what the old image had not read and what the client had not read yet must all
// arrive, once and in order, over whatever carries the connection after the exec.
//
// Both directions carry a pattern stream (byte i is a function of i and the direction), so any
// byte lost, doubled or reordered is caught at its offset.
//
//   exec_handoff server PORT HOW       HOW: exec   the server execs itself on the connection
//                                           fork   a forked child execs (the parent closes)
//                                           spawn  posix_spawn()s itself (the parent closes)
//                                           keep   a forked child execs /bin/true with the
//                                                  connection FD_CLOEXEC; the server carries on
//                                           closed the server execs after the client closed,
//                                                  its last 100 KiB unread (client IO close)
//   exec_handoff client PORT IO        IO: block | poll | epoll | epoll-now (how the client
//                                          waits; epoll-now: no pause before reading), or
//                                          close (write 400 KiB, close, read nothing)
//   exec_handoff serve FD FROM_IN FROM_OUT [IN_TOTAL]    (internal: the image after the exec)
//
// The client writes kTotal bytes, reads kTotal bytes (starting only after a pause, so the
// server's first bytes are still unread at the exec), checks both, prints "verified" and,
// after LINGER_MS (env, default 0), exits 0. Any failure prints "FAIL ..." and exits 1.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

constexpr size_t kTotal = 3 << 20;
constexpr size_t kServerReadsFirst = 300 << 10;   // before the exec
constexpr size_t kServerWritesFirst = 200 << 10;  // before the exec, unread by the client then
constexpr size_t kClosingClientWrites = 400 << 10;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "FAIL %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

uint8_t pattern(size_t i, uint8_t dir) { return static_cast<uint8_t>((i * 131 + (i >> 13) + dir * 77) & 0xff); }

enum Dir : uint8_t { kToServer = 1, kToClient = 2 };

// Waits until fd is ready for `events` (for non-blocking descriptors).
void wait_for(int fd, short events) {
    pollfd p{fd, events, 0};
    if (::poll(&p, 1, 20000) <= 0) fail("poll timed out");
}

void write_stream(int fd, size_t from, size_t to, Dir dir) {
    std::vector<uint8_t> buf(64 << 10);
    while (from < to) {
        const size_t n = std::min(buf.size(), to - from);
        for (size_t i = 0; i < n; ++i) buf[i] = pattern(from + i, dir);
        const ssize_t k = ::send(fd, buf.data(), n, MSG_NOSIGNAL);
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
            wait_for(fd, POLLOUT);
            continue;
        }
        if (k <= 0) fail("send");
        from += static_cast<size_t>(k);
    }
}

// Reads [from, to) of the stream and checks every byte; `wait` blocks until readable.
template <typename Wait>
void read_stream(int fd, size_t from, size_t to, Dir dir, Wait wait) {
    std::vector<uint8_t> buf(64 << 10);
    while (from < to) {
        const ssize_t k = ::recv(fd, buf.data(), std::min(buf.size(), to - from), 0);
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
            wait();
            continue;
        }
        if (k == 0) {
            std::fprintf(stderr, "FAIL EOF at offset %zu of %zu\n", from, to);
            std::exit(1);
        }
        if (k < 0) fail("recv");
        for (ssize_t i = 0; i < k; ++i) {
            if (buf[static_cast<size_t>(i)] != pattern(from + static_cast<size_t>(i), dir)) {
                std::fprintf(stderr, "FAIL byte %zu: got %u want %u\n", from + static_cast<size_t>(i),
                             buf[static_cast<size_t>(i)], pattern(from + static_cast<size_t>(i), dir));
                std::exit(1);
            }
        }
        from += static_cast<size_t>(k);
    }
}

void read_stream(int fd, size_t from, size_t to, Dir dir) {
    read_stream(fd, from, to, dir, [fd] { wait_for(fd, POLLIN); });
}

void expect_eof(int fd) {
    char c;
    wait_for(fd, POLLIN);
    const ssize_t k = ::recv(fd, &c, 1, 0);
    if (k != 0) fail("expected EOF");
}

// The image after the exec: the rest of the client's stream, then the rest of ours.
int serve(int fd, size_t from_in, size_t from_out, size_t in_total) {
    read_stream(fd, from_in, in_total, kToServer);
    expect_eof(fd);
    write_stream(fd, from_out, kTotal, kToClient);
    ::shutdown(fd, SHUT_WR);
    return 0;
}

int server(int port, const std::string& how) {
    const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || ::listen(lfd, 4) < 0) fail("listen");
    const int fd = ::accept4(lfd, nullptr, nullptr, how == "keep" ? SOCK_CLOEXEC : 0);
    if (fd < 0) fail("accept");
    read_stream(fd, 0, kServerReadsFirst, kToServer);
    if (how == "closed") {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the client writes the rest, closes
        const std::string sfd = std::to_string(fd), in = std::to_string(kServerReadsFirst),
                          out = std::to_string(kTotal), total = std::to_string(kClosingClientWrites);
        ::execl("/proc/self/exe", "exec_handoff", "serve", sfd.c_str(), in.c_str(), out.c_str(), total.c_str(),
                static_cast<char*>(nullptr));
        fail("execl");
    }
    write_stream(fd, 0, kServerWritesFirst, kToClient);
    // Let the client's writer fill the ring behind what we read.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const std::string sfd = std::to_string(fd), in = std::to_string(kServerReadsFirst),
                      out = std::to_string(kServerWritesFirst);
    char self[] = "/proc/self/exe";
    std::vector<char*> argv{self, const_cast<char*>("serve"), const_cast<char*>(sfd.c_str()),
                            const_cast<char*>(in.c_str()), const_cast<char*>(out.c_str()), nullptr};
    if (how == "exec") {
        ::execv(self, argv.data());
        fail("execv");
    }
    if (how == "keep") {
        // A helper execs while we carry on: the connection must stay ours, and accelerated.
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::execl("/bin/true", "true", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        int st = 0;
        ::waitpid(pid, &st, 0);
        return serve(fd, kServerReadsFirst, kServerWritesFirst, kTotal);
    }
    pid_t pid = -1;
    if (how == "fork") {
        pid = ::fork();
        if (pid == 0) {
            ::execv(self, argv.data());
            ::_exit(127);
        }
    } else if (how == "spawn") {
        char exe[4096] = {};
        if (::readlink(self, exe, sizeof exe - 1) < 0) fail("readlink");
        argv[0] = exe;
        if (::posix_spawn(&pid, exe, nullptr, nullptr, argv.data(), environ) != 0) fail("posix_spawn");
    } else {
        std::fprintf(stderr, "FAIL unknown HOW %s\n", how.c_str());
        return 1;
    }
    ::close(fd);
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int client(int port, const std::string& io) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) fail("connect");
    if (io == "close") {
        write_stream(fd, 0, kClosingClientWrites, kToServer);
        ::close(fd);
        std::printf("verified\n");  // all written: the server checks what arrives
        return 0;
    }
    std::thread writer([fd] {
        write_stream(fd, 0, kTotal, kToServer);
        ::shutdown(fd, SHUT_WR);
    });
    // The server's first bytes stay unread until after its exec; with epoll-now the client
    // reads at once, so the move reaches it inside its epoll loop.
    if (io != "epoll-now") std::this_thread::sleep_for(std::chrono::milliseconds(400));
    if (io == "block") {
        read_stream(fd, 0, kTotal, kToClient, [] {});
    } else if (io == "poll") {
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        read_stream(fd, 0, kTotal, kToClient, [fd] { wait_for(fd, POLLIN); });
    } else {
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        const int ep = ::epoll_create1(EPOLL_CLOEXEC);
        epoll_event e{};
        e.events = EPOLLIN | EPOLLET;
        e.data.fd = fd;
        if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) fail("epoll_ctl");
        read_stream(fd, 0, kTotal, kToClient, [ep, fd, e]() mutable {
            // Re-armed before each wait, as event loops do: the registration must survive the
            // connection's move to TCP (noticed in the recv() just before).
            if (::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e) < 0) fail("epoll_ctl MOD");
            epoll_event got{};
            if (::epoll_wait(ep, &got, 1, 20000) != 1) fail("epoll_wait timed out");
        });
    }
    writer.join();
    if (io != "block") ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    expect_eof(fd);
    std::printf("verified\n");
    std::fflush(stdout);
    if (const char* linger = std::getenv("LINGER_MS")) std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(linger)));
    ::close(fd);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "server" && argc == 4) return server(std::atoi(argv[2]), argv[3]);
    if (mode == "client" && argc == 4) return client(std::atoi(argv[2]), argv[3]);
    if (mode == "serve" && (argc == 5 || argc == 6))
        return serve(std::atoi(argv[2]), std::strtoull(argv[3], nullptr, 10), std::strtoull(argv[4], nullptr, 10),
                     argc == 6 ? std::strtoull(argv[5], nullptr, 10) : kTotal);
    std::fprintf(stderr, "usage: exec_handoff server PORT exec|fork|spawn|keep|closed | client PORT block|poll|epoll|epoll-now|close\n");
    return 2;
}
