#include "core/random.hpp"

#include <sys/random.h>

#include <cerrno>
#include <system_error>

namespace shunt {

uint64_t random_u64() {
    uint64_t v = 0;
    auto* p = reinterpret_cast<char*>(&v);
    size_t got = 0;
    while (got < sizeof v) {
        const ssize_t n = ::getrandom(p + got, sizeof v - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "getrandom");
        }
        got += static_cast<size_t>(n);
    }
    return v;
}

uint64_t quick_random_u64() {
    // splitmix64 over a per-thread state seeded once from the kernel. A forked child repeats
    // its parent's sequence; that is harmless for names that are verified where they are used.
    thread_local uint64_t state = random_u64();
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

}  // namespace shunt
