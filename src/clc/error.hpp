#pragma once
// What a CLC decoder found wrong, naming the field, so a Decline or a log line can say why.
#include <string>

#include "core/result.hpp"

namespace shunt::clc {

enum class ErrorKind {
    Truncated,     // fewer bytes than the message needs
    BadEyecatcher, // header eyecatcher is neither SMCR nor SMCD
    BadTrailer,    // trailer eyecatcher is neither SMCR nor SMCD
    Type,          // unknown message type, or not the one expected
    Version,       // version 0
    Length,        // length field disagrees with what the message contains
    Count,         // a count above its limit (EIDs, GIDs, IPv6 prefixes)
    Offset,        // an offset that does not point where the layout says
    Value,         // a field with a value the protocol forbids
    Unsupported,   // well formed but not something shunt speaks (SMC-R Accept/Confirm)
};

struct Error {
    ErrorKind kind;
    const char* field;  // e.g. "proposal.eid_cnt"
    std::string message() const;
    bool operator==(const Error&) const = default;
};

template <class T>
using Result = shunt::Result<T, Error>;

const char* to_string(ErrorKind k);

}  // namespace shunt::clc
