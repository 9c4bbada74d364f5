// The local port's part of the reply hash (docs/rss-algebra.md). Toeplitz is linear over GF(2),
// so H(tuple) = H(tuple with local port 0) XOR M·p where column j of M is the key window at the
// port's bit j. Only the RETA index bits matter (M_r, r = log2 RETA size); the syndrome M_r·p is
// evaluated with two 256-entry tables built from the 16 columns, so classifying a port costs two
// loads and never a hash. The rank of M_r says how many RETA indices a port choice can reach
// (2^rank); an echelon basis of the column space gives canonical coset representatives.
#include <algorithm>
#include <stdexcept>

#include "shunt/rss.hpp"

namespace shunt::rss {

PortMatrix::PortMatrix(const ToeplitzKey& key, Family family, unsigned r_bits)
    : family_(family), r_(r_bits) {
    if (r_bits < 1 || r_bits > 16) throw std::invalid_argument("port matrix needs 1..16 rows");
    const size_t offset = local_port_bit_offset(family);
    if ((offset + 16) / 8 > key.max_input_bytes())
        throw std::invalid_argument("key too short for this family's tuple");
    for (unsigned j = 0; j < 16; ++j) col32_[j] = key.window(offset + j);

    // syn_hi_[v]: bit b of v is port bit 8 + b, i.e. column 7 - b; syn_lo_[v]: column 15 - b.
    for (unsigned v = 1; v < 256; ++v) {
        const unsigned b = static_cast<unsigned>(__builtin_ctz(v));
        syn_hi_[v] = syn_hi_[v & (v - 1)] ^ column(7 - b);
        syn_lo_[v] = syn_lo_[v & (v - 1)] ^ column(15 - b);
    }

    // Echelon basis, sorted by leading bit, descending.
    for (unsigned j = 0; j < 16; ++j) {
        uint32_t x = reduce(column(j));
        if (x == 0) continue;
        basis_.push_back(x);
        std::sort(basis_.begin(), basis_.end(), [](uint32_t a, uint32_t b) { return a > b; });
    }
    rank_ = static_cast<unsigned>(basis_.size());
}

uint32_t PortMatrix::apply32(uint16_t port) const {
    uint32_t h = 0;
    for (unsigned j = 0; j < 16; ++j)
        if ((port >> (15 - j)) & 1) h ^= col32_[j];
    return h;
}

uint32_t PortMatrix::reduce(uint32_t t) const {
    // Basis vectors have distinct leading bits and are sorted by them (a > b on the values is the
    // same order); clearing each leading bit in turn leaves the unique coset member with none set.
    for (uint32_t b : basis_) {
        const uint32_t lead = uint32_t{1} << (31 - __builtin_clz(b));
        if (t & lead) t ^= b;
    }
    return t;
}

}  // namespace shunt::rss
