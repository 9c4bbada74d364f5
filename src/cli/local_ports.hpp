#pragma once
// Ports for the servers `shunt bench apps` starts: probed from a range below the ephemeral
// ports (so outgoing connections cannot take them meanwhile), starting at an offset derived
// from our pid so that two benches at once do not race for the same ones.
#include <cstdint>

namespace shunt::cli {

// Whether some socket of this network namespace listens on TCP `port` (/proc/net/tcp, tcp6).
bool tcp_listening(uint16_t port);

class PortPicker {
public:
    PortPicker(uint16_t first = 20000, uint16_t last = 32000);
    // A port nothing listens on and that we could bind on every address; throws if none is left.
    uint16_t next();

private:
    uint16_t first_, last_, cursor_;
};

}  // namespace shunt::cli
