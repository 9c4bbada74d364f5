#pragma once
// Reads a captured program output from tests/cli/samples/.
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace shunt::cli::test {

inline std::string sample(const std::string& name) {
    std::ifstream in(std::string(SHUNT_CLI_SAMPLES) + "/" + name, std::ios::binary);
    if (!in) throw std::runtime_error("missing sample " + name);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Runs f and returns the message of the std::runtime_error it throws ("" if none).
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace shunt::cli::test
