#pragma once
// The decisions each side makes on a CLC message it received, following Linux af_smc.c for
// SMC-Dv2 with an Emulated-ISM (loopback) device. A decision is either "go on" with what was
// agreed, or the DECL code to send in a Decline.
#include <cstdint>
#include <span>
#include <variant>

#include "clc/builders.hpp"
#include "clc/messages.hpp"

namespace shunt::clc {

struct LocalIdentity {
    Gid128 gid;                // the host (rundir) GID, our loopback device
    std::span<const Eid> ueids;  // UEIDs this host accepts
};

struct ServerChoice {
    Eid eid;          // negotiated UEID
    uint8_t release;  // min(client, ours)
};

// Server, on a Proposal: SMC-Dv2 with our loopback device, or a DECL code.
std::variant<ServerChoice, uint32_t> choose_on_proposal(const Proposal& p, const LocalIdentity& me);

// Client, on an Accept to a Proposal it built from `me`: 0 if it can confirm, else a DECL code.
uint32_t check_accept(const AcceptConfirm& a, const LocalIdentity& me);

// Server, on the Confirm answering its Accept: 0 if the connection may go SMC-D, else a DECL code.
uint32_t check_confirm(const AcceptConfirm& c, const AcceptConfirm& sent_accept, const LocalIdentity& me);

}  // namespace shunt::clc
