#include "rds/lane_sender.hpp"

#include <algorithm>

namespace shunt::rds {

void LaneSender::enqueue(Message m) {
    Flow& f = flows_[m.pair];
    if (f.pending.empty()) rotation_.push_back(m.pair);
    queued_bytes_ += m.size();
    f.last_seq = std::max(f.last_seq, m.seq);
    f.pending.push_back(std::move(m));
}

std::optional<OutFrame> LaneSender::next_frame() {
    if (rotation_.empty()) return std::nullopt;
    const PairKey key = rotation_.front();
    rotation_.pop_front();
    Flow& f = flows_[key];
    Message& m = f.pending.front();
    const uint32_t total = static_cast<uint32_t>(m.size());
    const uint32_t len = std::min(total - f.front_offset, kMaxFragment);
    OutFrame out;
    out.header.kind = Kind::Data;
    out.header.sequence = m.seq;
    out.header.sport = key.sport;
    out.header.dport = key.dport;
    out.header.len = len;
    out.header.frag_offset = f.front_offset;
    out.header.msg_len = total;
    out.header.flags = m.retransmitted ? flag::kRetransmitted : 0;
    out.keep = m.data;
    if (len) out.payload = std::span(m.data->data() + f.front_offset, len);
    f.front_offset += len;
    if (f.front_offset == total) {
        f.in_flight.push_back(std::move(m));
        f.pending.pop_front();
        f.front_offset = 0;
    }
    if (!f.pending.empty()) rotation_.push_back(key);  // its next fragment waits its turn
    return out;
}

bool LaneSender::on_ack(PairKey pair, uint64_t seq, Freed* freed, std::vector<std::shared_ptr<const std::vector<uint8_t>>>* buffers) {
    auto it = flows_.find(pair);
    if (it == flows_.end() || seq > it->second.last_seq) return false;
    Flow& f = it->second;
    Freed local;
    Freed& out = freed ? *freed : local;
    out = {};
    while (!f.in_flight.empty() && f.in_flight.front().seq <= seq) {
        queued_bytes_ -= f.in_flight.front().size();
        out.bytes += f.in_flight.front().size();
        ++out.messages;
        if (buffers && f.in_flight.front().data) buffers->push_back(std::move(f.in_flight.front().data));
        f.in_flight.pop_front();
    }
    // After a reset, unacked messages wait to be written again; an ack that arrives late
    // spares them the trip.
    while (!f.pending.empty() && f.pending.front().seq <= seq) {
        queued_bytes_ -= f.pending.front().size();
        out.bytes += f.pending.front().size();
        ++out.messages;
        if (buffers && f.pending.front().data) buffers->push_back(std::move(f.pending.front().data));
        f.pending.pop_front();
        f.front_offset = 0;
    }
    if (f.pending.empty()) drop_from_rotation(pair);
    return true;
}

void LaneSender::drop_from_rotation(PairKey key) {
    rotation_.erase(std::remove(rotation_.begin(), rotation_.end(), key), rotation_.end());
}

void LaneSender::reset_for_retransmit() {
    rotation_.clear();
    for (auto& [key, f] : flows_) {
        // Unacked messages go back in front of the unsent ones, in their original order, and
        // the partly written one starts again from its first byte.
        for (auto it = f.in_flight.rbegin(); it != f.in_flight.rend(); ++it) {
            it->retransmitted = true;
            f.pending.push_front(std::move(*it));
        }
        f.in_flight.clear();
        if (f.front_offset) f.pending.front().retransmitted = true;
        f.front_offset = 0;
        if (!f.pending.empty()) rotation_.push_back(key);
    }
}

std::vector<Message> LaneSender::fail_all() {
    std::vector<Message> out;
    for (auto& [key, f] : flows_) {
        for (Message& m : f.in_flight) out.push_back(std::move(m));
        for (Message& m : f.pending) out.push_back(std::move(m));
    }
    flows_.clear();  // a new incarnation starts every pair's sequence again
    rotation_.clear();
    queued_bytes_ = 0;
    return out;
}

const Message* LaneSender::find(PairKey pair, uint64_t seq) const {
    auto it = flows_.find(pair);
    if (it == flows_.end()) return nullptr;
    for (const auto* q : {&it->second.in_flight, &it->second.pending})
        for (const Message& m : *q)
            if (m.seq == seq) return &m;
    return nullptr;
}

size_t LaneSender::unacked(PairKey pair) const {
    auto it = flows_.find(pair);
    return it == flows_.end() ? 0 : it->second.in_flight.size() + it->second.pending.size();
}

size_t LaneSender::unacked_messages() const {
    size_t n = 0;
    for (const auto& [key, f] : flows_) n += f.in_flight.size() + f.pending.size();
    return n;
}

}  // namespace shunt::rds
