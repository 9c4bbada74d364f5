// Small text helpers shared by the benchmark output parsers.
#include "cli/output_scan.hpp"

#include <cstdlib>

namespace shunt::cli {

std::optional<double> number_after(std::string_view text, std::string_view key) {
    const size_t at = text.find(key);
    if (at == std::string_view::npos) return std::nullopt;
    size_t i = at + key.size();
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    const std::string digits(text.substr(i, 32));
    char* end = nullptr;
    const double v = std::strtod(digits.c_str(), &end);
    if (end == digits.c_str()) return std::nullopt;
    return v;
}

std::string line_with(std::string_view text, std::string_view needle) {
    const size_t at = text.find(needle);
    if (at == std::string_view::npos) return {};
    size_t b = text.rfind('\n', at);
    b = b == std::string_view::npos ? 0 : b + 1;
    size_t e = text.find('\n', at);
    if (e == std::string_view::npos) e = text.size();
    std::string line(text.substr(b, e - b));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    return line;
}

}  // namespace shunt::cli
