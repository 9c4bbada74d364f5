// The lo API end to end inside one process: handshake, data both ways, close semantics,
// readiness, and every fallback path with its reason.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <filesystem>
#include <future>
#include <fstream>
#include <random>
#include <thread>

#include "core/tcp.hpp"
#include "lo/connection.hpp"
#include "lo/engine.hpp"
#include "shunt/decline.hpp"
#include "test_support.hpp"

namespace shunt::lo {
namespace {

using test::connect_pair;
using test::options_for;
using test::pattern;
using test::TempRundir;
constexpr uint32_t code(DeclineCode c) { return static_cast<uint32_t>(c); }


// Writes `total` pattern bytes in chunks of varying odd sizes.
void send_pattern(Stream& s, uint64_t seed, size_t total) {
    std::vector<uint8_t> buf(70001);
    std::mt19937 rng(static_cast<uint32_t>(seed));
    size_t pos = 0;
    while (pos < total) {
        const size_t n = std::min<size_t>(total - pos, 1 + rng() % buf.size());
        for (size_t i = 0; i < n; ++i) buf[i] = pattern(seed, pos + i);
        const ssize_t w = s.write(buf.data(), n);
        ASSERT_EQ(w, static_cast<ssize_t>(n)) << std::strerror(errno);
        pos += n;
    }
}

// Reads until EOF and checks every byte; returns the count.
size_t receive_pattern(Stream& s, uint64_t seed) {
    std::vector<uint8_t> buf(50021);
    std::mt19937 rng(static_cast<uint32_t>(seed * 7));
    size_t pos = 0;
    for (;;) {
        const ssize_t r = s.read(buf.data(), 1 + rng() % buf.size());
        if (r == 0) return pos;
        if (r < 0) {
            ADD_FAILURE() << "read: " << std::strerror(errno);
            return pos;
        }
        for (ssize_t i = 0; i < r; ++i)
            if (buf[i] != pattern(seed, pos + i)) {
                ADD_FAILURE() << "byte " << pos + i << " differs";
                return pos;
            }
        pos += static_cast<size_t>(r);
    }
}

TEST(LoStream, SameRundirIsAccelerated) {
    TempRundir dir;
    auto p = connect_pair(options_for(dir), options_for(dir));
    EXPECT_TRUE(p.client.accelerated()) << decline_name(p.client.fallback_reason());
    EXPECT_TRUE(p.server.accelerated()) << decline_name(p.server.fallback_reason());
    ASSERT_EQ(p.client.write("hello", 5), 5);
    char buf[16] = {};
    ASSERT_EQ(p.server.read(buf, sizeof buf), 5);
    EXPECT_STREQ(buf, "hello");
    ASSERT_EQ(p.server.write("world!", 6), 6);
    ASSERT_EQ(p.client.read(buf, sizeof buf), 6);
    EXPECT_EQ(std::string(buf, 6), "world!");
}

TEST(LoStream, BothWaysAtOnceAcrossManyRingWraps) {
    TempRundir dir;
    auto opt = options_for(dir);
    opt.buffer_size = 16 * 1024;  // smallest ring: 64 MiB wraps it thousands of times
    auto p = connect_pair(opt, opt);
    ASSERT_TRUE(p.client.accelerated());
    constexpr size_t kBytes = 64 << 20;
    std::thread c_tx([&] {
        send_pattern(p.client, 1, kBytes);
        p.client.shutdown(SHUT_WR);
    });
    std::thread s_tx([&] {
        send_pattern(p.server, 2, kBytes);
        p.server.shutdown(SHUT_WR);
    });
    size_t at_server = 0, at_client = 0;
    std::thread s_rx([&] { at_server = receive_pattern(p.server, 1); });
    at_client = receive_pattern(p.client, 2);
    c_tx.join();
    s_tx.join();
    s_rx.join();
    EXPECT_EQ(at_server, kBytes);
    EXPECT_EQ(at_client, kBytes);
}

TEST(LoStream, ReadvWritevScatterGather) {
    TempRundir dir;
    auto p = connect_pair(options_for(dir), options_for(dir));
    char a[] = "abc", b[] = "defgh";
    iovec out[2] = {{a, 3}, {b, 5}};
    ASSERT_EQ(p.client.writev(out, 2), 8);
    char x[2], y[6] = {};
    iovec in[2] = {{x, 2}, {y, 6}};
    ASSERT_EQ(p.server.readv(in, 2), 8);
    EXPECT_EQ(std::string(x, 2) + std::string(y, 6), "abcdefgh");
}

TEST(LoStream, HalfCloseGivesEofOneWayOnly) {
    TempRundir dir;
    auto p = connect_pair(options_for(dir), options_for(dir));
    ASSERT_EQ(p.client.write("req", 3), 3);
    ASSERT_EQ(p.client.shutdown(SHUT_WR), 0);
    char buf[8];
    ASSERT_EQ(p.server.read(buf, sizeof buf), 3);
    EXPECT_EQ(p.server.read(buf, sizeof buf), 0);  // EOF after the data
    EXPECT_EQ(p.server.write("resp", 4), 4);       // the other direction still works
    ASSERT_EQ(p.client.read(buf, sizeof buf), 4);
    EXPECT_EQ(p.client.write("x", 1), -1);
    EXPECT_EQ(errno, EPIPE);
    EXPECT_EQ(p.client.connection()->info().state, SmcState::PeerCloseWait1);
    EXPECT_EQ(p.server.connection()->info().state, SmcState::AppCloseWait1);
}

TEST(LoStream, CloseGivesEofThenEpipe) {
    TempRundir dir;
    auto p = connect_pair(options_for(dir), options_for(dir));
    ASSERT_EQ(p.client.write("bye", 3), 3);
    p.client.close();
    char buf[8];
    ASSERT_EQ(p.server.read(buf, sizeof buf), 3);
    EXPECT_EQ(p.server.read(buf, sizeof buf), 0);
    EXPECT_EQ(p.server.connection()->info().state, SmcState::AppFinCloseWait);
    EXPECT_EQ(p.server.write("x", 1), -1);
    EXPECT_EQ(errno, EPIPE);
}

TEST(LoStream, CloseWithUnreadDataAborts) {
    TempRundir dir;
    auto p = connect_pair(options_for(dir), options_for(dir));
    ASSERT_EQ(p.server.write("unread", 6), 6);
    // Let the bytes land, then close without reading them: RFC 7609 abort.
    pollfd pfd{p.client.poll_fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 1000), 1);
    p.client.close();
    char buf[8];
    EXPECT_EQ(p.server.read(buf, sizeof buf), -1);
    EXPECT_EQ(errno, ECONNRESET);
    EXPECT_EQ(p.server.connection()->info().state, SmcState::ProcessAbort);
}

TEST(LoStream, BlockedReaderWakesOnData) {
    TempRundir dir;
    auto opt = options_for(dir);
    opt.spin = std::chrono::microseconds(0);  // sleep at once: exercises the eventfd path
    auto p = connect_pair(opt, opt);
    std::thread writer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        p.server.write("late", 4);
    });
    char buf[8];
    EXPECT_EQ(p.client.read(buf, sizeof buf), 4);
    writer.join();
}

TEST(LoStream, BlockedWriterWakesWhenReaderDrains) {
    TempRundir dir;
    auto opt = options_for(dir);
    opt.buffer_size = 16 * 1024;
    opt.spin = std::chrono::microseconds(0);
    auto p = connect_pair(opt, opt);
    std::vector<uint8_t> big(1 << 20, 7);
    std::thread reader([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::vector<uint8_t> in(4096);
        size_t got = 0;
        while (got < big.size()) {
            const ssize_t r = p.server.read(in.data(), in.size());
            ASSERT_GT(r, 0);
            got += static_cast<size_t>(r);
        }
    });
    EXPECT_EQ(p.client.write(big.data(), big.size()), static_cast<ssize_t>(big.size()));
    reader.join();
    EXPECT_GT(Engine::instance().counters().tx_buffer_full.load(), 0u);
}

TEST(LoStream, NonblockingReadAndLevelTriggeredPollFd) {
    TempRundir dir;
    auto p = connect_pair(options_for(dir), options_for(dir));
    p.client.set_nonblocking(true);
    const int fd = p.client.poll_fd();
    char buf[4];
    EXPECT_EQ(p.client.read(buf, sizeof buf), -1);
    EXPECT_EQ(errno, EAGAIN);
    pollfd pfd{fd, POLLIN, 0};
    EXPECT_EQ(::poll(&pfd, 1, 0), 0) << "readable with nothing to read";
    ASSERT_EQ(p.server.write("0123456789", 10), 10);
    EXPECT_EQ(::poll(&pfd, 1, 1000), 1);
    EXPECT_EQ(p.client.read(buf, sizeof buf), 4);
    EXPECT_EQ(::poll(&pfd, 1, 0), 1) << "level-triggered: 6 bytes remain";
    EXPECT_EQ(p.client.read(buf, sizeof buf), 4);
    EXPECT_EQ(::poll(&pfd, 1, 0), 1);
    EXPECT_EQ(p.client.read(buf, sizeof buf), 2);
    EXPECT_EQ(p.client.read(buf, sizeof buf), -1);
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_EQ(::poll(&pfd, 1, 0), 0);
    p.server.shutdown(SHUT_WR);
    EXPECT_EQ(::poll(&pfd, 1, 1000), 1) << "EOF is readable";
    EXPECT_EQ(p.client.read(buf, sizeof buf), 0);
}

TEST(LoStream, NonblockingWriteFillsRingThenEagain) {
    TempRundir dir;
    auto opt = options_for(dir);
    opt.buffer_size = 16 * 1024;
    auto p = connect_pair(opt, opt);
    p.client.set_nonblocking(true);
    const int fd = p.client.poll_fd();
    std::vector<uint8_t> chunk(100000, 1);
    const ssize_t first = p.client.write(chunk.data(), chunk.size());
    EXPECT_EQ(first, 16 * 1024 - 32) << "partial write of exactly the free ring";
    EXPECT_EQ(p.client.write(chunk.data(), chunk.size()), -1);
    EXPECT_EQ(errno, EAGAIN);
    // Drain the reader side (which must publish its consumer cursor): the writer's fd fires.
    std::vector<uint8_t> in(first);
    ASSERT_EQ(p.server.read(in.data(), in.size()), first);
    pollfd pfd{fd, POLLIN, 0};
    bool writable = false;
    for (int i = 0; i < 10 && !writable; ++i) {
        ASSERT_EQ(::poll(&pfd, 1, 1000), 1);
        const ssize_t w = p.client.write(chunk.data(), chunk.size());
        writable = w > 0;
        if (!writable) {
            ASSERT_EQ(errno, EAGAIN);
        }
    }
    EXPECT_TRUE(writable);
}

TEST(LoFallback, PlainTcpClientToShuntServer) {
    TempRundir dir;
    auto listener = Listener::listen("127.0.0.1", 0, options_for(dir));
    std::thread client([&] {
        UniqueFd c = tcp_connect("127.0.0.1", listener.port());
        write_all(c.get(), "plain", 5);
        char buf[5];
        ASSERT_TRUE(read_exact(c.get(), buf, 5));
        EXPECT_EQ(std::string(buf, 5), "reply");
    });
    Stream s = listener.accept();
    EXPECT_FALSE(s.accelerated());
    EXPECT_EQ(s.fallback_reason(), code(DeclineCode::PeerNoSmc));
    char buf[16];
    ASSERT_EQ(s.read(buf, sizeof buf), 5);
    EXPECT_EQ(std::string(buf, 5), "plain");  // no CLC byte before the application's
    ASSERT_EQ(s.write("reply", 5), 5);
    client.join();
}

TEST(LoFallback, ShuntClientToPlainTcpServerSendsNoClc) {
    TempRundir dir;
    UniqueFd server = tcp_listen("127.0.0.1", 0);
    const uint16_t port = local_endpoint(server.get())->port;
    std::string received;
    std::thread t([&] {
        UniqueFd c = tcp_accept(server.get());
        char buf[64];
        ssize_t n;
        while ((n = ::recv(c.get(), buf, sizeof buf, 0)) > 0) received.append(buf, static_cast<size_t>(n));
    });
    {
        Stream s = Stream::connect("127.0.0.1", port, options_for(dir));
        EXPECT_FALSE(s.accelerated());
        EXPECT_EQ(s.fallback_reason(), code(DeclineCode::PeerNoSmc));
        ASSERT_EQ(s.write("only this", 9), 9);
    }
    t.join();
    EXPECT_EQ(received, "only this");
}

TEST(LoFallback, DifferentGidIsDeclinedNoSmcd2Dev) {
    TempRundir dir;
    auto server_opt = options_for(dir);
    auto listener = Listener::listen("127.0.0.1", 0, server_opt);
    // The client opens the same directory under another name after the GID changed: it sees
    // the listener but belongs to another "host", as a container with its own rundir would.
    std::filesystem::remove(dir.path() + "/gid");
    auto client_opt = options_for(dir);
    client_opt.rundir = dir.path() + "/.";
    auto accepted = std::async(std::launch::async, [&] { return listener.accept(); });
    Stream c = Stream::connect("127.0.0.1", listener.port(), client_opt);
    Stream s = accepted.get();
    EXPECT_FALSE(c.accelerated());
    EXPECT_EQ(s.fallback_reason(), code(DeclineCode::NoSmcd2Dev));
    EXPECT_EQ(c.fallback_reason(), code(DeclineCode::PeerDecl));
    EXPECT_EQ(c.peer_reason(), code(DeclineCode::NoSmcd2Dev));
    ASSERT_EQ(c.write("tcp still", 9), 9);
    char buf[16];
    ASSERT_EQ(s.read(buf, sizeof buf), 9);
    EXPECT_EQ(std::string(buf, 9), "tcp still");
}

TEST(LoFallback, DmbLimitIsDeclinedMaxDmb) {
    TempRundir dir;
    Engine::instance().set_max_dmbs(0);
    auto p = connect_pair(options_for(dir), options_for(dir));
    Engine::instance().set_max_dmbs(5000);
    EXPECT_EQ(p.server.fallback_reason(), code(DeclineCode::MaxDmb));
    EXPECT_EQ(p.client.peer_reason(), code(DeclineCode::MaxDmb));
    ASSERT_EQ(p.client.write("ok", 2), 2);
    char buf[2];
    EXPECT_EQ(p.server.read(buf, 2), 2);
}

TEST(LoFallback, UeidMismatchIsDeclined) {
    TempRundir dir;
    auto other = options_for(dir);
    other.ueid = "OTHER";
    auto p = connect_pair(options_for(dir), other);
    EXPECT_FALSE(p.server.accelerated());
    EXPECT_EQ(p.server.fallback_reason(), code(DeclineCode::NoSmcd2Dev));
}

TEST(LoStream, NothingLeftInRundirAfterClose) {
    TempRundir dir;
    {
        auto listener = Listener::listen("127.0.0.1", 0, options_for(dir));
        auto accepted = std::async(std::launch::async, [&] { return listener.accept(); });
        Stream c = Stream::connect("127.0.0.1", listener.port(), options_for(dir));
        Stream s = accepted.get();
        EXPECT_TRUE(c.accelerated());
        EXPECT_EQ(dir.leftover_entries(), 1u) << "only the listener's registration";
    }
    EXPECT_EQ(dir.leftover_entries(), 0u);
}

}  // namespace
}  // namespace shunt::lo
