#pragma once
// shunt::rss — RSS-aligned outgoing connections.
//
// A NIC with receive-side scaling hashes each received packet with the Toeplitz function
// (docs/rss-algebra.md) and picks the RX queue from an indirection table (RETA, §2). A proxy that
// keeps each connection on one CPU must choose the local port of an outgoing connection so that the
// *reply* packets land on that CPU's queue. The hash is linear over GF(2) (§3.1), so the local port
// contributes M·p to the hash independently of the peer; ports are grouped once by their syndrome
// M_r·p and a destination only selects which groups belong to a queue (docs/rss-algebra.md).
//
// Layers, each usable on its own:
//   IpAddress, ToeplitzKey, FlowTuple   — values
//   toeplitz_reference / ToeplitzHasher — bit-serial reference and table-driven fast path
//   Reta, NicModel, PortMatrix          — indirection table, key rank, reachable queues
//   query_nic                           — the real key/RETA/hfunc of an interface (ethtool ioctl)
//   SyndromeIndex, PortAllocator        — ports grouped by syndrome; lock-free per-syndrome pools
//   connect_aligned                     — bind the chosen port and connect, retrying on conflicts
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace shunt::rss {

// ---------------------------------------------------------------------------------------------
// Addresses and flows

enum class Family : uint8_t { kV4, kV6 };

class IpAddress {
  public:
    IpAddress() = default;  // 0.0.0.0
    // Dotted IPv4 or textual IPv6 (no brackets, no scope).
    static std::optional<IpAddress> parse(std::string_view text);
    static IpAddress v4(std::array<uint8_t, 4> bytes);
    static IpAddress v6(std::array<uint8_t, 16> bytes);

    Family family() const { return family_; }
    // 4 or 16 bytes, network order.
    std::span<const uint8_t> bytes() const {
        return {bytes_.data(), family_ == Family::kV4 ? size_t{4} : size_t{16}};
    }
    std::string to_string() const;
    bool operator==(const IpAddress&) const = default;

  private:
    Family family_ = Family::kV4;
    std::array<uint8_t, 16> bytes_{};
};

// A flow as the receiving NIC sees it: src is the sender of the packet that gets hashed. For the
// reply traffic of our outgoing connection local:lp -> remote:rp that is
// {remote, local, rp, lp}: the local port is the last 16 bits of the hash input (docs/rss-algebra.md).
struct FlowTuple {
    IpAddress src;
    IpAddress dst;
    uint16_t sport = 0;
    uint16_t dport = 0;
};

// The reply tuple of an outgoing connection local:local_port -> remote:remote_port.
inline FlowTuple reply_tuple(const IpAddress& local, uint16_t local_port, const IpAddress& remote,
                             uint16_t remote_port) {
    return FlowTuple{remote, local, remote_port, local_port};
}

inline constexpr size_t kMaxHashInput = 36;  // IPv6 + ports

// Serialises src, dst[, sport, dport] in network order (docs/rss-algebra.md); returns 8, 12, 32 or 36.
// Throws std::invalid_argument if src and dst are of different families.
size_t hash_input(const FlowTuple& t, bool with_ports, std::span<uint8_t, kMaxHashInput> out);

// ---------------------------------------------------------------------------------------------
// Toeplitz hash

inline constexpr size_t kMinKeyBytes = 40;
inline constexpr size_t kMaxKeyBytes = 60;

class ToeplitzKey {
  public:
    ToeplitzKey();  // the Microsoft verification key (docs/rss-algebra.md)
    static std::optional<ToeplitzKey> from_bytes(std::span<const uint8_t> bytes);  // 40..60 bytes
    // Hex digits, optionally separated by ':' '-' or spaces ("6d:5a:..." as ethtool prints it).
    static std::optional<ToeplitzKey> parse_hex(std::string_view text);
    static ToeplitzKey microsoft();
    static ToeplitzKey symmetric();  // 0x6d5a repeated (40 bytes)

    std::span<const uint8_t> bytes() const { return {bytes_.data(), size_}; }
    size_t size() const { return size_; }
    // Longest input the key can hash: each input bit needs a 32-bit key window.
    size_t max_input_bytes() const { return size_ - 4; }
    // Key bits [bit, bit + 32) as a number whose MSB is key bit `bit` (bit 0 = MSB of byte 0).
    // Bits past the end of the key read as 0.
    uint32_t window(size_t bit) const;
    std::string to_hex(char separator = '\0') const;
    bool operator==(const ToeplitzKey&) const = default;

  private:
    std::array<uint8_t, kMaxKeyBytes> bytes_{};
    size_t size_ = 0;
};

// Bit-serial definition (docs/rss-algebra.md): for each input bit, MSB first, XOR in the current leftmost
// 32 key bits if the bit is set, then shift the key left by one. The tests' reference.
// Throws std::invalid_argument if the input is longer than key.max_input_bytes().
uint32_t toeplitz_reference(const ToeplitzKey& key, std::span<const uint8_t> input);
uint32_t hash_reference(const ToeplitzKey& key, const FlowTuple& t, bool with_ports);

// Fast path: one 256-entry table per input byte position (table[i][v] = XOR of the key windows of
// the set bits of v at byte i), so a hash is one load and one XOR per input byte.
class ToeplitzHasher {
  public:
    explicit ToeplitzHasher(const ToeplitzKey& key);
    // input.size() must not exceed key().max_input_bytes() (checked, std::invalid_argument).
    uint32_t hash(std::span<const uint8_t> input) const;
    uint32_t hash(const FlowTuple& t, bool with_ports) const;
    const ToeplitzKey& key() const { return key_; }

  private:
    ToeplitzKey key_;
    std::vector<std::array<uint32_t, 256>> table_;
};

// ---------------------------------------------------------------------------------------------
// Indirection table and NIC model

class Reta {
  public:
    static constexpr size_t kMinSize = 4;      // 2^2
    static constexpr size_t kMaxSize = 65536;  // 2^16

    Reta() : Reta(round_robin(128, 1)) {}
    // Entry i = i % queues, the Linux default (ethtool_rxfh_indir_default). Throws
    // std::invalid_argument unless size is a power of two in [4, 65536] and queues >= 1.
    static Reta round_robin(size_t size, uint32_t queues);
    // Throws std::invalid_argument on a bad size.
    static Reta from_entries(std::vector<uint32_t> entries);

    size_t size() const { return entries_.size(); }
    unsigned log2_size() const { return log2_; }
    uint32_t mask() const { return static_cast<uint32_t>(entries_.size() - 1); }
    uint32_t index_of(uint32_t hash) const { return hash & mask(); }
    uint32_t queue_of_hash(uint32_t hash) const { return entries_[index_of(hash)]; }
    uint32_t operator[](size_t i) const { return entries_[i]; }
    std::span<const uint32_t> entries() const { return entries_; }
    // Largest queue number + 1.
    uint32_t queue_count() const { return queue_count_; }
    // The RETA indices whose entry is `queue` (empty for a queue that is not in the table).
    std::span<const uint32_t> indices_of(uint32_t queue) const;

  private:
    struct Empty {};
    explicit Reta(Empty) {}
    std::vector<uint32_t> entries_;
    unsigned log2_ = 0;
    uint32_t queue_count_ = 0;
    std::vector<uint32_t> by_queue_start_;  // CSR: indices of queue q are [start[q], start[q+1])
    std::vector<uint32_t> by_queue_;
};

struct NicModel {
    ToeplitzKey key;
    Reta reta;
    // The documented default: Microsoft key, RETA of `reta_size` entries filled i % queues.
    static NicModel make_default(uint32_t queues, size_t reta_size = 128);
};

// Bit offset of the reply packet's destination port (= our local port) in the hash input.
constexpr size_t local_port_bit_offset(Family f) {
    return f == Family::kV4 ? 80 : 272;
}

// The r x 16 matrix M_r of docs/rss-algebra.md: column j (j = 0 is the port's MSB) is the low r bits of
// the key window at (local port offset + j). H(tuple with port p) = H(tuple with port 0) XOR M·p,
// and the RETA index only sees the low r bits, M_r·p, the port's syndrome. M_r depends on the
// key, the family and r only — not on any address or the remote port.
class PortMatrix {
  public:
    PortMatrix(const ToeplitzKey& key, Family family, unsigned r_bits);  // r in [1, 16]

    Family family() const { return family_; }
    unsigned rows() const { return r_; }
    uint32_t row_mask() const { return (uint32_t{1} << r_) - 1; }
    uint32_t column32(unsigned j) const { return col32_[j]; }  // full 32-bit hash contribution
    uint32_t column(unsigned j) const { return col32_[j] & row_mask(); }
    uint32_t apply32(uint16_t port) const;  // M·p, 32 bits
    // M_r·p by linearity: two 256-entry tables (high and low byte of the port).
    uint32_t syndrome(uint16_t port) const { return syn_hi_[port >> 8] ^ syn_lo_[port & 0xff]; }
    unsigned rank() const { return rank_; }
    bool full_rank() const { return rank_ == r_; }
    // Canonical representative of t + column space: two RETA indices are reachable from the same
    // destination iff they reduce to the same value.
    uint32_t reduce(uint32_t t) const;

  private:
    Family family_;
    unsigned r_;
    unsigned rank_ = 0;
    std::array<uint32_t, 16> col32_{};
    std::array<uint32_t, 256> syn_hi_{};
    std::array<uint32_t, 256> syn_lo_{};
    std::vector<uint32_t> basis_;  // echelon basis of the column space, distinct leading bits
};

// Which queues a port choice can reach with this key and RETA.
struct Reachability {
    unsigned r = 0;
    unsigned rank = 0;
    size_t reachable_indices = 0;     // per destination: 2^rank of the 2^r RETA indices
    std::vector<uint32_t> always;     // queues reachable whatever the destination
    std::vector<uint32_t> sometimes;  // queues reachable from some destinations only
    std::vector<uint32_t> never;      // queues < reta.queue_count() with no RETA entry
};
Reachability analyze_reachability(const NicModel& model, Family family);
// Queues reachable for one destination, given H(reply tuple with local port 0).
std::vector<uint32_t> reachable_queues(const NicModel& model, const PortMatrix& m,
                                       uint32_t fixed_hash);

// ---------------------------------------------------------------------------------------------
// Reading the NIC (SIOCETHTOOL)

// ETH_RSS_HASH_* values as reported by ETHTOOL_GRSSH.
inline constexpr uint8_t kHashFuncToeplitz = 1;  // ETH_RSS_HASH_TOP

struct NicRssInfo {
    std::string ifname;
    uint32_t rx_rings = 0;  // ETHTOOL_GRXRINGS, 0 if unknown
    std::string rx_rings_error;

    bool has_rxfh = false;  // ETHTOOL_GRSSH answered
    int rxfh_errno = 0;
    std::vector<uint8_t> key;
    std::vector<uint32_t> reta;
    uint8_t hfunc = 0;  // bit set of ETH_RSS_HASH_*; Toeplitz = kHashFuncToeplitz

    // ETHTOOL_GRXFH bit sets (RXH_*) for TCP_V4_FLOW / TCP_V6_FLOW; nullopt if not reported.
    std::optional<uint64_t> tcp4_fields;
    std::optional<uint64_t> tcp6_fields;
    int rxfh_fields_errno = 0;

    bool hfunc_is_toeplitz() const { return hfunc == kHashFuncToeplitz; }
    static bool ports_hashed(uint64_t rxh_fields);  // RXH_L4_B_0_1 and RXH_L4_B_2_3 both set
    // A model from what the NIC reported; nullopt (with the reason in *why) if there is no usable
    // key or RETA (missing, key not 40..60 bytes, RETA size not a power of two in range).
    std::optional<NicModel> model(std::string* why = nullptr) const;
};

// Queries `ifname` through the ethtool ioctl. Throws std::system_error if the interface does not
// exist or no socket can be opened; a NIC without RSS (lo, veth) is *not* an error: has_rxfh is
// false and rxfh_errno is EOPNOTSUPP.
NicRssInfo query_nic(const std::string& ifname);
std::string describe_hash_fields(uint64_t rxh_fields);

// ---------------------------------------------------------------------------------------------
// Port allocation

struct PortRange {
    uint16_t lo = 32768;  // Linux default ephemeral range
    uint16_t hi = 60999;
    static std::optional<PortRange> parse(std::string_view text);  // "LO-HI", LO <= HI
    size_t size() const { return size_t{hi} - lo + 1; }
    bool contains(uint16_t p) const { return p >= lo && p <= hi; }
};

// Local ports of this network namespace's TCP sockets (any state) bound to `local` or to the
// wildcard address, from /proc/net/tcp{,6}: a snapshot to seed PortAllocator::Config::excluded.
std::vector<uint16_t> tcp_ports_in_use(const IpAddress& local);

// The ports of a range grouped by syndrome (CSR layout). Built in O(range + 2^r) with two table
// lookups per port and a counting sort; no port is hashed.
class SyndromeIndex {
  public:
    SyndromeIndex(const PortMatrix& m, PortRange range, std::span<const uint16_t> excluded = {});
    const PortMatrix& matrix() const { return matrix_; }
    PortRange range() const { return range_; }
    size_t port_count() const { return ports_.size(); }
    std::span<const uint16_t> ports(uint32_t syndrome) const {
        return {ports_.data() + start_[syndrome], ports_.data() + start_[syndrome + 1]};
    }

  private:
    PortMatrix matrix_;
    PortRange range_;
    std::vector<uint32_t> start_;
    std::vector<uint16_t> ports_;
};

// What one shard keeps for one (destination, queue): the syndromes whose ports send the reply
// traffic to the queue, i.e. {t XOR c_r : RETA[t] == queue} with c = H(reply tuple, port 0).
// Not shared between threads; the allocator it is used with is.
class Target {
  public:
    uint32_t queue() const { return queue_; }
    const IpAddress& remote() const { return remote_; }
    uint16_t remote_port() const { return remote_port_; }
    uint32_t fixed_hash() const { return fixed_hash_; }
    std::span<const uint32_t> syndromes() const { return syndromes_; }

  private:
    friend class PortAllocator;
    IpAddress remote_;
    uint16_t remote_port_ = 0;
    uint32_t queue_ = 0;
    uint32_t fixed_hash_ = 0;
    std::vector<uint32_t> syndromes_;
    size_t cursor_ = 0;
};

// One allocator per local address, shared by all shards. Each syndrome has its own lock-free
// free list (Treiber stack with a tag against ABA); there is no lock and no state shared by all
// syndromes, and for one destination the shards of different queues touch disjoint syndromes.
// A port is held by at most one caller at a time, whatever the destination.
class PortAllocator {
  public:
    struct Config {
        NicModel model;
        IpAddress local;
        PortRange range;                 // lo must be >= 1
        std::vector<uint16_t> excluded;  // ports in use or reserved; never handed out
        bool shuffle = true;             // random hand-out order within a syndrome
        uint64_t seed = 0;               // shuffle seed, 0 = random
    };
    explicit PortAllocator(Config config);  // O(range + 2^r); throws std::invalid_argument
    PortAllocator(const PortAllocator&) = delete;
    PortAllocator& operator=(const PortAllocator&) = delete;
    ~PortAllocator();

    // One hash of the reply tuple with local port 0, then |RETA entries of queue| XORs.
    // Throws std::invalid_argument for a remote of the wrong family.
    Target target(const IpAddress& remote, uint16_t remote_port, uint32_t queue) const;
    // The server moved: same cost as target(), reuses t's storage; free lists are untouched.
    void retarget(Target& t, const IpAddress& remote, uint16_t remote_port) const;

    // A free port whose reply traffic lands on t.queue(), now held by the caller; nullopt when the
    // queue's pool is exhausted. Amortised O(1): t remembers the last non-empty syndrome.
    std::optional<uint16_t> acquire(Target& t);
    // Returns a held port; false if the port is not held (or outside the range).
    bool release(uint16_t port);
    bool held(uint16_t port) const;

    // The queue's whole pool for t's destination (held or free, exclusions removed), by copying
    // the syndrome groups: no hashing. Appends to out.
    void pool(const Target& t, std::vector<uint16_t>& out) const;
    size_t pool_size(const Target& t) const;

    const SyndromeIndex& index() const { return index_; }
    const NicModel& model() const { return model_; }
    const IpAddress& local() const { return local_; }
    const ToeplitzHasher& hasher() const { return hasher_; }

  private:
    void compute(Target& t) const;
    void push(uint32_t syndrome, uint32_t slot);
    std::optional<uint32_t> pop(uint32_t syndrome);

    NicModel model_;
    IpAddress local_;
    ToeplitzHasher hasher_;
    SyndromeIndex index_;
    std::unique_ptr<std::atomic<uint64_t>[]> heads_;  // per syndrome: tag << 32 | (slot + 1)
    std::unique_ptr<std::atomic<uint32_t>[]> next_;   // per slot (port - range.lo): next slot + 1
    std::unique_ptr<std::atomic<uint8_t>[]> state_;   // per slot: kFree, kHeld, kExcluded
};

// A held port, returned to its allocator on destruction.
class PortLease {
  public:
    PortLease() = default;
    PortLease(PortAllocator& owner, uint16_t port) : owner_(&owner), port_(port) {}
    PortLease(PortLease&& o) noexcept;
    PortLease& operator=(PortLease&& o) noexcept;
    PortLease(const PortLease&) = delete;
    PortLease& operator=(const PortLease&) = delete;
    ~PortLease() { reset(); }

    uint16_t port() const { return port_; }
    explicit operator bool() const { return owner_ != nullptr; }
    void reset();

  private:
    PortAllocator* owner_ = nullptr;
    uint16_t port_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Connecting from an aligned port

enum class BindMethod : uint8_t {
    kLocalPortRange,  // IP_LOCAL_PORT_RANGE lo==hi + IP_BIND_ADDRESS_NO_PORT: kernel checks the
                      // 4-tuple at connect() without reserving the port at bind() (Linux >= 6.3)
    kReuseAddrBind,   // SO_REUSEADDR + bind(local, port) + connect() (HAProxy's way)
};
const char* to_string(BindMethod m);

struct ConnectOptions {
    int max_attempts = 16;                // ports tried before giving up
    bool nonblocking = false;             // return right after connect() (EINPROGRESS is fine)
    bool prefer_local_port_range = true;  // try kLocalPortRange first, fall back if unsupported
};

// An fd owned together with the lease of its local port: closing the socket returns the port.
class AlignedSocket {
  public:
    AlignedSocket() = default;
    AlignedSocket(int fd, PortLease lease, int attempts, BindMethod method)
        : fd_(fd), lease_(std::move(lease)), attempts_(attempts), method_(method) {}
    AlignedSocket(AlignedSocket&& o) noexcept;
    AlignedSocket& operator=(AlignedSocket&& o) noexcept;
    AlignedSocket(const AlignedSocket&) = delete;
    AlignedSocket& operator=(const AlignedSocket&) = delete;
    ~AlignedSocket() { close(); }

    int fd() const { return fd_; }
    uint16_t local_port() const { return lease_.port(); }
    int attempts() const { return attempts_; }  // ports tried, 1 = first one fitted
    BindMethod method() const { return method_; }
    void close();  // closes the fd, then returns the port

  private:
    int fd_ = -1;
    PortLease lease_;
    int attempts_ = 0;
    BindMethod method_ = BindMethod::kReuseAddrBind;
};

// Acquires ports for t from the allocator and connects from allocator.local():port to
// t.remote():t.remote_port(). A port whose 4-tuple is taken (EADDRINUSE / EADDRNOTAVAIL) is
// kept aside and the next one tried; the rejected ports are released before returning.
// Throws std::system_error on other errors or when the pool or the attempts run out.
AlignedSocket connect_aligned(PortAllocator& allocator, Target& t, const ConnectOptions& opt = {});

}  // namespace shunt::rss
