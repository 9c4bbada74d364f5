#pragma once
// A datagram between two rds sockets, as the reliability layer holds it until it is acked.
#include <cstdint>
#include <memory>
#include <vector>

namespace shunt::rds {

// (sender socket port, receiver socket port) between one pair of hosts: the unit of ordering.
struct PairKey {
    uint16_t sport = 0, dport = 0;
    auto operator<=>(const PairKey&) const = default;
};

struct Message {
    PairKey pair;
    uint64_t seq = 0;  // per pair, from 1
    uint64_t id = 0;   // what send() returned to the sending socket: names it in failure reports
    std::shared_ptr<const std::vector<uint8_t>> data;
    bool retransmitted = false;
    size_t size() const { return data ? data->size() : 0; }
};

}  // namespace shunt::rds
