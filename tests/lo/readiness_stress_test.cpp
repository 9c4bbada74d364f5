// Readiness under load: both ends nonblocking, driven only by poll_fd() in epoll, edge- and
// level-triggered, with random write and read sizes and a small ring so the writer blocks often.
// A lost wake-up shows as a stall (each wait has a deadline), a lost or repeated byte as a
// pattern mismatch.
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <algorithm>
#include <random>
#include <thread>

#include "test_support.hpp"

namespace shunt::lo {
namespace {

using test::connect_pair;
using test::options_for;
using test::TempRundir;

uint8_t pattern(uint64_t seed, uint64_t pos) { return static_cast<uint8_t>((pos * 131 + seed * 7 + (pos >> 9)) & 0xff); }

// Sends `total` bytes and receives `total` from the peer on one stream, event-driven.
void pump(Stream& s, uint64_t my_seed, uint64_t peer_seed, size_t total, bool edge, uint32_t rng_seed) {
    s.set_nonblocking(true);
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = edge ? uint32_t{EPOLLIN} | EPOLLET : uint32_t{EPOLLIN};
    ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, s.poll_fd(), &ev), 0);
    std::mt19937 rng(rng_seed);
    std::vector<uint8_t> out(40000), in(40000);
    size_t sent = 0, got = 0;
    bool sent_eof = false, got_eof = false;
    int idle_waits = 0;
    while (!(sent_eof && got_eof)) {
        bool progress = false;
        // Write until EAGAIN (edge-triggered users must drain both directions).
        while (sent < total) {
            const size_t n = std::min<size_t>(total - sent, 1 + rng() % out.size());
            for (size_t i = 0; i < n; ++i) out[i] = pattern(my_seed, sent + i);
            const ssize_t w = s.write(out.data(), n);
            if (w < 0) {
                ASSERT_EQ(errno, EAGAIN);
                break;
            }
            sent += static_cast<size_t>(w);
            progress = true;
        }
        if (sent == total && !sent_eof) {
            ASSERT_EQ(s.shutdown(SHUT_WR), 0);
            sent_eof = true;
        }
        // Read until EAGAIN or EOF.
        while (!got_eof) {
            const ssize_t r = s.read(in.data(), 1 + rng() % in.size());
            if (r < 0) {
                ASSERT_EQ(errno, EAGAIN);
                break;
            }
            if (r == 0) {
                got_eof = true;
                break;
            }
            for (ssize_t i = 0; i < r; ++i) ASSERT_EQ(in[i], pattern(peer_seed, got + i)) << "at " << got + i;
            got += static_cast<size_t>(r);
            progress = true;
        }
        if (sent_eof && got_eof) break;
        if (!progress) {
            epoll_event e;
            const int n = ::epoll_wait(ep, &e, 1, 5000);
            ASSERT_GE(n, 0);
            if (n == 0) {
                ASSERT_LT(++idle_waits, 2) << "stalled: sent " << sent << " got " << got << " (lost wake-up?)";
            }
        }
    }
    EXPECT_EQ(got, total);
    ::close(ep);
}

class ReadinessStress : public testing::TestWithParam<bool> {};

TEST_P(ReadinessStress, BothDirectionsEventDriven) {
    TempRundir dir;
    auto opt = options_for(dir);
    opt.buffer_size = 16 * 1024;
    opt.spin = std::chrono::microseconds(0);
    auto p = connect_pair(opt, opt);
    ASSERT_TRUE(p.client.accelerated());
    constexpr size_t kBytes = 24 << 20;
    const bool edge = GetParam();
    std::thread server([&] { pump(p.server, 2, 1, kBytes, edge, 7); });
    pump(p.client, 1, 2, kBytes, edge, 11);
    server.join();
}

INSTANTIATE_TEST_SUITE_P(Lo, ReadinessStress, testing::Values(false, true),
                         [](const testing::TestParamInfo<bool>& p) { return p.param ? "EdgeTriggered" : "LevelTriggered"; });

TEST(LoConcurrency, TwoWritersOneReaderNoByteLost) {
    TempRundir dir;
    auto opt = options_for(dir);
    opt.buffer_size = 16 * 1024;
    auto p = connect_pair(opt, opt);
    constexpr size_t kPerWriter = 8 << 20;
    // Each write carries a whole record (tag byte repeated), so interleaving is visible only at
    // record boundaries: writes on a stream are atomic with respect to each other.
    auto writer = [&](uint8_t tag) {
        std::vector<uint8_t> rec(4096, tag);
        for (size_t sent = 0; sent < kPerWriter; sent += rec.size())
            ASSERT_EQ(p.client.write(rec.data(), rec.size()), static_cast<ssize_t>(rec.size()));
    };
    std::thread w1(writer, 0xA1), w2(writer, 0xB2);
    size_t counts[2] = {0, 0};
    std::vector<uint8_t> rec(4096);
    for (size_t total = 0; total < 2 * kPerWriter; total += rec.size()) {
        size_t have = 0;
        while (have < rec.size()) {
            const ssize_t r = p.server.read(rec.data() + have, rec.size() - have);
            ASSERT_GT(r, 0);
            have += static_cast<size_t>(r);
        }
        ASSERT_TRUE(std::all_of(rec.begin(), rec.end(), [&](uint8_t b) { return b == rec[0]; })) << "torn record";
        ASSERT_TRUE(rec[0] == 0xA1 || rec[0] == 0xB2);
        ++counts[rec[0] == 0xB2];
    }
    w1.join();
    w2.join();
    EXPECT_EQ(counts[0], kPerWriter / 4096);
    EXPECT_EQ(counts[1], kPerWriter / 4096);
}

}  // namespace
}  // namespace shunt::lo
