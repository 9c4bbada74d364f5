// RETA and NIC model (docs/rss-algebra.md): queue = RETA[hash & (size - 1)]. The table keeps, per
// queue, the list of its indices, because that list is what a port allocator needs: the wanted
// syndromes for a destination are those indices XOR the destination's constant. The reachability
// analysis groups RETA indices into cosets of the port matrix's column space: from one destination
// a port choice reaches exactly one coset (docs/rss-algebra.md, rank check).
#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "shunt/rss.hpp"

namespace shunt::rss {
namespace {

void check_size(size_t size) {
    if (size < Reta::kMinSize || size > Reta::kMaxSize || (size & (size - 1)) != 0)
        throw std::invalid_argument(fmt::format("RETA size {} is not a power of two in [{}, {}]",
                                                size, Reta::kMinSize, Reta::kMaxSize));
}

}  // namespace

Reta Reta::round_robin(size_t size, uint32_t queues) {
    check_size(size);
    if (queues == 0) throw std::invalid_argument("the number of queues must be at least 1");
    std::vector<uint32_t> e(size);
    for (size_t i = 0; i < size; ++i) e[i] = static_cast<uint32_t>(i % queues);
    return from_entries(std::move(e));
}

Reta Reta::from_entries(std::vector<uint32_t> entries) {
    check_size(entries.size());
    for (uint32_t q : entries)
        if (q >= kMaxSize)
            throw std::invalid_argument(fmt::format("RETA entry {} is not a queue", q));
    Reta r{Empty{}};
    r.entries_ = std::move(entries);
    r.log2_ = static_cast<unsigned>(__builtin_ctzll(r.entries_.size()));
    r.queue_count_ = *std::max_element(r.entries_.begin(), r.entries_.end()) + 1;
    // Counting sort of the indices by queue.
    r.by_queue_start_.assign(size_t{r.queue_count_} + 1, 0);
    for (uint32_t q : r.entries_) ++r.by_queue_start_[q + 1];
    for (size_t q = 0; q < r.queue_count_; ++q) r.by_queue_start_[q + 1] += r.by_queue_start_[q];
    r.by_queue_.resize(r.entries_.size());
    std::vector<uint32_t> fill(r.by_queue_start_.begin(), r.by_queue_start_.end() - 1);
    for (size_t i = 0; i < r.entries_.size(); ++i)
        r.by_queue_[fill[r.entries_[i]]++] = static_cast<uint32_t>(i);
    return r;
}

std::span<const uint32_t> Reta::indices_of(uint32_t queue) const {
    if (queue >= queue_count_) return {};
    return {by_queue_.data() + by_queue_start_[queue],
            by_queue_.data() + by_queue_start_[queue + 1]};
}

NicModel NicModel::make_default(uint32_t queues, size_t reta_size) {
    return NicModel{ToeplitzKey::microsoft(), Reta::round_robin(reta_size, queues)};
}

Reachability analyze_reachability(const NicModel& model, Family family) {
    const PortMatrix m(model.key, family, model.reta.log2_size());
    Reachability out;
    out.r = m.rows();
    out.rank = m.rank();
    out.reachable_indices = size_t{1} << m.rank();

    const size_t n = model.reta.size();
    const uint32_t nq = model.reta.queue_count();
    // coset representative -> queues present in that coset
    std::vector<std::vector<uint32_t>> per_coset(n);
    std::vector<char> rep_seen(n, 0);
    size_t cosets = 0;
    for (uint32_t t = 0; t < n; ++t) {
        const uint32_t rep = m.reduce(t);
        if (!rep_seen[rep]) {
            rep_seen[rep] = 1;
            ++cosets;
        }
        per_coset[rep].push_back(model.reta[t]);
    }
    std::vector<size_t> coset_count(nq, 0);  // in how many cosets each queue appears
    std::vector<char> in_reta(nq, 0);
    for (auto& qs : per_coset) {
        std::sort(qs.begin(), qs.end());
        qs.erase(std::unique(qs.begin(), qs.end()), qs.end());
        for (uint32_t q : qs) {
            ++coset_count[q];
            in_reta[q] = 1;
        }
    }
    for (uint32_t q = 0; q < nq; ++q) {
        if (!in_reta[q])
            out.never.push_back(q);
        else if (coset_count[q] == cosets)
            out.always.push_back(q);
        else
            out.sometimes.push_back(q);
    }
    return out;
}

std::vector<uint32_t> reachable_queues(const NicModel& model, const PortMatrix& m,
                                       uint32_t fixed_hash) {
    if (m.rows() != model.reta.log2_size())
        throw std::invalid_argument("port matrix and RETA disagree on the number of index bits");
    const uint32_t want = m.reduce(fixed_hash & m.row_mask());
    std::vector<char> seen(model.reta.queue_count(), 0);
    for (uint32_t t = 0; t < model.reta.size(); ++t)
        if (m.reduce(t) == want) seen[model.reta[t]] = 1;
    std::vector<uint32_t> out;
    for (uint32_t q = 0; q < seen.size(); ++q)
        if (seen[q]) out.push_back(q);
    return out;
}

}  // namespace shunt::rss
