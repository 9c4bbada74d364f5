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

}  // namespace shunt
