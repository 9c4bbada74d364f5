// CLC over a real stream socket: whole messages in, nothing beyond them consumed.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstring>
#include <thread>

#include "clc/builders.hpp"
#include "clc/transfer.hpp"
#include "core/unique_fd.hpp"

namespace shunt::clc {
namespace {

struct Pair {
    UniqueFd a, b;
    Pair() {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        a.reset(fds[0]);
        b.reset(fds[1]);
    }
};

using Kind = TransferError::Kind;
constexpr std::chrono::milliseconds kShort{200};

TEST(ClcTransfer, MessageThenApplicationBytesStayApart) {
    Pair p;
    const Decline d = decline(0x03030007);
    ASSERT_EQ(send_message(p.a.get(), d), 0);
    ASSERT_EQ(::send(p.a.get(), "app", 3, 0), 3);
    auto got = receive_message(p.b.get(), kShort);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(std::get<Decline>(*got), d);
    char buf[8] = {};
    ASSERT_EQ(::recv(p.b.get(), buf, sizeof buf, 0), 3);
    EXPECT_STREQ(buf, "app");
}

TEST(ClcTransfer, NonClcBytesAreNotConsumed) {
    Pair p;
    const char req[] = "GET / HTTP/1.1\r\n";
    ASSERT_EQ(::send(p.a.get(), req, sizeof req - 1, 0), ssize_t(sizeof req - 1));
    auto got = receive_message(p.b.get(), kShort);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().kind, Kind::Malformed);
    char buf[64] = {};
    ASSERT_EQ(::recv(p.b.get(), buf, sizeof buf, 0), ssize_t(sizeof req - 1));
    EXPECT_STREQ(buf, req);
}

TEST(ClcTransfer, MessageArrivingInPiecesIsReassembled) {
    Pair p;
    const Eid ueids[] = {pad_blank("SHUNT")};
    const auto bytes = encode(loopback_proposal({1, 2}, ueids));
    std::thread writer([&] {
        for (size_t i = 0; i < bytes.size(); i += 50) {
            ::send(p.a.get(), bytes.data() + i, std::min<size_t>(50, bytes.size() - i), 0);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    });
    auto got = receive_message(p.b.get(), std::chrono::milliseconds(2000));
    writer.join();
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(encode(*got), bytes);
}

TEST(ClcTransfer, TruncatedMessageThenCloseIsClosed) {
    Pair p;
    const auto bytes = encode(decline(1));
    ASSERT_EQ(::send(p.a.get(), bytes.data(), 20, 0), 20);
    p.a.reset();
    auto got = receive_message(p.b.get(), kShort);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().kind, Kind::Closed);
}

TEST(ClcTransfer, SilentPeerTimesOut) {
    Pair p;
    const auto start = std::chrono::steady_clock::now();
    auto got = receive_message(p.b.get(), kShort);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().kind, Kind::Timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - start, kShort);
}

TEST(ClcTransfer, MalformedBodyIsReportedWithField) {
    Pair p;
    auto bytes = encode(decline(1));
    bytes[5] = 0;
    bytes[6] = 45;  // length says 45, a v2 Decline is 44
    bytes.push_back(0);
    ASSERT_EQ(::send(p.a.get(), bytes.data(), bytes.size(), 0), ssize_t(bytes.size()));
    auto got = receive_message(p.b.get(), kShort);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().kind, Kind::Malformed);
    EXPECT_STREQ(got.error().clc.field, "header.length");
}

}  // namespace
}  // namespace shunt::clc
