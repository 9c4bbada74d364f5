// socket_deadline and restart_after_signal: what ends an emulated blocking call.
#include "core/blocking.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

namespace shunt {
namespace {

using namespace std::chrono_literals;

TEST(Blocking, SocketDeadlineFollowsTheTimeoutOption) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    EXPECT_FALSE(socket_deadline(sv[0], SO_RCVTIMEO));  // 0: wait forever
    timeval tv{1, 500000};
    ASSERT_EQ(::setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    const auto before = std::chrono::steady_clock::now();
    const auto d = socket_deadline(sv[0], SO_RCVTIMEO);
    ASSERT_TRUE(d);
    EXPECT_GE(*d - before, 1500ms);
    EXPECT_LT(*d - before, 2500ms);
    EXPECT_FALSE(socket_deadline(sv[0], SO_SNDTIMEO));
    EXPECT_FALSE(socket_deadline(-1, SO_RCVTIMEO));
    ::close(sv[0]);
    ::close(sv[1]);
}

void on_signal(int) {}

TEST(Blocking, RestartOnlyWhenEveryHandlerAsksForIt) {
    struct sigaction old1 {}, old2 {};
    ASSERT_EQ(::sigaction(SIGUSR1, nullptr, &old1), 0);
    ASSERT_EQ(::sigaction(SIGUSR2, nullptr, &old2), 0);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    ASSERT_EQ(::sigaction(SIGUSR1, &sa, nullptr), 0);
    EXPECT_TRUE(restart_after_signal());
    sa.sa_flags = 0;
    ASSERT_EQ(::sigaction(SIGUSR2, &sa, nullptr), 0);
    EXPECT_FALSE(restart_after_signal());
    ::sigaction(SIGUSR1, &old1, nullptr);
    ::sigaction(SIGUSR2, &old2, nullptr);
}

}  // namespace
}  // namespace shunt
