// The rds reliability core without I/O: fragmentation and turn-taking, app-level acks,
// retransmission after lane failures, duplicate and gap detection.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <random>

#include "rds/lane_sender.hpp"
#include "rds/receiver.hpp"

namespace shunt::rds {
namespace {

Message msg(PairKey pair, uint64_t seq, size_t size, uint8_t fill = 0) {
    Message m;
    m.pair = pair;
    m.seq = seq;
    auto data = std::make_shared<std::vector<uint8_t>>(size);
    for (size_t i = 0; i < size; ++i) data->at(i) = static_cast<uint8_t>(fill + seq * 31 + i);
    m.data = std::move(data);
    return m;
}

TEST(RdsLaneSender, SmallMessageWaitsAtMostOneFragment) {
    LaneSender s;
    s.enqueue(msg({1, 2}, 1, kMaxMessage));  // 16 fragments
    ASSERT_TRUE(s.next_frame());             // the big message starts
    s.enqueue(msg({3, 4}, 1, 100));
    auto second = s.next_frame();
    ASSERT_TRUE(second);
    EXPECT_EQ(second->header.sport, 1);  // the big message's turn was already due
    auto third = s.next_frame();
    ASSERT_TRUE(third);
    EXPECT_EQ(third->header.sport, 3) << "the small message went out after one more fragment";
    EXPECT_EQ(third->header.len, 100u);
    size_t fragments = 3;
    while (s.next_frame()) ++fragments;
    EXPECT_EQ(fragments, 16u + 1);
}

TEST(RdsLaneSender, AcksFreeInOrderAndRejectTheNeverSent) {
    LaneSender s;
    for (uint64_t seq = 1; seq <= 3; ++seq) s.enqueue(msg({1, 2}, seq, 10));
    while (s.next_frame()) {
    }
    EXPECT_EQ(s.unacked_messages(), 3u);
    EXPECT_TRUE(s.on_ack({1, 2}, 2));
    EXPECT_EQ(s.unacked_messages(), 1u);
    EXPECT_TRUE(s.on_ack({1, 2}, 2)) << "a repeated ack is harmless";
    EXPECT_FALSE(s.on_ack({1, 2}, 4)) << "sequence 4 was never queued";
    EXPECT_FALSE(s.on_ack({9, 9}, 1)) << "no such pair";
    EXPECT_TRUE(s.on_ack({1, 2}, 3));
    EXPECT_EQ(s.unacked_messages(), 0u);
    EXPECT_EQ(s.queued_bytes(), 0u);
}

TEST(RdsLaneSender, ResetResendsEverythingUnackedInOrderFromTheStart) {
    LaneSender s;
    s.enqueue(msg({1, 2}, 1, 10));
    s.enqueue(msg({1, 2}, 2, 200000));  // 4 fragments
    s.enqueue(msg({1, 2}, 3, 10));
    s.next_frame();  // seq 1
    s.next_frame();  // first fragment of seq 2
    s.on_ack({1, 2}, 1);
    s.reset_for_retransmit();
    auto f = s.next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->header.sequence, 2u);
    EXPECT_EQ(f->header.frag_offset, 0u) << "a partly written message starts again";
    EXPECT_EQ(f->header.flags & flag::kRetransmitted, flag::kRetransmitted);
    std::vector<uint64_t> order;
    for (auto g = s.next_frame(); g; g = s.next_frame())
        if (g->header.frag_offset == 0) order.push_back(g->header.sequence);
    EXPECT_EQ(order, (std::vector<uint64_t>{3}));
}

TEST(RdsLaneSender, LateAckSparesRetransmission) {
    LaneSender s;
    s.enqueue(msg({1, 2}, 1, 10));
    s.enqueue(msg({1, 2}, 2, 10));
    s.next_frame();
    s.next_frame();
    s.reset_for_retransmit();
    EXPECT_TRUE(s.on_ack({1, 2}, 1));  // the ack was on its way when the lane failed
    auto f = s.next_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->header.sequence, 2u);
    EXPECT_FALSE(s.next_frame());
}

TEST(RdsLaneSender, FailAllReturnsEverythingNotAcked) {
    LaneSender s;
    for (uint64_t seq = 1; seq <= 4; ++seq) s.enqueue(msg({5, 6}, seq, 10));
    s.next_frame();
    s.next_frame();
    s.on_ack({5, 6}, 1);
    const auto failed = s.fail_all();
    ASSERT_EQ(failed.size(), 3u);
    EXPECT_EQ(failed[0].seq, 2u);
    EXPECT_EQ(failed[2].seq, 4u);
    EXPECT_TRUE(s.idle());
    EXPECT_EQ(s.queued_bytes(), 0u);
}

Frame data_frame(uint16_t sport, uint16_t dport, uint64_t seq, uint32_t off, uint32_t len, uint32_t total) {
    Frame f;
    f.kind = Kind::Data;
    f.sport = sport;
    f.dport = dport;
    f.sequence = seq;
    f.frag_offset = off;
    f.len = len;
    f.msg_len = total;
    return f;
}

TEST(RdsReceiver, DuplicatesAreDroppedAndGapsAreErrors) {
    Receiver r;
    const std::vector<uint8_t> p(5, 1);
    EXPECT_TRUE(std::holds_alternative<Delivered>(r.on_data(data_frame(1, 2, 1, 0, 5, 5), p)));
    EXPECT_EQ(r.ack_for({1, 2}), 1u);
    EXPECT_TRUE(std::holds_alternative<Duplicate>(r.on_data(data_frame(1, 2, 1, 0, 5, 5), p)));
    const auto gap = r.on_data(data_frame(1, 2, 3, 0, 5, 5), p);
    ASSERT_TRUE(std::holds_alternative<ReceiveError>(gap));
    EXPECT_EQ(std::get<ReceiveError>(gap), ReceiveError::Gap);
    EXPECT_EQ(r.ack_for({7, 7}), 0u);
}

TEST(RdsReceiver, FragmentsMustContinueTheirMessage) {
    Receiver r;
    const std::vector<uint8_t> p(4, 1);
    EXPECT_TRUE(std::holds_alternative<Partial>(r.on_data(data_frame(1, 2, 1, 0, 4, 12), p)));
    const auto skip = r.on_data(data_frame(1, 2, 1, 8, 4, 12), p);
    ASSERT_TRUE(std::holds_alternative<ReceiveError>(skip));
    EXPECT_EQ(std::get<ReceiveError>(skip), ReceiveError::BadFragment);
    // A retransmission restarts the message from offset 0.
    EXPECT_TRUE(std::holds_alternative<Partial>(r.on_data(data_frame(1, 2, 1, 0, 4, 12), p)));
    EXPECT_TRUE(std::holds_alternative<Partial>(r.on_data(data_frame(1, 2, 1, 4, 4, 12), p)));
    EXPECT_TRUE(std::holds_alternative<Delivered>(r.on_data(data_frame(1, 2, 1, 8, 4, 12), p)));
    EXPECT_EQ(r.partial_bytes(), 0u);
}

TEST(RdsReceiver, PartialMessagesAreBounded) {
    Receiver r;
    const std::vector<uint8_t> p(kMaxFragment, 1);
    bool refused = false;
    for (uint16_t port = 1; port < 2000 && !refused; ++port) {
        const auto res = r.on_data(data_frame(port, 1, 1, 0, kMaxFragment, kMaxMessage), p);
        refused = std::holds_alternative<ReceiveError>(res);
    }
    EXPECT_TRUE(refused);
    EXPECT_LE(r.partial_bytes(), kMaxReassembly);
}

// A lane whose TCP connection fails at random: frames and acks in transit at the moment of
// failure are lost; the sender retransmits; every message arrives once, in order per pair.
TEST(RdsReliability, RandomLaneFailuresLoseNothingAndDuplicateNothing) {
    std::mt19937 rng(2024);
    LaneSender sender;
    Receiver receiver;
    std::map<PairKey, uint64_t> next_seq, delivered_upto;
    std::map<PairKey, std::vector<Message>> sent;
    const PairKey pairs[] = {{10, 20}, {11, 20}, {12, 21}, {13, 22}};
    std::deque<OutFrame> wire;
    std::deque<std::pair<PairKey, uint64_t>> acks;
    size_t resets = 0, delivered = 0;
    constexpr size_t kMessages = 3000;
    size_t queued = 0;
    for (int step = 0; step < 2000000 && (delivered < kMessages || !sender.idle() || !wire.empty()); ++step) {
        const int action = static_cast<int>(rng() % 100);
        if (action < 20 && queued < kMessages) {
            const PairKey k = pairs[rng() % 4];
            const size_t size = rng() % 10 == 0 ? rng() % (kMaxMessage + 1) : rng() % 3000;
            Message m = msg(k, ++next_seq[k], size, static_cast<uint8_t>(k.sport));
            sent[k].push_back(m);
            sender.enqueue(std::move(m));
            ++queued;
        } else if (action < 60) {
            if (auto f = sender.next_frame()) wire.push_back(std::move(*f));
        } else if (action < 90 && !wire.empty()) {
            OutFrame f = std::move(wire.front());
            wire.pop_front();
            const auto res = receiver.on_data(f.header, f.payload);
            ASSERT_FALSE(std::holds_alternative<ReceiveError>(res)) << to_string(std::get<ReceiveError>(res));
            if (const auto* d = std::get_if<Delivered>(&res)) {
                const Message& m = d->message;
                ASSERT_EQ(m.seq, delivered_upto[m.pair] + 1) << "out of order";
                const Message& orig = sent[m.pair][m.seq - 1];
                ASSERT_EQ(*m.data, *orig.data) << "payload differs";
                delivered_upto[m.pair] = m.seq;
                ++delivered;
                acks.emplace_back(m.pair, receiver.ack_for(m.pair));
            } else if (const auto* dup = std::get_if<Duplicate>(&res)) {
                acks.emplace_back(dup->pair, receiver.ack_for(dup->pair));
            }
        } else if (action < 98 && !acks.empty()) {
            ASSERT_TRUE(sender.on_ack(acks.front().first, acks.front().second));
            acks.pop_front();
        } else if (action >= 99) {
            // The lane's TCP connection fails: what was in transit is lost both ways.
            wire.clear();
            acks.clear();
            sender.reset_for_retransmit();
            ++resets;
        }
    }
    EXPECT_EQ(delivered, kMessages);
    EXPECT_GT(resets, 10u);
    // Drain the last acks so the sender holds nothing.
    for (const PairKey& k : pairs) EXPECT_TRUE(sender.on_ack(k, receiver.ack_for(k)));
    EXPECT_EQ(sender.unacked_messages(), 0u);
    EXPECT_EQ(sender.queued_bytes(), 0u);
}

}  // namespace
}  // namespace shunt::rds
