#pragma once
// What the preload knows about the application's descriptors, indexed by fd number.
//
// Every call the application makes goes through here first, so the common case (a descriptor
// we do not track: a file, a pipe, a UDP socket, a TCP connection that fell back) must cost
// one relaxed byte load: `kind(fd)`. Only tracked descriptors take the lock and a reference to
// their state. The state is shared by all descriptors naming the same socket (dup, fork) and
// lives until the last of them is closed and the last call using it has returned (a close in
// one thread never pulls a connection from under a read in another).
#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <shared_mutex>
#include <vector>

namespace shunt::preload {

enum class FdKind : uint8_t {
    None = 0,      // not ours: straight to the C library
    Socket,        // a TCP socket we watch (fresh, listening, or connected over TCP)
    PendingTcp,    // a client that stays TCP, listed in `shunt stat` once connected
    Smcd,          // an accelerated connection: data and readiness are ours
    Epoll,         // an epoll set holding accelerated connections
    Private,       // one of a connection's own descriptors (its TCP duplicate, its eventfds):
                   // the application's close()/close_range() pass it by, so a program that
                   // closes every descriptor before exec (Python's subprocess) leaves it be
};

// Base of everything the table holds.
struct Tracked {
    virtual ~Tracked() = default;
    // Descriptors of this process naming it (dup, dup2, fcntl(F_DUPFD) add one, close removes).
    std::atomic<int> fds{1};
};

class FdTable {
public:
    static FdTable& instance();

    FdKind kind(int fd) const {
        if (fd < 0) return FdKind::None;
        const Chunk* c = chunks_[static_cast<size_t>(fd) >> kChunkBits].load(std::memory_order_acquire);
        return c ? static_cast<FdKind>(c->kind[fd & kChunkMask].load(std::memory_order_relaxed)) : FdKind::None;
    }
    std::shared_ptr<Tracked> get(int fd) const;
    // What `fd` names if it is of kind `want` (read together under the lock), else nullptr.
    std::shared_ptr<Tracked> get(int fd, FdKind want) const;
    template <typename T>
    std::shared_ptr<T> get_as(int fd) const {
        return std::dynamic_pointer_cast<T>(get(fd));
    }
    // Sets (or replaces) what `fd` names.
    void put(int fd, FdKind kind, std::shared_ptr<Tracked> t);
    void set_kind(int fd, FdKind kind);
    // Every descriptor naming `t` as kind `from` becomes kind `to` (a connection moved to TCP).
    void change_kind(const Tracked* t, FdKind from, FdKind to);
    // Forgets `fd` and returns what it named.
    std::shared_ptr<Tracked> take(int fd);
    // Above every descriptor ever entered (a bound for scans of a range).
    int high_water() const { return high_water_.load(std::memory_order_relaxed); }
    // Every tracked descriptor. The caller holds the table (lock_for_fork).
    std::vector<std::pair<int, std::shared_ptr<Tracked>>> snapshot_locked() const;
    // Every tracked descriptor (takes the lock).
    std::vector<std::pair<int, std::shared_ptr<Tracked>>> snapshot() const {
        std::shared_lock lock(mu_);
        return snapshot_locked();
    }

    // fork: hold the table so no other thread is halfway through changing it. The child
    // re-creates the lock instead of unlocking it: a rwlock remembers its writer's thread id,
    // which is not the child's.
    void lock_for_fork() { mu_.lock(); }
    void unlock_in_parent() { mu_.unlock(); }
    void reinit_in_child() { new (&mu_) std::shared_mutex(); }

    static constexpr int kMaxFd = 1 << 24;

private:
    static constexpr int kChunkBits = 12;
    static constexpr int kChunkMask = (1 << kChunkBits) - 1;
    struct Chunk {
        std::atomic<uint8_t> kind[1 << kChunkBits];
        std::shared_ptr<Tracked> state[1 << kChunkBits];
    };
    Chunk* chunk_for(int fd);  // under mu_ (exclusive)

    mutable std::shared_mutex mu_;
    std::atomic<int> high_water_{0};
    std::atomic<Chunk*> chunks_[kMaxFd >> kChunkBits] = {};
};

}  // namespace shunt::preload
