#pragma once
// shunt::rds — reliable datagrams between hosts over N TCP lanes per peer (multipath RDS).
//
// A Node is one host's endpoint, as the kernel's RDS/TCP module is: it listens for lanes on one
// TCP port (16385, RDS_TCP_PORT, by default), and opens N lanes to each peer host it talks to.
// Sockets are bound to (the node's IP, a port) and send whole messages of up to 1 MiB to
// (IP, port); the peer's socket receives them whole, with the sender's address, in the order
// each sending socket sent them. Unlike the kernel (docs/rds-protocol.md):
//   * a message is freed only when the peer acks it *after* queueing it to the receiving socket;
//     lane failures are repaired by reconnecting and retransmitting what is unacked;
//   * a peer restart fails the unacked messages explicitly: recv() returns one SendFailed event
//     per message, naming the id send() returned; so does a send to an unbound port;
//   * each destination socket grants credit (its free receive buffer): send() returns ENOBUFS
//     when it is used up, instead of a host-wide congestion bitmap;
//   * a big message is cut into 64 KiB fragments that take turns with other sockets' messages.
// Thread safety: Node and Socket methods may be called from any thread.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace shunt::rds {

inline constexpr uint16_t kDefaultLanePort = 16385;  // RDS_TCP_PORT
inline constexpr size_t kMaxMessageSize = 1 << 20;

// An IPv4 address and an rds port (not a TCP port).
struct Endpoint {
    uint32_t ip = 0;  // host byte order
    uint16_t port = 0;
    static std::optional<Endpoint> parse(std::string_view ip_port);       // "10.0.0.1:4001"
    static std::optional<Endpoint> parse(std::string_view ip, uint16_t port);
    std::string ip_string() const;
    std::string to_string() const;
    auto operator<=>(const Endpoint&) const = default;
};

struct NodeOptions {
    std::string ip;                       // local IPv4 address: lanes and sockets bind it
    uint16_t lane_port = kDefaultLanePort;  // TCP port lanes are accepted on (same on every node)
    uint16_t lanes = 8;                   // lanes per peer, 1..255 (the peer's count, if lower, wins)
    bool hash_placement = false;          // socket->lane by hash(src port, dst ip, dst port)
                                          // instead of least-loaded on first send
    std::string lane_ports;               // "LO-HI": source ports of lanes this node opens
    std::string nic;                      // interface for the RSS model ("" = the one owning ip)
    uint32_t peer_queues = 0;             // the peers' NICs use the default RSS model (Microsoft
                                          // key, 128-entry RETA i % Q) with Q queues; 0 = unknown
    size_t sndbuf = 16 << 20;             // per socket: bytes sent and not acked
    size_t rcvbuf = 16 << 20;             // per socket: bytes queued to recv(); its credit
    std::chrono::milliseconds reconnect_min{10}, reconnect_max{1000};
    bool listen = true;                   // accept lanes (false: a client-only node, e.g. rds ping)
    std::string state_dir;                // where `shunt rds info` finds the node: "" = the
                                          // shunt rundir, "-" = do not publish
    std::function<void(std::string_view)> log;  // lane errors and events; default: stderr
};

struct Event {
    enum class Type {
        Message,     // a message from `peer`
        SendFailed,  // message `id`, sent by this socket to `peer`, was not delivered
    };
    Type type = Type::Message;
    Endpoint peer;
    std::shared_ptr<const std::vector<uint8_t>> payload;  // Message
    uint64_t id = 0;                                       // SendFailed
    int error = 0;  // SendFailed: ECONNRESET (peer restarted), ECONNREFUSED (no socket bound)
    std::span<const uint8_t> data() const {
        return payload ? std::span<const uint8_t>(*payload) : std::span<const uint8_t>{};
    }
};

class Node;
struct NodeState;
struct SocketState;

class Socket {
public:
    ~Socket();
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;

    Endpoint local() const;
    // Queues `data` (<= 1 MiB) for `to`; *id receives the message id. Returns 0, or EMSGSIZE,
    // EAGAIN (this socket's send buffer is full), ENOBUFS (the destination's credit is used up),
    // EINVAL (bad destination) — blocking sockets wait instead of EAGAIN/ENOBUFS, up to
    // `timeout` (then ETIMEDOUT). Sending to port 0 of a host pings it: the reply is a Message
    // from port 0 carrying the same payload.
    int send(const Endpoint& to, std::span<const uint8_t> data, uint64_t* id = nullptr);
    // The next event. Returns 0, or EAGAIN (non-blocking, nothing queued) / ETIMEDOUT.
    int recv(Event& out);
    void set_nonblocking(bool on);
    void set_timeout(std::chrono::milliseconds t);  // 0 = wait forever (blocking mode)
    // Readable (POLLIN) when recv() has an event, or when a send that failed with EAGAIN or
    // ENOBUFS could now succeed. Owned by the socket.
    int fd() const;

private:
    friend class Node;
    Socket(std::shared_ptr<NodeState> node, std::shared_ptr<SocketState> s);
    std::shared_ptr<NodeState> node_;
    std::shared_ptr<SocketState> s_;
};

struct LaneInfo {
    uint16_t index = 0;
    std::string state;  // down, connecting, hello, up
    bool opened_here = false;
    uint16_t local_port = 0, remote_port = 0;
    int rx_queue = -1;       // our RX queue for the lane's incoming traffic, -1 if unknown
    int peer_rx_queue = -1;  // the peer's, for traffic we send, -1 if unknown
    uint64_t tx_frames = 0, rx_frames = 0, tx_bytes = 0, rx_bytes = 0;
    uint64_t retransmits = 0;   // messages sent again after this lane's connection failed
    uint64_t connects = 0;      // connections that reached "up"
    uint64_t failures = 0;      // connections lost (errors, resets, malformed frames)
    size_t unacked = 0;         // messages waiting for an ack
    size_t queued_bytes = 0;
    size_t pairs = 0;           // socket pairs placed on the lane with unacked messages
    size_t control_bytes = 0;   // control frames (acks, pongs, ...) waiting to be written
};
struct PeerInfo {
    std::string ip;
    uint64_t incarnation = 0;  // 0 until its HELLO arrived
    uint16_t lanes = 0;        // negotiated (0 = not yet)
    uint64_t restarts = 0;     // new incarnations seen
    uint64_t failed = 0;       // messages failed back to senders
    uint64_t duplicates = 0;   // retransmitted messages dropped as already delivered
    uint64_t unreachable = 0;  // messages to unbound ports (either way)
    uint64_t pings_dropped = 0;  // pings left unanswered: too many pongs already waiting
    std::vector<LaneInfo> lane;
};
struct NodeInfo {
    std::string ip;
    uint16_t lane_port = 0;
    uint64_t incarnation = 0;
    uint16_t lanes = 0;
    std::string placement;
    std::string lane_ports;  // how lane source ports are chosen (RSS model or why not)
    std::vector<uint16_t> sockets;
    std::vector<PeerInfo> peers;
};
std::string to_json(const NodeInfo& info);

class Node {
public:
    // Binds the lane listener and starts the I/O thread. Throws std::system_error.
    static std::unique_ptr<Node> start(NodeOptions options);
    // Graceful: stops reading, sends the acks owed, closes the lanes (see close()).
    ~Node();
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    // A socket bound to (ip, port); port 0 picks a free one. Throws std::system_error
    // (EADDRINUSE).
    std::unique_ptr<Socket> bind(uint16_t port);
    NodeInfo info() const;
    uint64_t incarnation() const;
    // Kills a lane's TCP connection to `peer_ip` as if the network had (RDS_CONN_RESET); lane
    // -1 = a random up lane. False if there was none. The lane reconnects and retransmits.
    bool reset_lane(uint32_t peer_ip, int lane = -1);
    // Test hook: writes raw bytes onto lane `lane`'s connection to `peer_ip`, as if the
    // peer's sender had (for malformed-frame tests). False if that lane is not up.
    bool inject(uint32_t peer_ip, uint16_t lane, std::span<const uint8_t> bytes);
    // Test hook: the next frame received on lane `lane` from `peer_ip` throws inside the I/O
    // thread (as a bug would); the node must close that lane with a logged error and go on.
    bool fault(uint32_t peer_ip, uint16_t lane);
    // Stops taking new frames, flushes the acks owed, shuts the lanes down and waits (up to
    // `linger`) for the peers to close them, then stops the I/O thread. Sockets stay readable.
    void close(std::chrono::milliseconds linger = std::chrono::milliseconds(500));

private:
    explicit Node(std::shared_ptr<NodeState> s);
    std::shared_ptr<NodeState> s_;
};

}  // namespace shunt::rds
