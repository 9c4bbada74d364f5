#pragma once
// shunt lo: same-host TCP connections moved to shared memory after an in-band SMC-D handshake,
// falling back to plain TCP on the same socket whenever that cannot be done.
//
//   auto listener = shunt::lo::Listener::listen("127.0.0.1", 7000);
//   shunt::lo::Stream s = listener.accept();          // handshake runs here
//   auto client = shunt::lo::Stream::connect("127.0.0.1", 7000);
//   client.write("hi", 2);  s.read(buf, sizeof buf);
//
// read/write/readv/writev/shutdown return what the socket calls would (-1 and errno: EAGAIN,
// EPIPE, ECONNRESET, ...), never raise SIGPIPE, and may be used from two threads at once (one
// reading, one writing). connect/listen/accept block and throw std::system_error on errors
// that a plain TCP program would also see (refused, unreachable, address in use).
#include <sys/types.h>
#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace shunt::lo {

struct Options {
    size_t buffer_size = 256 * 1024;      // receive buffer (DMB) size, 16 KiB .. 1 MiB
    // Longest spin before sleeping, taken only while recent waits say it pays (docs/waiting.md);
    // 0 never spins.
    std::chrono::microseconds spin{5};
    std::string rundir;                   // "" = $SHUNT_RUNDIR or the default
    std::string ueid = "SHUNT";           // User EID both ends must share
    std::chrono::milliseconds clc_timeout{6000};

    // Defaults overridden by SHUNT_BUFFER_SIZE (bytes, k/m suffix), SHUNT_SPIN_US,
    // SHUNT_RUNDIR, SHUNT_UEID and SHUNT_CLC_TIMEOUT_MS.
    static Options from_env();
};

class Connection;

class Stream {
public:
    Stream();
    ~Stream();
    Stream(Stream&&) noexcept;
    Stream& operator=(Stream&&) noexcept;

    static Stream connect(const std::string& host, uint16_t port, const Options& opt = Options::from_env());

    ssize_t read(void* buf, size_t len);
    ssize_t write(const void* buf, size_t len);
    ssize_t readv(const iovec* iov, int iovcnt);
    ssize_t writev(const iovec* iov, int iovcnt);
    int shutdown(int how);  // SHUT_RD, SHUT_WR (EOF at the peer), SHUT_RDWR
    void close();

    void set_nonblocking(bool on);
    // A descriptor for poll/epoll, readable when read() or write() may make progress or the
    // peer has closed. In SMC-D mode it signals writability only after a write() returned
    // EAGAIN, so write first and wait on EAGAIN.
    int poll_fd();
    // The TCP socket under the stream; it stays open for the stream's lifetime.
    int tcp_fd() const;

    bool accelerated() const;          // SMC-D over shared memory
    uint32_t fallback_reason() const;  // DECL code when not accelerated (see shunt/decline.hpp)
    uint32_t peer_reason() const;      // diagnosis the peer sent in its Decline, if any
    explicit operator bool() const { return c_ != nullptr; }

    Connection* connection() const { return c_.get(); }

private:
    friend class Listener;
    explicit Stream(std::unique_ptr<Connection> c);
    std::unique_ptr<Connection> c_;
};

class Listener {
public:
    Listener();
    ~Listener();
    Listener(Listener&&) noexcept;
    Listener& operator=(Listener&&) noexcept;

    // host "" or "0.0.0.0" / "::" listens on every address; port 0 picks one.
    static Listener listen(const std::string& host, uint16_t port, const Options& opt = Options::from_env(),
                           int backlog = 128);
    // Accepts the next connection and runs the handshake before returning it.
    Stream accept();
    int fd() const;
    uint16_t port() const;
    void close();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace shunt::lo
