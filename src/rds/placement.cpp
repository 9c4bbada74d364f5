#include "rds/placement.hpp"

#include <algorithm>
#include <stdexcept>

namespace shunt::rds {

LanePlacement::LanePlacement(PlacementPolicy policy, uint32_t peer_ip, uint16_t lanes)
    : policy_(policy), peer_ip_(peer_ip) {
    set_lanes(lanes);
}

void LanePlacement::set_lanes(uint16_t lanes) {
    if (lanes == 0) throw std::invalid_argument("rds: a peer needs at least one lane");
    for (const auto& [key, s] : pairs_)
        if (s.unacked) throw std::logic_error("rds: lane count changed with unacked messages");
    load_.assign(lanes, {});
    pairs_.clear();
}

uint16_t LanePlacement::hash_lane(uint16_t sport, uint32_t dst_ip, uint16_t dport, uint16_t lanes) {
    // splitmix64 finaliser over the three fields: every input bit reaches every output bit,
    // and the modulo works for any lane count.
    uint64_t x = (uint64_t{dst_ip} << 32) ^ (uint64_t{sport} << 16) ^ dport;
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return static_cast<uint16_t>(x % lanes);
}

uint16_t LanePlacement::choose(PairKey pair) {
    const auto n = static_cast<uint16_t>(load_.size());
    if (policy_ == PlacementPolicy::Hash) return hash_lane(pair.sport, peer_ip_, pair.dport, n);
    uint16_t best = next_tie_ % n;
    for (uint16_t k = 1; k < n; ++k) {
        const uint16_t i = static_cast<uint16_t>((next_tie_ + k) % n);
        const Load& a = load_[i];
        const Load& b = load_[best];
        if (a.pairs < b.pairs || (a.pairs == b.pairs && a.bytes < b.bytes)) best = i;
    }
    next_tie_ = static_cast<uint16_t>((best + 1) % n);
    return best;
}

uint16_t LanePlacement::place(PairKey pair, size_t bytes) {
    PairState& s = pairs_[pair];
    if (s.unacked == 0) {
        s.lane = choose(pair);
        ++load_[s.lane].pairs;
    }
    ++s.unacked;
    load_[s.lane].bytes += bytes;
    return s.lane;
}

void LanePlacement::release(PairKey pair, size_t messages, size_t bytes) {
    auto it = pairs_.find(pair);
    if (it == pairs_.end() || messages == 0) return;
    PairState& s = it->second;
    Load& l = load_[s.lane];
    l.bytes -= std::min(l.bytes, bytes);
    const size_t n = std::min(messages, s.unacked);
    s.unacked -= n;
    if (s.unacked == 0 && n) --l.pairs;
}

void LanePlacement::clear() {
    load_.assign(load_.size(), {});
    pairs_.clear();
}

int LanePlacement::lane_of(PairKey pair) const {
    auto it = pairs_.find(pair);
    return it == pairs_.end() ? -1 : it->second.lane;
}

size_t LanePlacement::unacked(PairKey pair) const {
    auto it = pairs_.find(pair);
    return it == pairs_.end() ? 0 : it->second.unacked;
}

}  // namespace shunt::rds
