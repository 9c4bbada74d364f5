#pragma once
// The ports this process listens on through the rendezvous. The handshake of a connection to
// one of them needs this process's accept(), which the connecting thread itself may be the one
// to call, after connect() returns (a test program, a self-check at start-up). With a single
// thread that is certain, and the connection stays TCP at once (SAMEPROC); with several, another
// thread usually accepts, and the handshake is tried with a short timeout.
#include <cstdint>

namespace shunt::preload::own_listeners {

void add(uint16_t port);
void remove(uint16_t port);
bool has(uint16_t port);
// True if this process has a single thread: then the thread that connects is the one that
// must accept, and waiting for the handshake could only end in its timeout.
bool single_threaded();

}  // namespace shunt::preload::own_listeners
