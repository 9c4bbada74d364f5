// A blocking read or write on an accelerated connection ends as the kernel's TCP call would:
// SO_RCVTIMEO / SO_SNDTIMEO end it with EAGAIN (or the bytes moved so far), and a signal
// handler ends it with EINTR unless the handler asked for SA_RESTART.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace shunt::lo {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::connect_pair;
using test::options_for;
using test::TempRundir;

void set_timeout(int fd, int opt, std::chrono::milliseconds ms) {
    timeval tv{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
    ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv), 0);
}

TEST(LoBlocking, ReceiveTimeoutEndsAReadWithEagain) {
    TempRundir dir;
    auto p = connect_pair(options_for(dir), options_for(dir));
    ASSERT_TRUE(p.server.accelerated());
    set_timeout(p.server.tcp_fd(), SO_RCVTIMEO, 200ms);
    char buf[16];
    const auto t0 = Clock::now();
    EXPECT_EQ(p.server.read(buf, sizeof buf), -1);
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_GE(Clock::now() - t0, 190ms);
    EXPECT_LT(Clock::now() - t0, 5s);
    // The connection is still whole.
    ASSERT_EQ(p.client.write("x", 1), 1);
    EXPECT_EQ(p.server.read(buf, sizeof buf), 1);
}

TEST(LoBlocking, SendTimeoutReturnsWhatWentInThenEagain) {
    TempRundir dir;
    auto p = connect_pair(options_for(dir), options_for(dir));  // 64 KiB rings
    ASSERT_TRUE(p.client.accelerated());
    set_timeout(p.client.tcp_fd(), SO_SNDTIMEO, 200ms);
    std::vector<char> big(1 << 20, 'a');
    const ssize_t n = p.client.write(big.data(), big.size());
    EXPECT_GT(n, 0);
    EXPECT_LT(n, static_cast<ssize_t>(big.size()));
    const auto t0 = Clock::now();
    EXPECT_EQ(p.client.write(big.data(), big.size()), -1);
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_GE(Clock::now() - t0, 190ms);
}

std::atomic<int> g_handled{0};
void count_signal(int) { g_handled.fetch_add(1); }

struct HandlerScope {
    explicit HandlerScope(int flags) {
        struct sigaction sa {};
        sa.sa_handler = count_signal;
        sa.sa_flags = flags;
        ::sigaction(SIGUSR1, &sa, &old);
        g_handled = 0;
    }
    ~HandlerScope() { ::sigaction(SIGUSR1, &old, nullptr); }
    struct sigaction old {};
};

// Signals `thread` until `done` is ready; the handler count says how many ran.
template <class T>
void signal_until(pthread_t thread, std::future<T>& done, int at_least) {
    const auto give_up = Clock::now() + 10s;
    while (Clock::now() < give_up) {
        if (g_handled.load() >= at_least && done.wait_for(1ms) == std::future_status::ready) return;
        ::pthread_kill(thread, SIGUSR1);
        if (done.wait_for(2ms) == std::future_status::ready && g_handled.load() >= at_least) return;
    }
}

TEST(LoBlocking, SignalWithoutRestartInterruptsABlockedRead) {
    TempRundir dir;
    auto p = connect_pair(options_for(dir), options_for(dir));
    HandlerScope h(0);
    std::promise<pthread_t> who;
    auto done = std::async(std::launch::async, [&] {
        who.set_value(::pthread_self());
        char buf[8];
        const ssize_t r = p.server.read(buf, sizeof buf);
        return std::pair{r, errno};
    });
    signal_until(who.get_future().get(), done, 1);
    ASSERT_EQ(done.wait_for(5s), std::future_status::ready) << "read never returned";
    const auto [r, err] = done.get();
    EXPECT_EQ(r, -1);
    EXPECT_EQ(err, EINTR);
    EXPECT_GE(g_handled.load(), 1);
}

TEST(LoBlocking, SignalWithoutRestartEndsABlockedWriteWithWhatWentIn) {
    TempRundir dir;
    auto p = connect_pair(options_for(dir), options_for(dir));
    HandlerScope h(0);
    std::vector<char> big(1 << 20, 'b');
    std::promise<pthread_t> who;
    auto done = std::async(std::launch::async, [&] {
        who.set_value(::pthread_self());
        const ssize_t w = p.client.write(big.data(), big.size());
        return std::pair{w, errno};
    });
    signal_until(who.get_future().get(), done, 1);
    ASSERT_EQ(done.wait_for(5s), std::future_status::ready) << "write never returned";
    const auto [w, err] = done.get();
    // Part of it fit in the ring before the writer blocked: that count, as TCP returns it.
    EXPECT_GT(w, 0) << std::strerror(err);
    EXPECT_LT(w, static_cast<ssize_t>(big.size()));
}

TEST(LoBlocking, SignalWithRestartKeepsTheReadWaiting) {
    TempRundir dir;
    auto p = connect_pair(options_for(dir), options_for(dir));
    HandlerScope h(SA_RESTART);
    std::promise<pthread_t> who;
    auto done = std::async(std::launch::async, [&] {
        who.set_value(::pthread_self());
        char buf[8];
        const ssize_t r = p.server.read(buf, sizeof buf);
        return std::pair{r, errno};
    });
    const pthread_t t = who.get_future().get();
    const auto give_up = Clock::now() + 10s;
    while (g_handled.load() < 5 && Clock::now() < give_up) {
        ::pthread_kill(t, SIGUSR1);
        std::this_thread::sleep_for(1ms);
    }
    EXPECT_GE(g_handled.load(), 5);
    EXPECT_EQ(done.wait_for(0s), std::future_status::timeout) << "read returned on a restartable signal";
    ASSERT_EQ(p.client.write("hi", 2), 2);
    ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(done.get().first, 2);
}

}  // namespace
}  // namespace shunt::lo
