#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <random>

#include "rds/frame.hpp"
#include "rds/frame_reader.hpp"

namespace shunt::rds {
namespace {

Frame data_frame(uint64_t seq, uint32_t off, uint32_t len, uint32_t total) {
    Frame f;
    f.kind = Kind::Data;
    f.sequence = seq;
    f.len = len;
    f.sport = 4001;
    f.dport = 4002;
    f.frag_offset = off;
    f.msg_len = total;
    return f;
}

Frame decode(const std::array<uint8_t, kHeaderLen>& b) {
    auto f = decode_header(b);
    EXPECT_TRUE(f) << (f ? "" : to_string(f.error()));
    return f ? *f : Frame{};
}

FrameError error_of(const std::array<uint8_t, kHeaderLen>& b) {
    auto f = decode_header(b);
    EXPECT_FALSE(f);
    return f ? FrameError::BadKind : f.error();
}

TEST(RdsFrame, DataHeaderLayoutFollowsRdsHeader) {
    Frame f = data_frame(0x0102030405060708ULL, 0x10000, 0x200, 0x10200);
    f.flags = flag::kRetransmitted;
    const auto b = encode_header(f);
    const std::array<uint8_t, kHeaderLen> want{
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // h_sequence
        0, 0, 0, 0, 0, 0, 0, 0,                          // h_ack
        0x00, 0x00, 0x02, 0x00,                          // h_len
        0x0f, 0xa1, 0x0f, 0xa2,                          // h_sport 4001, h_dport 4002
        0x04, 0x00, 0, 0, 0, 0, 0x00, 0x00,              // flags, credit, padding, csum
        0x81, 0x01,                                      // ext KIND = Data
        0x82, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00,  // ext FRAGMENT offset, total
        0, 0, 0, 0, 0};                                  // end of extensions
    EXPECT_EQ(b, want);
    EXPECT_EQ(decode(b), f);
}

TEST(RdsFrame, EveryKindRoundTrips) {
    Frame ack;
    ack.kind = Kind::Ack;
    ack.ack = 99;
    ack.window = 0xA0B0C0D0u;
    ack.window_seq = 0x0102030405060708ULL;
    ack.sport = 7;
    ack.dport = 8;
    Frame hello;
    hello.kind = Kind::Hello;
    hello.hello = {3, 8, 0xfeedfacecafebeefULL};
    Frame unreachable;
    unreachable.kind = Kind::Unreachable;
    unreachable.sequence = 5;
    Frame ping;
    ping.kind = Kind::Ping;
    ping.len = 16;
    Frame pong = ping;
    pong.kind = Kind::Pong;
    for (const Frame& f : {data_frame(1, 0, 0, 0), data_frame(3, 65536, 65536, kMaxMessage), ack, hello,
                           unreachable, ping, pong})
        EXPECT_EQ(decode(encode_header(f)), f);
}

// CREDIT: type 0x84, be32 window, be64 window sequence, right after KIND.
TEST(RdsFrame, AckCarriesTheWindowAndItsOrderingNumber) {
    Frame ack;
    ack.kind = Kind::Ack;
    ack.ack = 1;
    ack.window = 0x00010203u;
    ack.window_seq = 0x0405060708090a0bULL;
    const auto b = encode_header(ack);
    const std::array<uint8_t, 16> want{0x81, 0x02, 0x84, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
                                       0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x00};
    EXPECT_TRUE(std::equal(want.begin(), want.end(), b.begin() + 32));
    EXPECT_EQ(decode(b), ack);
}

TEST(RdsFrame, HelloCarriesLaneCountBeyondPowersOfTwo) {
    Frame h;
    h.kind = Kind::Hello;
    h.hello = {11, 12, 1};
    EXPECT_EQ(decode(encode_header(h)).hello.lanes, 12);
}

TEST(RdsFrame, ValidationErrors) {
    auto b = encode_header(data_frame(1, 0, 10, 10));
    b[32] = 0;  // no extensions at all
    EXPECT_EQ(error_of(b), FrameError::NoKind);
    b = encode_header(data_frame(1, 0, 10, 10));
    b[33] = 9;
    EXPECT_EQ(error_of(b), FrameError::BadKind);
    b = encode_header(data_frame(1, 0, 10, 10));
    b[34] = 0x42;  // a type we cannot size
    EXPECT_EQ(error_of(b), FrameError::UnknownExtension);
    b = encode_header(data_frame(1, 0, 10, 10));
    b[34] = 0;  // Data without FRAGMENT
    EXPECT_EQ(error_of(b), FrameError::MissingFragment);
    EXPECT_EQ(error_of(encode_header(data_frame(1, 0, kMaxFragment + 1, kMaxFragment + 1))), FrameError::FragmentTooLarge);
    EXPECT_EQ(error_of(encode_header(data_frame(1, 0, 10, kMaxMessage + 1))), FrameError::MessageTooLarge);
    EXPECT_EQ(error_of(encode_header(data_frame(1, 5, 10, 12))), FrameError::FragmentOutside);
    // offset + len computed without 32-bit wrap-around
    EXPECT_EQ(error_of(encode_header(data_frame(1, 0xFFFFFFF0u, 0x100, 0x100))), FrameError::FragmentOutside);
    EXPECT_EQ(error_of(encode_header(data_frame(0, 0, 1, 1))), FrameError::BadSequence);
    Frame ack;
    ack.kind = Kind::Ack;
    ack.ack = 1;
    ack.len = 4;
    EXPECT_EQ(error_of(encode_header(ack)), FrameError::UnexpectedPayload);
    ack.len = 0;
    ack.ack = 0;
    EXPECT_EQ(error_of(encode_header(ack)), FrameError::BadSequence);
    ack.ack = 1;
    EXPECT_EQ(error_of(encode_header(ack)), FrameError::BadWindowSequence);
    ack.window_seq = 1;
    b = encode_header(ack);
    EXPECT_EQ(b[34], 0x84) << "CREDIT follows KIND";
    b[34] = 0;  // Ack without CREDIT
    EXPECT_EQ(error_of(b), FrameError::MissingCredit);
    Frame h;
    h.kind = Kind::Hello;
    for (Hello bad : {Hello{2, 2, 1}, Hello{0, 0, 1}, Hello{0, 256, 1}, Hello{0, 1, 0}}) {
        h.hello = bad;
        EXPECT_EQ(error_of(encode_header(h)), FrameError::BadHello);
    }
    b = encode_header(h);
    b[34] = 0;  // Hello without HELLO
    EXPECT_EQ(error_of(b), FrameError::MissingHello);
}

// A stream of frames cut at random places comes out as the same frames, in order.
TEST(RdsFrameReader, RandomChunkingYieldsTheSameFrames) {
    std::mt19937 rng(42);
    std::vector<uint8_t> stream;
    std::vector<Frame> sent;
    for (uint64_t seq = 1; seq <= 300; ++seq) {
        const uint32_t len = rng() % 3 == 0 ? rng() % (kMaxFragment + 1) : rng() % 200;
        Frame f = data_frame(seq, 0, len, len);
        const auto h = encode_header(f);
        stream.insert(stream.end(), h.begin(), h.end());
        for (uint32_t i = 0; i < len; ++i) stream.push_back(static_cast<uint8_t>(seq + i));
        sent.push_back(f);
    }
    for (int trial = 0; trial < 20; ++trial) {
        FrameReader reader;
        std::vector<Frame> got;
        size_t at = 0;
        while (at < stream.size()) {
            const size_t n = std::min<size_t>(stream.size() - at, 1 + rng() % 100000);
            auto err = reader.feed(std::span(stream).subspan(at, n), [&](const Frame& f, std::span<const uint8_t> p) {
                ASSERT_EQ(p.size(), f.len);
                for (uint32_t i = 0; i < f.len; ++i) ASSERT_EQ(p[i], static_cast<uint8_t>(f.sequence + i));
                got.push_back(f);
            });
            ASSERT_FALSE(err);
            EXPECT_LE(reader.pending(), kHeaderLen + kMaxFragment);
            at += n;
        }
        EXPECT_EQ(got, sent);
        EXPECT_EQ(reader.pending(), 0u);
    }
}

TEST(RdsFrameReader, MalformedHeaderStopsTheLane) {
    auto good = encode_header(data_frame(1, 0, 0, 0));
    auto bad = good;
    bad[33] = 0xEE;
    std::vector<uint8_t> stream(good.begin(), good.end());
    stream.insert(stream.end(), bad.begin(), bad.end());
    stream.insert(stream.end(), good.begin(), good.end());
    FrameReader reader;
    int frames = 0;
    auto err = reader.feed(stream, [&](const Frame&, std::span<const uint8_t>) { ++frames; });
    ASSERT_TRUE(err);
    EXPECT_EQ(*err, FrameError::BadKind);
    EXPECT_EQ(frames, 1);
    EXPECT_TRUE(reader.feed(good, [&](const Frame&, std::span<const uint8_t>) { ++frames; }));
    EXPECT_EQ(frames, 1) << "a stopped reader delivers nothing more";
}

}  // namespace
}  // namespace shunt::rds
