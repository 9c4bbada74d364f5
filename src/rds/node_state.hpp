#pragma once
// The runtime behind shunt/rds.hpp: what a node holds, shared by the I/O thread and the
// application threads calling Socket methods (socket.cpp). One mutex guards all of it, and no
// system call on a lane is made while it is held:
//   * an application thread's send() only queues the message on its lane and marks the lane
//     dirty (one short critical section; the I/O thread is woken through an eventfd only when
//     no flush is pending yet, so a burst of sends costs one wake-up);
//   * the I/O thread writes each dirty lane: it gathers the lane's frames into an OutBatch under
//     the lock, drops the lock for the sendmsg(), and takes it back to account for what went
//     out; reads likewise: recv() without the lock, parsing and delivery with it;
//   * Conn objects are destroyed only by the I/O thread (the graveyard, emptied between event
//     batches), so it may use one without the lock.
// The code is split by concept: credit.cpp (readiness, credit, acks), send.cpp (queueing and
// writing lanes), lane.cpp (lane lifecycle), events.cpp (frames and connection events),
// loop.cpp (the I/O thread), node.cpp (the Node API), socket.cpp (the Socket API).
//
// Objects (cf. the kernel's rds_sock / rds_connection / rds_conn_path):
//   SocketState  a bound socket: receive queue, send accounting, readiness eventfd
//   Peer         one remote host: its incarnation, the negotiated lane count, the lanes, the
//                per-pair sequences and lane placement, the receiver (reassembly, dedupe) and
//                the credit windows its sockets granted
//   Lane         one lane index: its LaneSender (survives reconnects), control frames owed, and
//                the current TCP connection, if any
//   Conn         one TCP connection: accepted ones wait for a HELLO before they join a lane
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/unique_fd.hpp"
#include "rds/credit_window.hpp"
#include "rds/frame_reader.hpp"
#include "rds/lane_ports.hpp"
#include "rds/lane_sender.hpp"
#include "rds/out_batch.hpp"
#include "rds/placement.hpp"
#include "rds/receiver.hpp"
#include "shunt/rds.hpp"

namespace shunt::rds {

using Clock = std::chrono::steady_clock;

// Output batching: frames are gathered up to this many bytes per write (one fragment's worth,
// so what a new frame may wait behind in a lane stays bounded by about one fragment).
inline constexpr size_t kWriteBatch = 64 << 10;
// Pongs waiting to be written on one lane, at most (a peer's pings beyond it are not answered).
inline constexpr size_t kMaxPongBytes = 1 << 20;
// Received bytes taken per recv(); a full buffer means more may be waiting: read again.
inline constexpr size_t kReadChunk = 256 << 10;
// Message buffers kept for reuse (no allocation per message in steady state), and the largest
// one worth keeping.
inline constexpr size_t kBufferPoolMax = 4096;
inline constexpr size_t kPooledBufferMax = 64 << 10;
// Unsent bytes the kernel may hold per lane (TCP_NOTSENT_LOWAT): bounds how long a new frame
// waits behind queued ones inside TCP, as fragmenting bounds it inside the lane.
inline constexpr int kNotSentLowat = 128 << 10;

struct SocketState {
    uint16_t port = 0;
    std::deque<Event> rxq;
    size_t rx_bytes = 0;  // payload bytes in rxq
    size_t tx_bytes = 0;  // payload bytes sent and not acked
    uint64_t next_id = 1;
    UniqueFd efd;
    bool signalled = false;  // efd holds a count
    std::condition_variable cv;
    bool nonblocking = false;
    std::chrono::milliseconds timeout{0};
    bool blocked = false;  // the last send was refused (EAGAIN/ENOBUFS) or is waiting for room
    Endpoint blocked_dest;
    size_t blocked_size = 0;
    bool closed = false;
    // (peer ip, receiver's pair key) told a window below half the buffer: owed an update.
    std::set<std::pair<uint32_t, PairKey>> starved;
};

struct Peer;

struct Conn {
    enum class State { Pending, Connecting, HelloWait, Up };
    State state = State::Pending;
    bool outgoing = false;
    LanePorts::Opened sock;  // outgoing: fd (+ lease); incoming: sock.fd
    uint32_t remote_ip = 0;
    uint16_t local_port = 0, remote_port = 0;
    int queue = -1, peer_queue = -1;
    Peer* peer = nullptr;  // set once the HELLO places it
    int lane = -1;
    FrameReader reader;
    std::vector<uint8_t> out;  // bytes to write before any frame (our HELLO), from out_off
    size_t out_off = 0;
    OutBatch batch;            // frames being written (I/O thread only)
    bool want_out = false;     // EPOLLOUT registered: the kernel took only part of the batch
    bool dead = false;
    bool read_eof = false;
    // Receiver pairs whose window update went out on this connection. Nothing repeats an update
    // the peer never read (unlike an ack, no retransmission brings it back), so if the
    // connection fails they are owed again (lane_failed).
    std::set<PairKey> window_updates;
    int fd() const { return sock.get(); }
};

struct ControlFrame {
    Frame frame;
    std::vector<uint8_t> payload;
    std::vector<uint8_t> raw;  // if not empty: bytes written as they are instead (test injection)
};

struct Lane {
    uint16_t index = 0;
    std::unique_ptr<Conn> conn;
    LaneSender sender;
    std::deque<ControlFrame> control;  // acks, unreachable reports, pings: ahead of data
    bool dirty = false;                // listed in NodeState::dirty: has frames to write
    size_t pong_bytes = 0;             // pongs in `control` (bounded by kMaxPongBytes)
    bool fault = false;                // test hook: the next frame received throws
    bool retry_pending = false;
    Clock::time_point retry_at{};
    std::chrono::milliseconds backoff{0};
    LaneInfo stats;
};

struct Peer {
    Peer(uint32_t peer_ip, uint16_t lane_count, PlacementPolicy policy)
        : ip(peer_ip), placement(policy, peer_ip, lane_count) {}
    uint32_t ip;
    uint64_t incarnation = 0;  // 0 until a HELLO told it
    uint16_t peer_lanes = 0;   // the count its HELLO announced
    uint16_t nlanes = 0;       // negotiated: min(ours, theirs); 0 = not yet
    bool opened_first = false; // we opened lane 0 at first contact: we open the others
    std::vector<Lane> lanes;   // our configured count; [0, nlanes) in use
    LanePlacement placement;
    std::map<PairKey, uint64_t> next_seq;  // per sending pair
    std::deque<Message> prequeue;          // sent before the lane count was known
    Receiver receiver;
    std::map<uint16_t, Credit> credit;     // per destination port
    std::map<uint16_t, uint64_t> window_seq;  // per local receiving port: last number sent
    std::vector<std::pair<PairKey, uint16_t>> ack_due;  // receiver pair keys, lane to ack on
    std::deque<ControlFrame> pre_control;  // pings before the lane count was known
    PeerInfo stats;
};

struct NodeState {
    NodeOptions opt;
    uint32_t ip = 0;
    uint64_t incarnation = 0;
    PlacementPolicy policy = PlacementPolicy::LeastLoaded;

    mutable std::mutex mu;
    using Lock = std::unique_lock<std::mutex>;
    std::map<uint16_t, std::shared_ptr<SocketState>> sockets;
    std::map<uint32_t, std::unique_ptr<Peer>> peers;
    std::vector<std::unique_ptr<Conn>> pending;    // accepted, waiting for HELLO
    std::vector<std::unique_ptr<Conn>> graveyard;  // closed; freed after the event batch
    UniqueFd listen_fd, epfd, wake_fd, info_fd;
    std::string info_path;
    std::unique_ptr<LanePorts> ports;
    std::thread io;
    bool closing = false;
    bool stopped = false;
    Clock::time_point close_deadline{};
    uint16_t next_ephemeral = 49152;
    std::vector<uint8_t> rbuf;
    std::thread::id io_id;               // the I/O thread
    bool flush_requested = false;        // the I/O thread will write the dirty lanes soon
    std::vector<std::pair<Peer*, uint16_t>> dirty, dirty_work;  // lanes with frames to write
    bool close_requested = false;        // Node::close() asked the I/O thread to shut down
    std::chrono::milliseconds close_linger{0};
    std::vector<std::shared_ptr<std::vector<uint8_t>>> buffers;     // message buffers to reuse
    std::vector<std::shared_ptr<const std::vector<uint8_t>>> freed_buffers;  // scratch for on_ack

    // node.cpp — all with mu held
    void run();
    void log(const std::string& line) const;
    Peer& peer_for(uint32_t peer_ip);
    void wake();
    // Marks the lane as having frames to write; the I/O thread writes it (write_lanes).
    void flush(Peer& p, Lane& l);
    void flush_all(Peer& p);
    // A buffer for a message payload, from the pool if one is free.
    std::shared_ptr<std::vector<uint8_t>> take_buffer(size_t size);
    void ensure_lanes(Peer& p);
    void schedule(Peer& p, Lane& l, bool now);
    void lane_failed(Peer& p, Lane& l, const std::string& why, bool error);
    void queue_control(Peer& p, int lane, ControlFrame c);
    void send_window_updates(Peer& p);
    size_t window_of(uint16_t port) const;
    void enqueue(Peer& p, Message m);
    void notify(SocketState& s);
    // Notifies the sockets waiting for room at `dest` (a socket of this node that made room).
    void wake_senders_to(const Endpoint& dest);
    void fail_to_sender(Message& m, uint32_t peer_ip, int error);
    bool can_send(SocketState& s, const Endpoint& to, size_t size);
    NodeInfo snapshot() const;  // info.cpp
    void flush_acks(Peer& p);

private:
    void on_accept();
    void on_info();
    void on_event(Conn* c, uint32_t events, Lock& lk);
    void on_connected(Conn* c);
    void on_readable(Conn* c, Lock& lk);
    void on_frame(Conn* c, const Frame& f, std::span<const uint8_t> payload);
    void on_hello(Conn* c, const Hello& h);
    // Takes the incarnation and lane count a HELLO announces; false (lane closed) if the count
    // contradicts what the peer said before.
    bool adopt_hello(Peer& p, Conn* c, const Hello& h);
    void on_data(Conn* c, Peer& p, const Frame& f, std::span<const uint8_t> payload);
    void on_ack(Conn* c, Peer& p, const Frame& f);
    void protocol_error(Conn* c, const std::string& why);
    void close_conn(Conn* c);
    void peer_restarted(Peer& p, uint64_t incarnation);
    void negotiated(Peer& p, uint16_t peer_lanes);
    void start_up(Peer& p, Lane& l);
    void open_lane(Peer& p, Lane& l);
    void run_timers();
    int next_timeout_ms() const;
    void set_events(Conn* c);
    void write_out(Conn* c);
    // I/O thread: writes every dirty lane; write_lane drops `lk` around each sendmsg().
    void write_lanes(Lock& lk);
    void write_lane(Peer& p, Lane& l, Lock& lk);
    void gather(Lane& l, Conn& c);
    void recycle();
    // I/O thread, on Node::close(): the acks owed go out, then every lane is half-closed.
    void begin_close(Lock& lk);
    // An exception escaped a handler on the I/O thread: the lane it came from (if any) is
    // closed with a logged error; the node carries on.
    void on_exception(Conn* c, const char* where, const std::exception& e);
    // Runs `f`, turning an exception into on_exception(c, ...).
    template <class F>
    void guarded(Conn* c, const char* where, F&& f) {
        try {
            f();
        } catch (const std::exception& e) {
            on_exception(c, where, e);
        }
    }
};

// info.cpp: where a node publishes its state for `shunt rds info` (a UNIX socket per node,
// named by address and network namespace, in <rundir>/rds/), and the listener for it.
std::string publish_path(const std::string& dir, const std::string& ip, uint16_t lane_port);
UniqueFd listen_info(const std::string& path);
std::string publish_dir(const std::string& dir);
uint64_t netns_id();

}  // namespace shunt::rds
