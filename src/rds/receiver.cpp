#include "rds/receiver.hpp"

#include <memory>

namespace shunt::rds {

const char* to_string(ReceiveError e) {
    switch (e) {
        case ReceiveError::Gap: return "sequence gap: a message was lost";
        case ReceiveError::BadFragment: return "fragment does not continue its message";
        case ReceiveError::TooMuchPartial: return "too many bytes in partial messages";
    }
    return "receive error";
}

void Receiver::drop_partial(PairState& s) {
    partial_bytes_ -= s.partial.size();
    s.partial.clear();
    s.partial.shrink_to_fit();
    s.partial_seq.reset();
    s.partial_len = 0;
}

ReceiveResult Receiver::on_data(const Frame& f, std::span<const uint8_t> payload) {
    const PairKey key{f.sport, f.dport};
    PairState& s = pairs_[key];
    if (f.sequence < s.next_seq) return Duplicate{key, f.sequence};
    if (f.sequence > s.next_seq) return ReceiveError::Gap;
    if (f.frag_offset == 0) {
        // A message starts (again, if this is a retransmission after a lane reset).
        drop_partial(s);
        s.partial_seq = f.sequence;
        s.partial_len = f.msg_len;
    } else if (!s.partial_seq || f.msg_len != s.partial_len || f.frag_offset != s.partial.size()) {
        return ReceiveError::BadFragment;
    }
    if (partial_bytes_ + payload.size() > kMaxReassembly) return ReceiveError::TooMuchPartial;
    s.partial.insert(s.partial.end(), payload.begin(), payload.end());
    partial_bytes_ += payload.size();
    if (s.partial.size() < s.partial_len) return Partial{};
    Message m;
    m.pair = key;
    m.seq = f.sequence;
    partial_bytes_ -= s.partial.size();
    m.data = std::make_shared<const std::vector<uint8_t>>(std::move(s.partial));
    s.partial = {};
    s.partial_seq.reset();
    s.partial_len = 0;
    ++s.next_seq;
    return Delivered{std::move(m)};
}

uint64_t Receiver::ack_for(PairKey pair) const {
    auto it = pairs_.find(pair);
    return it == pairs_.end() ? 0 : it->second.next_seq - 1;
}

void Receiver::reset() {
    pairs_.clear();
    partial_bytes_ = 0;
}

}  // namespace shunt::rds
