#pragma once
// Random identifiers (GIDs, DMB tokens) from the kernel's CSPRNG.
#include <cstdint>

namespace shunt {
// From the kernel's CSPRNG (a syscall each time): for the host GID.
uint64_t random_u64();
// Fast and unpredictable enough to name things (DMB tokens): a per-thread generator seeded
// from random_u64(); never for secrets.
uint64_t quick_random_u64();
}
