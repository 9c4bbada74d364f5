#pragma once
// Which lane carries a socket pair's messages. The kernel hashes
// only the bound port, `jhash(port) & (n-1)`: it ignores the destination, collides (8 sockets
// use ~5.3 of 8 lanes), and needs a power of two. Here a pair (sender port, receiver port) of
// one peer gets either the least-loaded lane on its first send (default), or a hash of
// (source port, destination IP, destination port) over any lane count. Either way the pair keeps
// its lane while it has unacked messages: the per-pair sequence lets the receiver check order
// across lanes, but the sender never gives it anything to repair. With nothing unacked, every
// earlier message is already queued at the receiver, so moving the pair cannot reorder.
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "rds/message.hpp"

namespace shunt::rds {

enum class PlacementPolicy : uint8_t { LeastLoaded, Hash };

class LanePlacement {
public:
    LanePlacement(PlacementPolicy policy, uint32_t peer_ip, uint16_t lanes);

    // The lane count may change only while no pair has unacked messages (a peer restart, which
    // fails them all, is when it does).
    void set_lanes(uint16_t lanes);
    uint16_t lanes() const { return static_cast<uint16_t>(load_.size()); }

    // The lane for the next message of `pair`, whose payload is `bytes` long; counts it unacked.
    uint16_t place(PairKey pair, size_t bytes);
    // Messages of `pair` acked (or failed): `messages` of them, `bytes` of payload.
    void release(PairKey pair, size_t messages, size_t bytes);
    // Forgets every pair (peer restart).
    void clear();

    // The lane `pair` is on, if it has one (acks are routed by it).
    int lane_of(PairKey pair) const;
    size_t unacked(PairKey pair) const;
    // Pairs with unacked messages on `lane`, and their bytes.
    size_t active_pairs(uint16_t lane) const { return load_.at(lane).pairs; }
    size_t bytes(uint16_t lane) const { return load_.at(lane).bytes; }

    static uint16_t hash_lane(uint16_t sport, uint32_t dst_ip, uint16_t dport, uint16_t lanes);

private:
    struct PairState {
        uint16_t lane = 0;
        size_t unacked = 0;
    };
    struct Load {
        size_t pairs = 0;
        size_t bytes = 0;
    };
    uint16_t choose(PairKey pair);

    PlacementPolicy policy_;
    uint32_t peer_ip_;
    std::vector<Load> load_;
    std::map<PairKey, PairState> pairs_;
    uint16_t next_tie_ = 0;  // rotates ties so equal lanes fill evenly
};

}  // namespace shunt::rds
