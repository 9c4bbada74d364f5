#pragma once
// Random identifiers (GIDs, DMB tokens) from the kernel's CSPRNG.
#include <cstdint>

namespace shunt {
uint64_t random_u64();
}
