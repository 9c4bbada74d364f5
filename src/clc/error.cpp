#include "clc/error.hpp"

#include <fmt/format.h>

namespace shunt::clc {

const char* to_string(ErrorKind k) {
    switch (k) {
        case ErrorKind::Truncated: return "truncated";
        case ErrorKind::BadEyecatcher: return "bad eyecatcher";
        case ErrorKind::BadTrailer: return "bad trailer";
        case ErrorKind::Type: return "bad type";
        case ErrorKind::Version: return "bad version";
        case ErrorKind::Length: return "bad length";
        case ErrorKind::Count: return "count above limit";
        case ErrorKind::Offset: return "bad offset";
        case ErrorKind::Value: return "bad value";
        case ErrorKind::Unsupported: return "unsupported";
    }
    return "unknown";
}

std::string Error::message() const { return fmt::format("CLC {}: {}", to_string(kind), field); }

}  // namespace shunt::clc
