#include "lo/stats_region.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <new>

#include "lo/dmb.hpp"

namespace shunt::lo {
namespace {
std::mutex fallback_mu;
constexpr char kMemfdName[] = "shunt-stats";
}  // namespace

StatsRegion& StatsRegion::instance() {
    static StatsRegion* r = new StatsRegion();  // never destroyed: connections may outlive statics
    if (r->stale_.load(std::memory_order_relaxed) && r->stale_.exchange(false)) r->init();
    return *r;
}

StatsRegion::StatsRegion() { init(); }

void StatsRegion::reset_after_fork() {
    if (!mem_.data()) return;
    auto* parents = new SharedMemory(std::move(mem_));  // kept mapped on purpose
    parents->close_fd();
    stale_ = true;  // a region of our own on first use: most children never need one
}

void StatsRegion::init() {
    auto mem = SharedMemory::create(sizeof(StatsLayout), kMemfdName);
    if (mem) {
        mem_ = std::move(*mem);
        layout_ = new (mem_.data()) StatsLayout{};
    } else {
        // No memfd (unlikely): keep counting in private memory; `shunt stat` will not see us.
        layout_ = new StatsLayout{};
    }
    layout_->magic = kStatsMagic;
    layout_->version = kStatsVersion;
    layout_->slots = kConnSlots;
    layout_->pid = ::getpid();
    layout_->uid = ::geteuid();
}

void StatsRegion::count_fallback(bool server, uint32_t reason) {
    (server ? counters().server_fallback : counters().client_fallback).fetch_add(1);
    std::lock_guard lock(fallback_mu);
    for (FallbackCount& f : layout_->fallbacks) {
        if (f.code.load() == 0) {
            f.server.store(server);
            f.code.store(reason);
        }
        if (f.code.load() == reason && f.server.load() == server) {
            f.count.fetch_add(1);
            return;
        }
    }
}

ConnSlot* StatsRegion::acquire() {
    const size_t start = next_hint_.fetch_add(1) % kConnSlots;
    for (size_t i = 0; i < kConnSlots; ++i) {
        ConnSlot& s = layout_->conns[(start + i) % kConnSlots];
        uint32_t expected = 0;
        if (s.in_use.compare_exchange_strong(expected, 2)) {  // 2: being filled, not listed yet
            s.gen.fetch_add(1);  // odd: static part changing
            return &s;
        }
    }
    return nullptr;
}

void StatsRegion::release(ConnSlot* s) {
    if (!s) return;
    s->in_use.store(0, std::memory_order_release);
}

// ---- reading ----

namespace {

std::string read_comm(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
    std::string s;
    std::getline(f, s);
    return s;
}

IpPort endpoint(const uint8_t* addr, uint16_t port) {
    IpPort ep;
    std::memcpy(ep.addr.data(), addr, 16);
    ep.port = port;
    return ep;
}

std::optional<ProcessStats> read_region(pid_t pid, const std::string& fd_path) {
    const int fd = ::open(fd_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    struct stat st {};
    if (::fstat(fd, &st) < 0 || static_cast<size_t>(st.st_size) != sizeof(StatsLayout)) {
        ::close(fd);
        return std::nullopt;
    }
    void* p = ::mmap(nullptr, sizeof(StatsLayout), PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) return std::nullopt;
    const auto* l = static_cast<const StatsLayout*>(p);
    std::optional<ProcessStats> out;
    if (l->magic == kStatsMagic && l->version == kStatsVersion) {
        ProcessStats ps;
        ps.pid = pid;
        ps.uid = l->uid;
        ps.comm = read_comm(pid);
        const Counters& c = l->counters;
        const std::atomic<uint64_t>* all[] = {&c.client_smcd, &c.server_smcd, &c.client_fallback, &c.server_fallback,
                                              &c.handshake_errors, &c.tx_bytes, &c.rx_bytes, &c.tx_calls,
                                              &c.rx_calls, &c.tx_buffer_full, &c.wakeups_sent};
        for (size_t i = 0; i < std::size(all); ++i) ps.counters[i] = all[i]->load();
        for (const FallbackCount& f : l->fallbacks) {
            if (const uint32_t code = f.code.load()) {
                ps.fallback_codes.emplace_back(code, f.server.load() != 0);
                ps.fallback_counts.push_back(f.count.load());
            }
        }
        for (const ConnSlot& s : l->conns) {
            if (s.in_use.load(std::memory_order_acquire) != 1) continue;
            const uint32_t g1 = s.gen.load(std::memory_order_acquire);
            ConnSnapshot c2;
            c2.local = endpoint(s.local_addr, s.local_port);
            c2.peer = endpoint(s.peer_addr, s.peer_port);
            c2.smcd = s.smcd;
            c2.server = s.server;
            c2.reason = s.reason;
            c2.peer_reason = s.peer_reason;
            c2.rx_ring = s.rx_ring;
            c2.tx_ring = s.tx_ring;
            c2.local_token = s.local_token;
            c2.peer_token = s.peer_token;
            c2.rx_consumed = CdcWord::unpack(s.rx_consumed.load()).cursor;
            c2.rx_peer_produced = CdcWord::unpack(s.rx_peer_produced.load()).cursor;
            c2.tx_produced = CdcWord::unpack(s.tx_produced.load()).cursor;
            c2.tx_peer_consumed = CdcWord::unpack(s.tx_peer_consumed.load()).cursor;
            c2.sent_flags = s.sent_flags.load();
            c2.got_flags = s.got_flags.load();
            c2.peer_died = s.peer_died.load();
            c2.closed = s.closed.load();
            if (g1 % 2 == 0 && s.gen.load(std::memory_order_acquire) == g1 && s.in_use.load() == 1)
                ps.conns.push_back(c2);
        }
        out = std::move(ps);
    }
    ::munmap(p, sizeof(StatsLayout));
    return out;
}

}  // namespace

std::vector<ProcessStats> read_all_stats() {
    std::vector<ProcessStats> out;
    DIR* proc = ::opendir("/proc");
    if (!proc) return out;
    while (dirent* e = ::readdir(proc)) {
        char* end = nullptr;
        const long pid = std::strtol(e->d_name, &end, 10);
        if (*end || pid <= 0) continue;
        const std::string fd_dir = std::string("/proc/") + e->d_name + "/fd";
        DIR* fds = ::opendir(fd_dir.c_str());
        if (!fds) continue;  // not ours to look at
        while (dirent* f = ::readdir(fds)) {
            if (f->d_name[0] == '.') continue;
            const std::string path = fd_dir + "/" + f->d_name;
            char target[128] = {};
            const ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
            if (n <= 0 || std::strncmp(target, "/memfd:shunt-stats", 18) != 0) continue;
            if (auto ps = read_region(static_cast<pid_t>(pid), path)) out.push_back(std::move(*ps));
            break;
        }
        ::closedir(fds);
    }
    ::closedir(proc);
    return out;
}

}  // namespace shunt::lo
