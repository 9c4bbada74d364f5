// Two rds nodes in one process, on 127.0.0.1 and 127.0.0.2 (both loopback, so two hosts as far
// as addresses go): delivery, order and content per pair, lane spreading, lane resets, a peer
// restart with exact failure reports, unbound ports, malformed frames on one lane, credits.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "core/unique_fd.hpp"
#include "rds/frame.hpp"
#include "shunt/rds.hpp"

namespace shunt::rds {
namespace {

using namespace std::chrono_literals;

uint16_t free_port() {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    socklen_t len = sizeof sa;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    return ntohs(sa.sin_port);
}

struct Logs {
    std::mutex mu;
    std::vector<std::string> lines;
    std::function<void(std::string_view)> sink() {
        return [this](std::string_view l) {
            std::lock_guard lk(mu);
            lines.emplace_back(l);
        };
    }
    bool contains(const std::string& needle) {
        std::lock_guard lk(mu);
        for (const auto& l : lines)
            if (l.find(needle) != std::string::npos) return true;
        return false;
    }
};

NodeOptions options(const char* ip, uint16_t port, uint16_t lanes, Logs& logs) {
    NodeOptions o;
    o.ip = ip;
    o.lane_port = port;
    o.lanes = lanes;
    o.state_dir.assign(1, '-');  // not = "-": GCC 12 at -O3 reports a false -Wrestrict for that
    o.log = logs.sink();
    return o;
}

// Payload: pair-local index (8 bytes) then bytes derived from it, so content is checkable.
std::vector<uint8_t> payload(uint64_t index, size_t size) {
    std::vector<uint8_t> v(std::max<size_t>(size, 8));
    for (int i = 0; i < 8; ++i) v[static_cast<size_t>(i)] = static_cast<uint8_t>(index >> (8 * i));
    for (size_t i = 8; i < v.size(); ++i) v[i] = static_cast<uint8_t>(index * 131 + i * 7);
    return v;
}
uint64_t index_of(std::span<const uint8_t> d) {
    uint64_t x = 0;
    for (int i = 0; i < 8; ++i) x |= uint64_t{d[static_cast<size_t>(i)]} << (8 * i);
    return x;
}
bool intact(std::span<const uint8_t> d) {
    const uint64_t idx = index_of(d);
    for (size_t i = 8; i < d.size(); ++i)
        if (d[i] != static_cast<uint8_t>(idx * 131 + i * 7)) return false;
    return true;
}

const Endpoint kB1 = *Endpoint::parse("127.0.0.2", 0);

// Receives until `want` messages arrived on every socket (or a timeout); checks order per
// sending port and content; returns the indices seen per (receiving socket, sending port).
struct Sink {
    std::map<std::pair<uint16_t, uint16_t>, std::vector<uint64_t>> seen;
    bool bad = false;
    void drain(std::vector<std::unique_ptr<Socket>>& socks, size_t total, std::chrono::seconds limit) {
        const auto end = std::chrono::steady_clock::now() + limit;
        size_t got = 0;
        for (auto& s : socks) s->set_timeout(20ms);
        while (got < total && std::chrono::steady_clock::now() < end) {
            for (auto& s : socks) {
                Event e;
                while (s->recv(e) == 0) {
                    if (e.type != Event::Type::Message) continue;
                    if (!intact(e.data())) bad = true;
                    seen[{s->local().port, e.peer.port}].push_back(index_of(e.data()));
                    ++got;
                }
            }
        }
    }
};

TEST(RdsNode, MessagesArriveWholeInOrderPerPairOverEightLanes) {
    Logs la, lb;
    const uint16_t port = free_port();
    auto a = Node::start(options("127.0.0.1", port, 8, la));
    auto b = Node::start(options("127.0.0.2", port, 8, lb));
    std::vector<std::unique_ptr<Socket>> tx, rx;
    for (uint16_t i = 0; i < 16; ++i) {
        tx.push_back(a->bind(static_cast<uint16_t>(5000 + i)));
        rx.push_back(b->bind(static_cast<uint16_t>(6000 + i)));
    }
    std::mt19937 rng(1);
    constexpr int kPerSocket = 60;
    size_t bytes = 0;
    for (int k = 0; k < kPerSocket; ++k)
        for (uint16_t i = 0; i < 16; ++i) {
            // log-uniform sizes 1 B .. 256 KiB
            const size_t size = static_cast<size_t>(std::exp2(std::uniform_real_distribution<double>(0, 18)(rng)));
            bytes += size;
            ASSERT_EQ(tx[i]->send({kB1.ip, static_cast<uint16_t>(6000 + (i + k) % 16)}, payload(static_cast<uint64_t>(k), size)), 0);
        }
    Sink sink;
    sink.drain(rx, 16 * kPerSocket, 30s);
    EXPECT_FALSE(sink.bad) << "corrupted payload";
    size_t total = 0;
    for (auto& [key, idx] : sink.seen) {
        total += idx.size();
        EXPECT_TRUE(std::is_sorted(idx.begin(), idx.end())) << "pair " << key.second << "->" << key.first;
        EXPECT_EQ(std::set<uint64_t>(idx.begin(), idx.end()).size(), idx.size()) << "duplicates";
    }
    EXPECT_EQ(total, 16u * kPerSocket);
    // The 16 sending sockets spread over all 8 lanes, and everything was acked.
    std::this_thread::sleep_for(100ms);
    NodeInfo info = a->info();
    ASSERT_EQ(info.peers.size(), 1u);
    ASSERT_EQ(info.peers[0].lane.size(), 8u);
    for (const LaneInfo& l : info.peers[0].lane) {
        EXPECT_EQ(l.state, "up");
        EXPECT_GT(l.tx_bytes, 0u) << "lane " << l.index << " carried nothing";
        EXPECT_EQ(l.unacked, 0u);
    }
    EXPECT_TRUE(info.peers[0].lane[0].opened_here);
    EXPECT_FALSE(b->info().peers[0].lane[0].opened_here);
}

TEST(RdsNode, ErrorsPingAndUnboundPorts) {
    Logs la, lb;
    const uint16_t port = free_port();
    auto a = Node::start(options("127.0.0.1", port, 3, la));
    auto b = Node::start(options("127.0.0.2", port, 2, lb));
    auto s = a->bind(7000);
    EXPECT_THROW(a->bind(7000), std::system_error);
    std::vector<uint8_t> big(kMaxMessageSize + 1);
    EXPECT_EQ(s->send({kB1.ip, 1}, big), EMSGSIZE);
    EXPECT_EQ(s->send({kB1.ip, 1}, std::span(big).first(kMaxMessageSize)), 0) << "1 MiB is allowed";
    // Ping: port 0 of a host answers with the same payload, from port 0.
    const std::vector<uint8_t> hi{'h', 'i'};
    ASSERT_EQ(s->send({kB1.ip, 0}, hi), 0);
    s->set_timeout(5000ms);
    std::vector<Event> got;
    for (int i = 0; i < 2; ++i) {
        Event e;
        ASSERT_EQ(s->recv(e), 0);
        got.push_back(std::move(e));
    }
    // One SendFailed (port 1 is not bound on b) and one pong, in whichever order.
    bool pong = false, refused = false;
    for (const Event& e : got) {
        if (e.type == Event::Type::Message) {
            pong = e.peer.port == 0 && std::vector<uint8_t>(e.data().begin(), e.data().end()) == hi;
        } else {
            refused = e.error == ECONNREFUSED && e.id == 1 && e.peer.port == 1;
        }
    }
    EXPECT_TRUE(pong);
    EXPECT_TRUE(refused);
    EXPECT_EQ(a->info().peers[0].lanes, 2) << "the lower lane count wins";
}

TEST(RdsNode, LaneResetsLoseAndDuplicateNothing) {
    Logs la, lb;
    const uint16_t port = free_port();
    auto a = Node::start(options("127.0.0.1", port, 4, la));
    auto b = Node::start(options("127.0.0.2", port, 4, lb));
    std::vector<std::unique_ptr<Socket>> tx, rx;
    for (uint16_t i = 0; i < 4; ++i) {
        tx.push_back(a->bind(static_cast<uint16_t>(5000 + i)));
        rx.push_back(b->bind(static_cast<uint16_t>(6000 + i)));
    }
    std::atomic<bool> done{false};
    std::thread resetter([&] {
        std::mt19937 rng(7);
        while (!done) {
            std::this_thread::sleep_for(5ms);
            if (rng() % 2) a->reset_lane(kB1.ip);
            else b->reset_lane(0x7f000001);
        }
    });
    constexpr int kPerSocket = 400;
    std::thread sender([&] {
        for (int k = 0; k < kPerSocket; ++k)
            for (uint16_t i = 0; i < 4; ++i)
                ASSERT_EQ(tx[i]->send({kB1.ip, static_cast<uint16_t>(6000 + i)}, payload(static_cast<uint64_t>(k), 1000 + (k % 7) * 20000)), 0);
    });
    Sink sink;
    sink.drain(rx, 4 * kPerSocket, 60s);
    done = true;
    sender.join();
    resetter.join();
    EXPECT_FALSE(sink.bad);
    for (uint16_t i = 0; i < 4; ++i) {
        const auto& idx = sink.seen[{static_cast<uint16_t>(6000 + i), static_cast<uint16_t>(5000 + i)}];
        ASSERT_EQ(idx.size(), static_cast<size_t>(kPerSocket)) << "socket " << i;
        for (int k = 0; k < kPerSocket; ++k) ASSERT_EQ(idx[static_cast<size_t>(k)], static_cast<uint64_t>(k));
    }
    uint64_t failures = 0;
    const NodeInfo info = a->info();
    for (const LaneInfo& l : info.peers[0].lane) failures += l.failures;
    EXPECT_GT(failures, 3u) << "the resets did happen";
}

TEST(RdsNode, PeerRestartFailsExactlyTheUndeliveredMessages) {
    Logs la, lb;
    const uint16_t port = free_port();
    auto a = Node::start(options("127.0.0.1", port, 4, la));
    auto b = Node::start(options("127.0.0.2", port, 4, lb));
    auto tx = a->bind(5000);
    std::vector<std::unique_ptr<Socket>> rx;
    rx.push_back(b->bind(6000));
    constexpr uint64_t kCount = 3000;
    std::set<uint64_t> delivered, failed;
    std::map<uint64_t, uint64_t> index_of_id;
    std::thread sender([&] {
        for (uint64_t k = 0; k < kCount; ++k) {
            uint64_t id = 0;
            ASSERT_EQ(tx->send({kB1.ip, 6000}, payload(k, 3000), &id), 0);
            index_of_id[id] = k;
            if (k % 500 == 0) std::this_thread::sleep_for(5ms);
        }
    });
    // Take some, then restart b: close it (its sockets keep what was queued), start a new one.
    rx[0]->set_timeout(10s);
    for (int i = 0; i < 500; ++i) {
        Event e;
        ASSERT_EQ(rx[0]->recv(e), 0);
        delivered.insert(index_of(e.data()));
    }
    b->close();
    rx[0]->set_timeout(1ms);
    for (Event e; rx[0]->recv(e) == 0;) delivered.insert(index_of(e.data()));
    rx.clear();
    b.reset();
    b = Node::start(options("127.0.0.2", port, 4, lb));
    rx.push_back(b->bind(6000));
    sender.join();
    // Everything the sender is told about, and everything the new b gets, until all is counted.
    tx->set_timeout(20ms);
    rx[0]->set_timeout(20ms);
    const auto end = std::chrono::steady_clock::now() + 30s;
    while (delivered.size() + failed.size() < kCount && std::chrono::steady_clock::now() < end) {
        Event e;
        while (tx->recv(e) == 0) {
            ASSERT_EQ(e.type, Event::Type::SendFailed);
            EXPECT_EQ(e.error, ECONNRESET);
            EXPECT_TRUE(failed.insert(index_of_id.at(e.id)).second) << "reported twice";
        }
        while (rx[0]->recv(e) == 0) EXPECT_TRUE(delivered.insert(index_of(e.data())).second) << "delivered twice";
    }
    for (uint64_t k : failed) EXPECT_FALSE(delivered.count(k)) << k << " both delivered and failed";
    EXPECT_EQ(delivered.size() + failed.size(), kCount);
    EXPECT_GT(failed.size(), 0u) << "the restart happened with messages in flight";
    EXPECT_TRUE(la.contains("restarted"));
    EXPECT_EQ(a->info().peers[0].restarts, 1u);
}

TEST(RdsNode, MalformedFramesCloseOnlyThatLaneWithALoggedError) {
    Logs la, lb;
    const uint16_t port = free_port();
    auto a = Node::start(options("127.0.0.1", port, 4, la));
    auto b = Node::start(options("127.0.0.2", port, 4, lb));
    std::vector<std::unique_ptr<Socket>> tx, rx;
    for (uint16_t i = 0; i < 8; ++i) {
        tx.push_back(a->bind(static_cast<uint16_t>(5000 + i)));
        rx.push_back(b->bind(static_cast<uint16_t>(6000 + i)));
    }
    constexpr int kPerSocket = 200;
    std::thread sender([&] {
        for (int k = 0; k < kPerSocket; ++k) {
            for (uint16_t i = 0; i < 8; ++i)
                ASSERT_EQ(tx[i]->send({kB1.ip, static_cast<uint16_t>(6000 + i)}, payload(static_cast<uint64_t>(k), 5000)), 0);
            if (k == kPerSocket / 2) {
                // A header with an unknown extension type, on lane 2, between whole frames.
                std::array<uint8_t, kHeaderLen> bad{};
                bad[32] = 0x81;
                bad[33] = 1;
                bad[34] = 0x42;
                while (!a->inject(kB1.ip, 2, bad)) std::this_thread::sleep_for(1ms);
            }
        }
    });
    Sink sink;
    sink.drain(rx, 8 * kPerSocket, 30s);
    sender.join();
    EXPECT_FALSE(sink.bad);
    for (uint16_t i = 0; i < 8; ++i) {
        const auto& idx = sink.seen[{static_cast<uint16_t>(6000 + i), static_cast<uint16_t>(5000 + i)}];
        ASSERT_EQ(idx.size(), static_cast<size_t>(kPerSocket));
        for (int k = 0; k < kPerSocket; ++k) ASSERT_EQ(idx[static_cast<size_t>(k)], static_cast<uint64_t>(k));
    }
    EXPECT_TRUE(lb.contains("error: lane 2 with 127.0.0.1 closed: malformed frame: unknown extension header"));
    NodeInfo info = b->info();
    for (const LaneInfo& l : info.peers[0].lane) EXPECT_EQ(l.failures, l.index == 2 ? 1u : 0u) << "lane " << l.index;
}

// Frames that decode but break the protocol are handled like malformed ones: a sequence gap, an
// ack for a pair the receiver never sent on, a second HELLO, and a header without a kind, one
// per lane, each close only their lane with a logged error; every message still arrives once,
// in order, intact.
TEST(RdsNode, ProtocolViolationsCloseTheirLaneAndNothingElse) {
    Logs la, lb;
    const uint16_t port = free_port();
    auto a = Node::start(options("127.0.0.1", port, 4, la));
    auto b = Node::start(options("127.0.0.2", port, 4, lb));
    std::vector<std::unique_ptr<Socket>> tx, rx;
    for (uint16_t i = 0; i < 8; ++i) {
        tx.push_back(a->bind(static_cast<uint16_t>(5000 + i)));
        rx.push_back(b->bind(static_cast<uint16_t>(6000 + i)));
    }
    auto bytes_of = [](const Frame& f, std::vector<uint8_t> payload = {}) {
        auto h = encode_header(f);
        // Sized once and copied into: GCC 12 at -O3 reports a false -Warray-bounds for an
        // insert() that grows the vector.
        std::vector<uint8_t> v(h.size() + payload.size());
        std::copy(h.begin(), h.end(), v.begin());
        std::copy(payload.begin(), payload.end(), v.begin() + static_cast<std::ptrdiff_t>(h.size()));
        return v;
    };
    Frame gap;
    gap.kind = Kind::Data;
    gap.sequence = 1000000;
    gap.sport = 5000;
    gap.dport = 6000;
    gap.len = gap.msg_len = 1;
    Frame ack;
    ack.kind = Kind::Ack;
    ack.ack = 3;
    ack.sport = 5999;
    ack.dport = 6999;
    ack.window_seq = 1;
    Frame hello;
    hello.kind = Kind::Hello;
    hello.hello = {2, 4, 77};
    std::vector<std::vector<uint8_t>> bad{bytes_of(gap, {0x55}), bytes_of(ack), bytes_of(hello), std::vector<uint8_t>(kHeaderLen, 0)};
    constexpr int kPerSocket = 200;
    std::thread sender([&] {
        for (int k = 0; k < kPerSocket; ++k) {
            for (uint16_t i = 0; i < 8; ++i)
                ASSERT_EQ(tx[i]->send({kB1.ip, static_cast<uint16_t>(6000 + i)}, payload(static_cast<uint64_t>(k), 3000)), 0);
            if (k % 40 == 20 && k / 40 < 4) {
                const auto lane = static_cast<uint16_t>(k / 40);
                while (!a->inject(kB1.ip, lane, bad[lane])) std::this_thread::sleep_for(1ms);
            }
        }
    });
    Sink sink;
    sink.drain(rx, 8 * kPerSocket, 30s);
    sender.join();
    EXPECT_FALSE(sink.bad);
    for (uint16_t i = 0; i < 8; ++i) {
        const auto& idx = sink.seen[{static_cast<uint16_t>(6000 + i), static_cast<uint16_t>(5000 + i)}];
        ASSERT_EQ(idx.size(), static_cast<size_t>(kPerSocket));
        for (int k = 0; k < kPerSocket; ++k) ASSERT_EQ(idx[static_cast<size_t>(k)], static_cast<uint64_t>(k));
    }
    EXPECT_TRUE(lb.contains("error: lane 0 with 127.0.0.1 closed: sequence gap"));
    EXPECT_TRUE(lb.contains("error: lane 1 with 127.0.0.1 closed: ack for pair 6999->5999 never sent"));
    EXPECT_TRUE(lb.contains("error: lane 2 with 127.0.0.1 closed: second HELLO on a lane"));
    EXPECT_TRUE(lb.contains("error: lane 3 with 127.0.0.1 closed: malformed frame: no frame kind"));
    const NodeInfo info = b->info();
    for (const LaneInfo& l : info.peers[0].lane) EXPECT_EQ(l.failures, 1u) << "lane " << l.index;
}

// A bug that throws on the I/O thread (here: a test hook throwing while a frame of lane 1 is
// handled) must not end the process: the lane is closed with a logged error, the node carries on,
// and the sender's retransmission delivers everything once, in order.
TEST(RdsNode, AnExceptionOnTheIoThreadClosesOnlyItsLane) {
    Logs la, lb;
    const uint16_t port = free_port();
    auto a = Node::start(options("127.0.0.1", port, 4, la));
    auto b = Node::start(options("127.0.0.2", port, 4, lb));
    std::vector<std::unique_ptr<Socket>> tx, rx;
    for (uint16_t i = 0; i < 8; ++i) {
        tx.push_back(a->bind(static_cast<uint16_t>(5000 + i)));
        rx.push_back(b->bind(static_cast<uint16_t>(6000 + i)));
    }
    constexpr int kPerSocket = 200;
    std::thread sender([&] {
        for (int k = 0; k < kPerSocket; ++k) {
            for (uint16_t i = 0; i < 8; ++i)
                ASSERT_EQ(tx[i]->send({kB1.ip, static_cast<uint16_t>(6000 + i)}, payload(static_cast<uint64_t>(k), 4000)), 0);
            if (k == kPerSocket / 2)
                while (!b->fault(0x7f000001, 1)) std::this_thread::sleep_for(1ms);
        }
    });
    Sink sink;
    sink.drain(rx, 8 * kPerSocket, 30s);
    sender.join();
    EXPECT_FALSE(sink.bad);
    for (uint16_t i = 0; i < 8; ++i) {
        const auto& idx = sink.seen[{static_cast<uint16_t>(6000 + i), static_cast<uint16_t>(5000 + i)}];
        ASSERT_EQ(idx.size(), static_cast<size_t>(kPerSocket));
        for (int k = 0; k < kPerSocket; ++k) ASSERT_EQ(idx[static_cast<size_t>(k)], static_cast<uint64_t>(k));
    }
    EXPECT_TRUE(lb.contains("error: lane 1 with 127.0.0.1 closed: internal error in event: fault injected on request"));
    const NodeInfo info = b->info();
    for (const LaneInfo& l : info.peers[0].lane) EXPECT_EQ(l.failures, l.index == 1 ? 1u : 0u) << "lane " << l.index;
}

TEST(RdsNode, CreditRunsOutWithENOBUFSAndReturnsWhenTheReceiverReads) {
    Logs la, lb;
    const uint16_t port = free_port();
    auto a = Node::start(options("127.0.0.1", port, 2, la));
    NodeOptions ob = options("127.0.0.2", port, 2, lb);
    ob.rcvbuf = 64 << 10;
    auto b = Node::start(ob);
    auto tx = a->bind(5000);
    auto rx = b->bind(6000);
    tx->set_nonblocking(true);
    const std::vector<uint8_t> msg(16 << 10, 1);
    int sent = 0, err = 0;
    const auto end = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < end) {
        err = tx->send({kB1.ip, 6000}, msg);
        if (err == 0) ++sent;
        else if (err == ENOBUFS) {
            // Not for good: wait for acks to settle, then it stays refused.
            pollfd pf{tx->fd(), POLLIN, 0};
            if (::poll(&pf, 1, 200) == 0) break;
        } else
            break;
    }
    EXPECT_EQ(err, ENOBUFS);
    EXPECT_GE(sent, 4);
    EXPECT_LE(sent, 4 + 1 + 256) << "credit bounds what the receiver must queue";  // 4 MiB initial
    pollfd pf{tx->fd(), POLLIN, 0};
    EXPECT_EQ(::poll(&pf, 1, 0), 0) << "not writable while the destination is full";
    rx->set_timeout(1000ms);
    for (int i = 0; i < sent; ++i) {
        Event e;
        ASSERT_EQ(rx->recv(e), 0);
    }
    EXPECT_EQ(::poll(&pf, 1, 5000), 1) << "the credit update makes the socket ready";
    EXPECT_EQ(tx->send({kB1.ip, 6000}, msg), 0);
}

// A blocking send waiting for a destination's credit is woken when acks for *another* socket's
// messages to that destination free the credit (the credit is per destination socket, shared by
// every sending socket of the node).
TEST(RdsNode, BlockingSendWakesWhenAnotherSocketsAcksFreeTheCredit) {
    Logs la, lb;
    const uint16_t port = free_port();
    auto a = Node::start(options("127.0.0.1", port, 2, la));
    NodeOptions ob = options("127.0.0.2", port, 2, lb);
    ob.rcvbuf = 64 << 10;
    auto b = Node::start(ob);
    auto filler = a->bind(5000);
    auto waiter = a->bind(5001);
    auto rx = b->bind(6000);
    filler->set_nonblocking(true);
    const std::vector<uint8_t> msg(16 << 10, 1);
    int sent = 0, err = 0;
    const auto end = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < end) {
        err = filler->send({kB1.ip, 6000}, msg);
        if (err == 0) ++sent;
        else if (err == ENOBUFS) {
            pollfd pf{filler->fd(), POLLIN, 0};
            if (::poll(&pf, 1, 200) == 0) break;  // settled: the destination is full
        } else
            break;
    }
    ASSERT_EQ(err, ENOBUFS);
    waiter->set_timeout(5000ms);  // blocking, with a deadline (after which it looks once more)
    std::atomic<int> result{-1};
    std::chrono::steady_clock::time_point returned;
    std::thread blocked([&] {
        result = waiter->send({kB1.ip, 6000}, msg);
        returned = std::chrono::steady_clock::now();
    });
    // Give it time to start waiting (had it not, the send would just pass: never a false failure).
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(result.load(), -1) << "the destination is full: the blocking send waits";
    rx->set_timeout(1000ms);
    for (int i = 0; i < sent; ++i) {
        Event e;
        ASSERT_EQ(rx->recv(e), 0);
    }
    const auto drained = std::chrono::steady_clock::now();
    blocked.join();
    EXPECT_EQ(result.load(), 0);
    EXPECT_LT(returned - drained, 2s) << "woken only by its own deadline, not by the credit the other socket's acks freed";
}

// Sends to a socket on the same node obey its receive buffer as remote ones obey its credit: a
// slow local reader pushes back (ENOBUFS, or a blocking wait), and reading makes room again.
TEST(RdsNode, SendsToALocalSocketAreBoundByItsReceiveBuffer) {
    Logs la;
    NodeOptions o = options("127.0.0.1", free_port(), 2, la);
    o.rcvbuf = 64 << 10;
    auto a = Node::start(o);
    auto tx = a->bind(5000);
    auto rx = a->bind(5001);
    tx->set_nonblocking(true);
    const std::vector<uint8_t> msg(16 << 10, 1);
    const Endpoint to{0x7f000001, 5001};
    int sent = 0, err = 0;
    for (int i = 0; i < 1000 && (err = tx->send(to, msg)) == 0; ++i) ++sent;
    EXPECT_EQ(err, ENOBUFS) << "a slow local reader must push back";
    EXPECT_LE(sent, 4) << "64 KiB of receive buffer holds 4 messages of 16 KiB";
    pollfd pf{tx->fd(), POLLIN, 0};
    EXPECT_EQ(::poll(&pf, 1, 0), 0) << "not writable while the destination is full";
    // A blocking sender waits, and the reader's recv() wakes it.
    auto waiter = a->bind(5002);
    waiter->set_timeout(5000ms);
    std::atomic<int> result{-1};
    std::thread blocked([&] { result = waiter->send(to, msg); });
    rx->set_timeout(1000ms);
    for (int i = 0; i < sent; ++i) {
        Event e;
        ASSERT_EQ(rx->recv(e), 0);
    }
    blocked.join();
    EXPECT_EQ(result.load(), 0);
    EXPECT_EQ(::poll(&pf, 1, 5000), 1) << "room again: the refused socket turns ready";
    EXPECT_EQ(tx->send(to, msg), 0);
}

// A peer that sends pings and never reads must not grow the node's pong queue without bound:
// past the bound, pings go unanswered and are counted.
TEST(RdsNode, APeerThatPingsAndNeverReadsCannotGrowThePongQueue) {
    Logs la;
    const uint16_t port = free_port();
    auto a = Node::start(options("127.0.0.1", port, 1, la));
    // The misbehaving peer: a raw lane from 127.0.0.3 with a tiny receive buffer it never reads.
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
    const int small = 4096;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in me{}, node{};
    me.sin_family = node.sin_family = AF_INET;
    me.sin_addr.s_addr = htonl(0x7f000003);
    node.sin_addr.s_addr = htonl(0x7f000001);
    node.sin_port = htons(port);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&me), sizeof me), 0);
    ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&node), sizeof node), 0);
    auto write_all = [&](std::span<const uint8_t> b) {
        while (!b.empty()) {
            const ssize_t n = ::send(fd.get(), b.data(), b.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            b = b.subspan(static_cast<size_t>(n));
        }
        return true;
    };
    Frame hello;
    hello.kind = Kind::Hello;
    hello.hello = {0, 1, 0x1234};
    ASSERT_TRUE(write_all(encode_header(hello)));
    Frame ping;
    ping.kind = Kind::Ping;
    ping.sport = 9;
    ping.len = 60000;
    const auto h = encode_header(ping);
    std::vector<uint8_t> frame(h.begin(), h.end());
    frame.resize(kHeaderLen + ping.len, 0x5a);
    constexpr uint64_t kPings = 300;  // 18 MB of pongs if every one were kept
    for (uint64_t i = 0; i < kPings; ++i) ASSERT_TRUE(write_all(frame));
    const auto end = std::chrono::steady_clock::now() + 30s;
    const PeerInfo* peer = nullptr;
    NodeInfo info;
    while (std::chrono::steady_clock::now() < end) {
        info = a->info();
        peer = nullptr;
        for (const PeerInfo& p : info.peers)
            if (p.ip == "127.0.0.3") peer = &p;
        if (peer && !peer->lane.empty() && peer->lane[0].rx_frames >= kPings) break;
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_NE(peer, nullptr);
    ASSERT_EQ(peer->lane[0].rx_frames, kPings) << "the node read every ping";
    EXPECT_LE(peer->lane[0].control_bytes, size_t{2} << 20) << "pongs waiting are bounded";
    EXPECT_GT(peer->pings_dropped, 0u);
}

// Window values reach the sender over different lanes (acks on the data lane, updates on the
// first lane up), so an old one can arrive last. An old "window 0" arriving after a newer window
// must be ignored: applied, it would stall the sender for good (no further ack would come).
TEST(RdsNode, AStaleWindowArrivingLastIsIgnored) {
    Logs la, lb;
    const uint16_t port = free_port();
    auto a = Node::start(options("127.0.0.1", port, 1, la));
    NodeOptions ob = options("127.0.0.2", port, 1, lb);
    ob.rcvbuf = 64 << 10;
    auto b = Node::start(ob);
    auto tx = a->bind(5000);
    auto rx = b->bind(6000);
    auto pinger = b->bind(6001);
    tx->set_nonblocking(true);
    const std::vector<uint8_t> msg(16 << 10, 1);
    ASSERT_EQ(tx->send({kB1.ip, 6000}, msg), 0);
    rx->set_timeout(5000ms);
    Event e;
    ASSERT_EQ(rx->recv(e), 0);  // delivered, and acked with window 48 KiB, window sequence 1
    // The same pair's ack again, with window 0 and an older ordering number (1: not newer than
    // what the real ack carried), as if it had been delayed on another lane.
    Frame stale;
    stale.kind = Kind::Ack;
    stale.ack = 1;
    stale.sport = 6000;
    stale.dport = 5000;
    stale.window = 0;
    stale.window_seq = 1;
    const auto bytes = encode_header(stale);
    ASSERT_TRUE(b->inject(0x7f000001, 0, bytes));
    // A ping behind it on the same lane: its pong proves the stale frame was handled.
    pinger->set_timeout(5000ms);
    const std::vector<uint8_t> hi{'h', 'i'};
    ASSERT_EQ(pinger->send({0x7f000001, 0}, hi), 0);
    ASSERT_EQ(pinger->recv(e), 0);
    EXPECT_EQ(e.peer.port, 0);
    EXPECT_EQ(tx->send({kB1.ip, 6000}, msg), 0) << "a stale window 0 stalled the sender";
}

}  // namespace
}  // namespace shunt::rds
