#pragma once
// The source port of each lane a node opens (docs/rss-algebra.md). When the
// interface toward the peer exposes its RSS model (Toeplitz key + RETA), lane i gets a port from
// the rss allocator whose *reply* traffic lands on RX queue i mod Q, so N <= Q lanes are served
// by N distinct queues (and so CPUs). Without a model (veth, lo) ports come from the configured
// range in turn, or from the kernel; `describe()` says which, for `shunt rds info`. A range also
// lets a testbed shape each lane as its own flow (rds-testbed.sh --cap --ports).
// The same source port also decides which RX queue of the *peer's* NIC takes the lane (the
// forward tuple is hashed there). When the peer's model is known (configured: peers are often
// the same machine type), lane i's port must also send the forward tuple to peer queue i mod Q':
// the allocator's pool for the local queue (no hashing) is filtered with one hash per port.
#include <cstdint>
#include <optional>
#include <string>

#include "core/unique_fd.hpp"
#include "shunt/rss.hpp"

namespace shunt::rds {

class LanePorts {
public:
    struct Config {
        rss::IpAddress local;
        std::optional<rss::PortRange> range;  // nullopt: the kernel picks (unless a model is set)
        std::optional<rss::NicModel> model;   // the peer-facing NIC's RSS model, if visible
        std::string model_source;             // where the model came from (for describe())
        std::optional<rss::NicModel> peer_model;  // the peers' NIC model, if known
    };
    explicit LanePorts(Config config);

    // A started (non-blocking) connection for lane `lane` to remote:remote_port. Throws
    // std::system_error when no port can be bound.
    struct Opened {
        UniqueFd fd;                // without a model
        rss::AlignedSocket aligned; // with one: the fd and the lease of its port, returned on close
        uint16_t port = 0;
        int queue = -1;       // the RX queue the reply traffic lands on, -1 if not known
        int peer_queue = -1;  // the peer's RX queue for the lane's forward traffic, -1 if not known
        int get() const { return fd ? fd.get() : aligned.fd(); }
    };
    Opened open(const rss::IpAddress& remote, uint16_t remote_port, uint16_t lane);

    bool rss_aligned() const { return allocator_ != nullptr; }
    uint32_t queues() const { return allocator_ ? allocator_->model().reta.queue_count() : 0; }
    std::string describe() const;

private:
    // Tries the candidate ports in turn (bind + non-blocking connect); nullopt if none fits.
    std::optional<Opened> open_from(const std::vector<uint16_t>& ports, const rss::IpAddress& remote,
                                    uint16_t remote_port);
    int peer_queue_of(uint16_t port, const rss::IpAddress& remote, uint16_t remote_port) const;

    Config config_;
    std::unique_ptr<rss::ToeplitzHasher> peer_hasher_;
    std::unique_ptr<rss::PortAllocator> allocator_;
    uint32_t cursor_ = 0;  // next port of the range to try, without a model
};

// The RSS model of the interface that owns `local`, with the reason when there is none.
std::optional<rss::NicModel> nic_model_for(const rss::IpAddress& local, const std::string& ifname,
                                           std::string* source);

}  // namespace shunt::rds
