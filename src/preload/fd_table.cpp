#include "preload/fd_table.hpp"

#include <mutex>
#include <utility>

namespace shunt::preload {

FdTable& FdTable::instance() {
    static FdTable* t = new FdTable();  // never destroyed: calls arrive until the very end
    return *t;
}

FdTable::Chunk* FdTable::chunk_for(int fd) {
    auto& slot = chunks_[static_cast<size_t>(fd) >> kChunkBits];
    Chunk* c = slot.load(std::memory_order_relaxed);
    if (!c) {
        c = new Chunk();
        for (auto& k : c->kind) k.store(0, std::memory_order_relaxed);
        slot.store(c, std::memory_order_release);
    }
    return c;
}

std::shared_ptr<Tracked> FdTable::get(int fd) const {
    if (fd < 0 || fd >= kMaxFd) return nullptr;
    std::shared_lock lock(mu_);
    const Chunk* c = chunks_[static_cast<size_t>(fd) >> kChunkBits].load(std::memory_order_acquire);
    return c ? c->state[fd & kChunkMask] : nullptr;
}

std::shared_ptr<Tracked> FdTable::get(int fd, FdKind want) const {
    if (fd < 0 || fd >= kMaxFd) return nullptr;
    std::shared_lock lock(mu_);
    const Chunk* c = chunks_[static_cast<size_t>(fd) >> kChunkBits].load(std::memory_order_acquire);
    if (!c || c->kind[fd & kChunkMask].load(std::memory_order_relaxed) != static_cast<uint8_t>(want)) return nullptr;
    return c->state[fd & kChunkMask];
}

void FdTable::put(int fd, FdKind kind, std::shared_ptr<Tracked> t) {
    if (fd < 0 || fd >= kMaxFd) return;
    std::unique_lock lock(mu_);
    Chunk* c = chunk_for(fd);
    if (fd >= high_water_.load(std::memory_order_relaxed)) high_water_.store(fd + 1, std::memory_order_relaxed);
    c->state[fd & kChunkMask] = std::move(t);
    c->kind[fd & kChunkMask].store(static_cast<uint8_t>(kind), std::memory_order_release);
}

void FdTable::set_kind(int fd, FdKind kind) {
    if (fd < 0 || fd >= kMaxFd) return;
    std::unique_lock lock(mu_);
    Chunk* c = chunk_for(fd);
    if (c->state[fd & kChunkMask]) c->kind[fd & kChunkMask].store(static_cast<uint8_t>(kind), std::memory_order_release);
}

void FdTable::change_kind(const Tracked* t, FdKind from, FdKind to) {
    std::unique_lock lock(mu_);
    for (auto& slot : chunks_) {
        Chunk* c = slot.load(std::memory_order_relaxed);
        if (!c) continue;
        for (int j = 0; j <= kChunkMask; ++j)
            if (c->state[j].get() == t && c->kind[j].load(std::memory_order_relaxed) == static_cast<uint8_t>(from))
                c->kind[j].store(static_cast<uint8_t>(to), std::memory_order_release);
    }
}

std::shared_ptr<Tracked> FdTable::take(int fd) {
    if (fd < 0 || fd >= kMaxFd) return nullptr;
    std::unique_lock lock(mu_);
    Chunk* c = chunks_[static_cast<size_t>(fd) >> kChunkBits].load(std::memory_order_relaxed);
    if (!c) return nullptr;
    c->kind[fd & kChunkMask].store(0, std::memory_order_release);
    return std::exchange(c->state[fd & kChunkMask], nullptr);
}

std::vector<std::pair<int, std::shared_ptr<Tracked>>> FdTable::snapshot_locked() const {
    std::vector<std::pair<int, std::shared_ptr<Tracked>>> out;
    for (size_t i = 0; i < std::size(chunks_); ++i) {
        const Chunk* c = chunks_[i].load(std::memory_order_acquire);
        if (!c) continue;
        for (int j = 0; j <= kChunkMask; ++j)
            if (c->state[j]) out.emplace_back(static_cast<int>(i << kChunkBits) + j, c->state[j]);
    }
    return out;
}

}  // namespace shunt::preload
