// Port pool benchmark: the syndrome algebra against trial and error, side by side in one
// run. "Hash every port" is what mTCP's per-core address pool and the HAProxy-list approach do:
// Toeplitz-hash the reply tuple of each port in the range and keep those that land on the queue;
// it uses our fastest (table-driven) hash, so the comparison is not against a strawman.
//   fill      a queue's pool for a new destination: one hash + copying the queue's syndrome groups
//   retarget  the server address changed: one hash + |RETA entries of the queue| XORs
//   refill    the trial-and-error answer to the same change: hash every port again
// Each figure is the median of REPS repetitions of a batch; destinations are random per batch.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "shunt/rss.hpp"

namespace {

using namespace shunt::rss;
using Clock = std::chrono::steady_clock;

volatile uint64_t g_sink;

// Median over `reps` of (time of `batch` calls of fn) / batch, in ns.
double median_ns(int reps, int batch, const std::function<void()>& fn) {
    std::vector<double> t;
    t.reserve(static_cast<size_t>(reps));
    fn();  // warm caches
    for (int r = 0; r < reps; ++r) {
        const auto a = Clock::now();
        for (int i = 0; i < batch; ++i) fn();
        const auto b = Clock::now();
        t.push_back(std::chrono::duration<double, std::nano>(b - a).count() / batch);
    }
    std::nth_element(t.begin(), t.begin() + static_cast<long>(t.size() / 2), t.end());
    return t[t.size() / 2];
}

IpAddress random_ip(std::mt19937_64& rng, Family f) {
    if (f == Family::kV4) {
        const auto v = static_cast<uint32_t>(rng());
        return IpAddress::v4({uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)});
    }
    std::array<uint8_t, 16> b{};
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    return IpAddress::v6(b);
}

std::string human(double ns) {
    if (ns >= 1e6) return fmt::format("{:.2f} ms", ns / 1e6);
    if (ns >= 1e3) return fmt::format("{:.2f} us", ns / 1e3);
    return fmt::format("{:.1f} ns", ns);
}

void row(const char* what, double ns, const std::string& per_port) {
    fmt::print("  {:<52} {:>11}  {}\n", what, human(ns), per_port);
}

void run(Family fam, PortRange range, uint32_t queues, size_t reta_size, int reps) {
    const NicModel model = NicModel::make_default(queues, reta_size);
    const IpAddress local =
        fam == Family::kV4 ? *IpAddress::parse("10.0.0.1") : *IpAddress::parse("fd00::1");
    const uint16_t rport = 443;
    const uint32_t queue = 3 % queues;
    std::mt19937_64 rng(42);

    PortAllocator::Config cfg;
    cfg.model = model;
    cfg.local = local;
    cfg.range = range;
    cfg.seed = 1;
    PortAllocator alloc(cfg);
    const ToeplitzHasher& hasher = alloc.hasher();

    std::vector<IpAddress> dests(1024);
    for (auto& d : dests) d = random_ip(rng, fam);
    size_t di = 0;
    auto next_dest = [&]() -> const IpAddress& { return dests[di++ % dests.size()]; };

    Target probe = alloc.target(dests[0], rport, queue);
    const size_t pool = alloc.pool_size(probe);

    fmt::print(
        "\n{} | Microsoft key | RETA {} entries, {} queues | range {}-{} ({} ports) | queue {} "
        "pool {} ports\n",
        fam == Family::kV4 ? "IPv4" : "IPv6", reta_size, queues, range.lo, range.hi, range.size(),
        queue, pool);

    std::vector<uint16_t> out;
    out.reserve(range.size());
    // Fill: algebra.
    const double fill = median_ns(reps, 200, [&] {
        Target t = alloc.target(next_dest(), rport, queue);
        out.clear();
        alloc.pool(t, out);
        g_sink = g_sink + out.size();
    });
    // Fill: hash every port of the range (table-driven fast hash).
    // The input is serialised once per destination; only the two port bytes change per port.
    auto hash_all = [&](const IpAddress& remote) {
        out.clear();
        std::array<uint8_t, kMaxHashInput> in{};
        const size_t n = hash_input(reply_tuple(local, 0, remote, rport), true, in);
        const std::span<const uint8_t> view(in.data(), n);
        for (uint32_t p = range.lo; p <= range.hi; ++p) {
            in[n - 2] = static_cast<uint8_t>(p >> 8);
            in[n - 1] = static_cast<uint8_t>(p);
            if (model.reta.queue_of_hash(hasher.hash(view)) == queue)
                out.push_back(static_cast<uint16_t>(p));
        }
        g_sink = g_sink + out.size();
    };
    const double naive = median_ns(reps, 2, [&] { hash_all(next_dest()); });
    // The same with the bit-serial reference, for scale (fewer repetitions: it is slow).
    const double naive_ref = median_ns(std::max(3, reps / 10), 1, [&] {
        out.clear();
        const IpAddress& remote = next_dest();
        for (uint32_t p = range.lo; p <= range.hi; ++p)
            if (model.reta.queue_of_hash(hash_reference(
                    model.key, reply_tuple(local, static_cast<uint16_t>(p), remote, rport),
                    true)) == queue)
                out.push_back(static_cast<uint16_t>(p));
        g_sink = g_sink + out.size();
    });

    // Retarget vs refill.
    Target shard = alloc.target(dests[0], rport, queue);
    const double retarget = median_ns(reps, 20000, [&] {
        alloc.retarget(shard, next_dest(), rport);
        g_sink = g_sink + shard.fixed_hash();
    });
    const double refill = naive;  // the trial-and-error answer to a server change is a new fill

    // One-time set-up, no hashing: group the range by syndrome; then the whole allocator (index,
    // shuffled lock-free free lists, state bytes).
    const PortMatrix matrix(model.key, fam, model.reta.log2_size());
    const double setup_index = median_ns(std::max(5, reps / 4), 1, [&] {
        SyndromeIndex index(matrix, range);
        g_sink = g_sink + index.port_count();
    });
    const double setup = median_ns(std::max(5, reps / 4), 1, [&] {
        PortAllocator a(cfg);
        g_sink = g_sink + a.index().port_count();
    });
    // O(1) per port: acquire a port and give it back.
    Target hot = alloc.target(dests[1], rport, queue);
    const double acq = median_ns(reps, 20000, [&] {
        const auto p = alloc.acquire(hot);
        g_sink = g_sink + *p;
        alloc.release(*p);
    });
    // Draining: acquire the whole pool, then release it.
    std::vector<uint16_t> held;
    held.reserve(pool);
    const double drain = median_ns(std::max(5, reps / 4), 1, [&] {
        held.clear();
        while (auto p = alloc.acquire(hot)) held.push_back(*p);
        for (uint16_t p : held) alloc.release(p);
    });

    const double n_range = static_cast<double>(range.size());
    const double n_pool = static_cast<double>(pool);
    fmt::print("  {:<52} {:>11}  {}\n", "operation (median)", "time", "per port");
    row("fill: syndrome groups (1 hash + copy)", fill,
        fmt::format("{:.2f} ns per pool port", fill / n_pool));
    row("fill: hash every port, table-driven Toeplitz", naive,
        fmt::format("{:.2f} ns per range port", naive / n_range));
    row("fill: hash every port, bit-serial reference", naive_ref,
        fmt::format("{:.2f} ns per range port", naive_ref / n_range));
    row("retarget after server address change (1 hash)", retarget, "-");
    row("refill after server address change (hash all)", refill,
        fmt::format("{:.2f} ns per range port", refill / n_range));
    row("one-time set-up: group range by syndrome", setup_index,
        fmt::format("{:.2f} ns per range port", setup_index / n_range));
    row("one-time set-up: whole allocator (+ shuffled lists)", setup,
        fmt::format("{:.2f} ns per range port", setup / n_range));
    row("acquire + release one port", acq, "");
    row("drain the whole pool (acquire all, release all)", drain,
        fmt::format("{:.2f} ns per pool port", drain / n_pool));
    fmt::print("  RATIO fill     hash-all / syndrome fill : {:8.0f}x   (target >= 100x)\n",
               naive / fill);
    fmt::print("  RATIO retarget refill / retarget        : {:8.0f}x   (target >= 100x)\n",
               refill / retarget);
    fmt::print(
        "  (set-up is paid once per allocator, i.e. per local address; fill and retarget per "
        "destination)\n");
}

}  // namespace

int main(int argc, char** argv) {
    const int reps = argc > 1 ? std::max(5, std::atoi(argv[1])) : 41;
    fmt::print(
        "bench_rss: RSS-aligned port pools, algebra vs hashing every port ({} repetitions, "
        "medians)\n",
        reps);
    run(Family::kV4, PortRange{32768, 60999}, 8, 128, reps);
    run(Family::kV6, PortRange{32768, 60999}, 8, 128, reps);
    run(Family::kV4, PortRange{1024, 65535}, 6, 512, reps);
    return 0;
}
