#pragma once
// Small text helpers shared by the benchmark output parsers.
#include <optional>
#include <string>
#include <string_view>

namespace shunt::cli {

// The number that follows the first occurrence of `key` (spaces skipped), if any.
std::optional<double> number_after(std::string_view text, std::string_view key);

// The line holding the first occurrence of `needle`, trimmed, for error messages.
std::string line_with(std::string_view text, std::string_view needle);

}  // namespace shunt::cli
