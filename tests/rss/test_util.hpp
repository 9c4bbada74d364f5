#pragma once
// Helpers shared by the rss tests.
#include <gtest/gtest.h>

#include <random>

#include "shunt/rss.hpp"

namespace shunt::rss::test {

inline IpAddress ip(std::string_view s) {
    auto a = IpAddress::parse(s);
    if (!a) throw std::invalid_argument(std::string(s));
    return *a;
}

inline IpAddress random_ip(std::mt19937_64& rng, Family f) {
    if (f == Family::kV4) {
        const uint32_t v = static_cast<uint32_t>(rng());
        return IpAddress::v4({uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)});
    }
    std::array<uint8_t, 16> b{};
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    return IpAddress::v6(b);
}

inline ToeplitzKey random_key(std::mt19937_64& rng, size_t len) {
    std::vector<uint8_t> b(len);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    return *ToeplitzKey::from_bytes(b);
}

// Queue of the reply traffic of local:lport -> remote:rport, by the bit-serial reference.
inline uint32_t reference_queue(const NicModel& m, const IpAddress& local, uint16_t lport,
                                const IpAddress& remote, uint16_t rport) {
    return m.reta.queue_of_hash(
        hash_reference(m.key, reply_tuple(local, lport, remote, rport), true));
}

}  // namespace shunt::rss::test
