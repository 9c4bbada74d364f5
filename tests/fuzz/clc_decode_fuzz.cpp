// libFuzzer target for the CLC decoder: any bytes a peer can send. Besides "no crash, no
// over-read" (ASan/UBSan), it checks that whatever decodes re-encodes into a message that
// decodes to the same value, so encoder and decoder agree on every layout the decoder admits.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "clc/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> bytes(data, size);
    (void)shunt::clc::decode_header(bytes);
    auto msg = shunt::clc::decode(bytes);
    if (!msg) return 0;
    const auto again = shunt::clc::decode(shunt::clc::encode(*msg));
    if (!again || !(*again == *msg)) std::abort();
    return 0;
}
