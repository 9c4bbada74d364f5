// RSS-aligned source-port allocator (docs/rss-algebra.md).
//
// Why it is fast: a port's syndrome s(p) = M_r·p does not depend on the peer, so the range is
// grouped by syndrome once (SyndromeIndex: two table lookups per port and a counting sort, no
// hashing). For a destination, the reply hash is c XOR M·p with c = H(reply tuple, port 0); the
// RETA index is (c XOR M·p) mod 2^r, so queue q's ports are the groups with syndrome
// t XOR c_r for every RETA index t of q. A new destination, or a server address change, is one
// hash plus |indices of q| XORs; the free lists themselves never change.
//
// Why it is thread-safe without a global lock: every syndrome group is its own lock-free free list
// (a Treiber stack over slot indices; the head packs a 32-bit tag with the top slot so a
// pop/push/pop interleaving cannot corrupt the list, ABA would need 2^32 operations on one head
// while a thread sleeps between its load and its CAS). Nothing is shared across syndromes except
// the immutable index, and for one destination the queues own disjoint syndromes, so the shards
// of one destination never touch the same head. A per-slot state byte (free/held/excluded) makes a
// double release detectable. A Target is per-shard state (its cursor remembers the last non-empty
// group, which makes draining a pool amortised O(1)) and is not shared between threads.
#include <algorithm>
#include <random>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "shunt/rss.hpp"

namespace shunt::rss {
namespace {

constexpr uint8_t kFree = 0;
constexpr uint8_t kHeld = 1;
constexpr uint8_t kExcluded = 2;

// splitmix64: the shuffle only needs unpredictable-enough order, and std::shuffle over mt19937_64
// costs more than the rest of the set-up together.
struct SplitMix {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, n) by multiply-shift (bias < n / 2^32, irrelevant here).
    uint32_t below(uint32_t n) {
        return static_cast<uint32_t>(((next() >> 32) * uint64_t{n}) >> 32);
    }
};

}  // namespace

std::optional<PortRange> PortRange::parse(std::string_view text) {
    const size_t dash = text.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    auto number = [](std::string_view s) -> std::optional<uint16_t> {
        if (s.empty() || s.size() > 5) return std::nullopt;
        uint32_t v = 0;
        for (char c : s) {
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + static_cast<uint32_t>(c - '0');
        }
        if (v > 65535) return std::nullopt;
        return static_cast<uint16_t>(v);
    };
    const auto lo = number(text.substr(0, dash));
    const auto hi = number(text.substr(dash + 1));
    if (!lo || !hi || *lo > *hi) return std::nullopt;
    return PortRange{*lo, *hi};
}

SyndromeIndex::SyndromeIndex(const PortMatrix& m, PortRange range,
                             std::span<const uint16_t> excluded)
    : matrix_(m), range_(range) {
    if (range.lo > range.hi) throw std::invalid_argument("empty port range");
    std::vector<char> skip(range.size(), 0);
    for (uint16_t p : excluded)
        if (range.contains(p)) skip[p - range.lo] = 1;

    const size_t groups = size_t{1} << m.rows();
    start_.assign(groups + 1, 0);
    for (uint32_t p = range.lo; p <= range.hi; ++p)
        if (!skip[p - range.lo]) ++start_[m.syndrome(static_cast<uint16_t>(p)) + 1];
    for (size_t s = 0; s < groups; ++s) start_[s + 1] += start_[s];
    ports_.resize(start_[groups]);
    std::vector<uint32_t> fill(start_.begin(), start_.end() - 1);
    for (uint32_t p = range.lo; p <= range.hi; ++p)
        if (!skip[p - range.lo])
            ports_[fill[m.syndrome(static_cast<uint16_t>(p))]++] = static_cast<uint16_t>(p);
}

PortAllocator::PortAllocator(Config config)
    : model_(std::move(config.model)),
      local_(config.local),
      hasher_(model_.key),
      index_(PortMatrix(model_.key, local_.family(), model_.reta.log2_size()), config.range,
             config.excluded) {
    if (config.range.lo == 0) throw std::invalid_argument("port range must start at 1 or above");
    const size_t slots = config.range.size();
    const size_t groups = size_t{1} << index_.matrix().rows();
    heads_ = std::make_unique<std::atomic<uint64_t>[]>(groups);
    next_ = std::make_unique<std::atomic<uint32_t>[]>(slots);
    state_ = std::make_unique<std::atomic<uint8_t>[]>(slots);
    for (size_t i = 0; i < slots; ++i) state_[i].store(kExcluded, std::memory_order_relaxed);

    SplitMix rng{config.seed ? config.seed
                             : (uint64_t{std::random_device{}()} << 32 | std::random_device{}())};
    std::vector<uint16_t> order;
    for (size_t s = 0; s < groups; ++s) {
        const auto ports = index_.ports(static_cast<uint32_t>(s));
        order.assign(ports.begin(), ports.end());
        if (config.shuffle) {
            for (size_t i = order.size(); i > 1; --i)
                std::swap(order[i - 1], order[rng.below(static_cast<uint32_t>(i))]);
        }
        // Link the group so that pops return `order` front to back.
        uint32_t head = 0;  // slot + 1 of the top, 0 = empty
        for (auto it = order.rbegin(); it != order.rend(); ++it) {
            const uint32_t slot = *it - config.range.lo;
            next_[slot].store(head, std::memory_order_relaxed);
            state_[slot].store(kFree, std::memory_order_relaxed);
            head = slot + 1;
        }
        heads_[s].store(head, std::memory_order_relaxed);
    }
    // Other threads see this state through whatever hands them the allocator (thread start, a
    // mutex, a release store), as for any object constructed before it is shared.
}

PortAllocator::~PortAllocator() = default;

void PortAllocator::compute(Target& t) const {
    const uint32_t c = hasher_.hash(reply_tuple(local_, 0, t.remote_, t.remote_port_), true);
    t.fixed_hash_ = c;
    const uint32_t c_r = c & index_.matrix().row_mask();
    const auto idx = model_.reta.indices_of(t.queue_);
    t.syndromes_.resize(idx.size());
    for (size_t i = 0; i < idx.size(); ++i) t.syndromes_[i] = idx[i] ^ c_r;
    t.cursor_ = 0;
}

Target PortAllocator::target(const IpAddress& remote, uint16_t remote_port, uint32_t queue) const {
    Target t;
    t.remote_ = remote;
    t.remote_port_ = remote_port;
    t.queue_ = queue;
    compute(t);
    return t;
}

void PortAllocator::retarget(Target& t, const IpAddress& remote, uint16_t remote_port) const {
    t.remote_ = remote;
    t.remote_port_ = remote_port;
    compute(t);
}

std::optional<uint32_t> PortAllocator::pop(uint32_t syndrome) {
    auto& head = heads_[syndrome];
    uint64_t cur = head.load(std::memory_order_acquire);
    for (;;) {
        const uint32_t top = static_cast<uint32_t>(cur);
        if (top == 0) return std::nullopt;
        const uint32_t after = next_[top - 1].load(std::memory_order_relaxed);
        const uint64_t want = (((cur >> 32) + 1) << 32) | after;
        if (head.compare_exchange_weak(cur, want, std::memory_order_acquire,
                                       std::memory_order_acquire))
            return top - 1;
    }
}

void PortAllocator::push(uint32_t syndrome, uint32_t slot) {
    auto& head = heads_[syndrome];
    uint64_t cur = head.load(std::memory_order_relaxed);
    for (;;) {
        next_[slot].store(static_cast<uint32_t>(cur), std::memory_order_relaxed);
        const uint64_t want = (((cur >> 32) + 1) << 32) | (slot + 1);
        if (head.compare_exchange_weak(cur, want, std::memory_order_release,
                                       std::memory_order_relaxed))
            return;
    }
}

std::optional<uint16_t> PortAllocator::acquire(Target& t) {
    const size_t n = t.syndromes_.size();
    for (size_t k = 0; k < n; ++k) {
        const size_t i = (t.cursor_ + k) % n;
        if (auto slot = pop(t.syndromes_[i])) {
            t.cursor_ = i;
            state_[*slot].store(kHeld, std::memory_order_relaxed);
            return static_cast<uint16_t>(index_.range().lo + *slot);
        }
    }
    return std::nullopt;
}

bool PortAllocator::release(uint16_t port) {
    if (!index_.range().contains(port)) return false;
    const uint32_t slot = port - index_.range().lo;
    uint8_t expect = kHeld;
    if (!state_[slot].compare_exchange_strong(expect, kFree, std::memory_order_relaxed))
        return false;
    push(index_.matrix().syndrome(port), slot);
    return true;
}

bool PortAllocator::held(uint16_t port) const {
    if (!index_.range().contains(port)) return false;
    return state_[port - index_.range().lo].load(std::memory_order_relaxed) == kHeld;
}

void PortAllocator::pool(const Target& t, std::vector<uint16_t>& out) const {
    for (uint32_t s : t.syndromes_) {
        const auto ports = index_.ports(s);
        out.insert(out.end(), ports.begin(), ports.end());
    }
}

size_t PortAllocator::pool_size(const Target& t) const {
    size_t n = 0;
    for (uint32_t s : t.syndromes_) n += index_.ports(s).size();
    return n;
}

PortLease::PortLease(PortLease&& o) noexcept
    : owner_(std::exchange(o.owner_, nullptr)), port_(std::exchange(o.port_, 0)) {}

PortLease& PortLease::operator=(PortLease&& o) noexcept {
    if (this != &o) {
        reset();
        owner_ = std::exchange(o.owner_, nullptr);
        port_ = std::exchange(o.port_, 0);
    }
    return *this;
}

void PortLease::reset() {
    if (owner_) owner_->release(port_);
    owner_ = nullptr;
    port_ = 0;
}

}  // namespace shunt::rss
