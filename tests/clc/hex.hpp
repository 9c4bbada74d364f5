#pragma once
// Test helper: bytes from a hex string with spaces and "|" separators for readability.
#include <cctype>
#include <cstdint>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace shunt::test {

inline std::vector<uint8_t> hex(std::string_view s) {
    std::vector<uint8_t> out;
    int hi = -1;
    for (char c : s) {
        if (c == ' ' || c == '|' || c == '\n') continue;
        if (!std::isxdigit(static_cast<unsigned char>(c))) throw std::invalid_argument("bad hex");
        const int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10);
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<uint8_t>(hi << 4 | v));
            hi = -1;
        }
    }
    if (hi >= 0) throw std::invalid_argument("odd hex");
    return out;
}

inline std::vector<uint8_t> zeros(size_t n) { return std::vector<uint8_t>(n, 0); }
inline std::vector<uint8_t> text(std::string_view s, size_t width) {
    std::vector<uint8_t> out(width, ' ');
    for (size_t i = 0; i < s.size() && i < width; ++i) out[i] = static_cast<uint8_t>(s[i]);
    return out;
}
inline std::vector<uint8_t> cat(std::initializer_list<std::vector<uint8_t>> parts) {
    std::vector<uint8_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

}  // namespace shunt::test
