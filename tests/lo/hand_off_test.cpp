// Moving a live SMC-D connection to TCP (Connection::hand_off, what the preload does before an
// exec): bytes in flight both ways when it happens arrive once and in order, whichever side
// notices how, and a waiter on the other side is woken.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstring>
#include <thread>
#include <vector>

#include "lo/connection.hpp"
#include "test_support.hpp"

namespace shunt::lo {
namespace {

using test::connect_pair;
using test::options_for;
using test::pattern;
using test::TempRundir;

void write_range(Stream& s, uint64_t seed, size_t from, size_t to) {
    std::vector<uint8_t> buf(9001);
    while (from < to) {
        const size_t n = std::min(buf.size(), to - from);
        for (size_t i = 0; i < n; ++i) buf[i] = pattern(seed, from + i);
        const ssize_t w = s.write(buf.data(), n);
        ASSERT_GT(w, 0) << std::strerror(errno);
        from += static_cast<size_t>(w);
    }
}

void read_range(Stream& s, uint64_t seed, size_t from, size_t to) {
    std::vector<uint8_t> buf(7919);
    while (from < to) {
        const ssize_t r = s.read(buf.data(), std::min(buf.size(), to - from));
        ASSERT_GT(r, 0) << "at " << from << ": " << (r < 0 ? std::strerror(errno) : "EOF");
        for (ssize_t i = 0; i < r; ++i) ASSERT_EQ(buf[i], pattern(seed, from + i)) << "at " << from + i;
        from += static_cast<size_t>(r);
    }
}

void expect_eof(Stream& s) {
    char c;
    EXPECT_EQ(s.read(&c, 1), 0);
}

// `mover` hands off with data unread on both sides (some read but maybe not announced), then
// both go on: every byte of both streams must arrive once, in order, then EOF.
// `other_too`: the other side execs as well before it noticed (it then takes over instead).
void hand_off_mid_stream(bool client_moves, bool other_too = false) {
    TempRundir dir;
    auto pair = connect_pair(options_for(dir), options_for(dir));
    ASSERT_TRUE(pair.client.accelerated());
    Stream& mover = client_moves ? pair.client : pair.server;
    Stream& other = client_moves ? pair.server : pair.client;
    constexpr size_t kTotal = 600 * 1024, kMoverSent = 40 * 1024, kOtherSent = 50 * 1024;
    constexpr size_t kMoverRead = 10 * 1024, kOtherRead = 3 * 1024;
    write_range(mover, 1, 0, kMoverSent);  // rings are 64 KiB: none of this blocks
    write_range(other, 2, 0, kOtherSent);
    read_range(mover, 2, 0, kMoverRead);
    read_range(other, 1, 0, kOtherRead);

    EXPECT_EQ(mover.connection()->hand_off(), 0u);
    EXPECT_TRUE(mover.connection()->moved());
    EXPECT_TRUE(other.connection()->handed_off());
    if (other_too) {
        EXPECT_EQ(other.connection()->hand_off(), 0u);
        EXPECT_TRUE(other.connection()->moved());
    }

    std::thread mover_writer([&] {
        write_range(mover, 1, kMoverSent, kTotal);
        mover.shutdown(SHUT_WR);
    });
    std::thread other_writer([&] {
        write_range(other, 2, kOtherSent, kTotal);
        other.shutdown(SHUT_WR);
    });
    std::thread mover_reader([&] {
        read_range(mover, 2, kMoverRead, kTotal);
        expect_eof(mover);
    });
    read_range(other, 1, kOtherRead, kTotal);
    expect_eof(other);
    mover_writer.join();
    other_writer.join();
    mover_reader.join();
    EXPECT_TRUE(other.connection()->moved());
}

TEST(LoHandOff, ServerMovesMidStream) { hand_off_mid_stream(false); }
TEST(LoHandOff, ClientMovesMidStream) { hand_off_mid_stream(true); }
TEST(LoHandOff, BothMoveOneAfterTheOther) { hand_off_mid_stream(false, true); }

TEST(LoHandOff, BlockedReaderWakesAndReadsOverTcp) {
    TempRundir dir;
    auto pair = connect_pair(options_for(dir), options_for(dir));
    ASSERT_TRUE(pair.client.accelerated());
    std::vector<char> got(5);
    std::thread reader([&] {
        size_t n = 0;
        while (n < got.size()) {
            const ssize_t r = pair.client.read(got.data() + n, got.size() - n);
            ASSERT_GT(r, 0) << std::strerror(errno);
            n += static_cast<size_t>(r);
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // asleep in read()
    pair.server.connection()->hand_off();
    ASSERT_EQ(::send(pair.server.tcp_fd(), "hello", 5, MSG_NOSIGNAL), 5);  // straight on the socket
    reader.join();
    EXPECT_EQ(std::string(got.data(), got.size()), "hello");
    EXPECT_TRUE(pair.client.connection()->moved());
}

TEST(LoHandOff, BlockedWriterWakesAndFinishesOverTcp) {
    TempRundir dir;
    auto pair = connect_pair(options_for(dir), options_for(dir));
    ASSERT_TRUE(pair.client.accelerated());
    constexpr size_t kTotal = 256 * 1024;  // four rings: the writer blocks on a full one
    std::thread writer([&] { write_range(pair.client, 3, 0, kTotal); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    pair.server.connection()->hand_off();
    read_range(pair.server, 3, 0, kTotal);  // the ring's unread bytes come back over TCP
    writer.join();
}

TEST(LoHandOff, CloseOfTheOtherSideBeforeNoticingStillResends) {
    TempRundir dir;
    auto pair = connect_pair(options_for(dir), options_for(dir));
    ASSERT_TRUE(pair.client.accelerated());
    write_range(pair.client, 4, 0, 20000);  // unread by the server when it moves
    pair.server.connection()->hand_off();
    pair.client.close();  // never read or wrote after the move: resends, then FIN
    read_range(pair.server, 4, 0, 20000);
    expect_eof(pair.server);
}

}  // namespace
}  // namespace shunt::lo
