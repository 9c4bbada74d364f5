// wrk 4.x: "N requests in Ts, ..." and "Requests/sec: X"; trouble shows as
// "Non-2xx or 3xx responses: N" and "Socket errors: connect A, read B, write C, timeout D";
// a refused first connection is "unable to connect to ...".
#include <stdexcept>

#include "cli/app_output.hpp"
#include "cli/output_scan.hpp"

namespace shunt::cli {

WrkResult parse_wrk(std::string_view out) {
    if (out.find("unable to connect") != std::string_view::npos)
        throw std::runtime_error("wrk: " + line_with(out, "unable to connect"));
    WrkResult r;
    const auto rps = number_after(out, "Requests/sec:");
    if (!rps) throw std::runtime_error("wrk: no Requests/sec in the output");
    r.requests_per_sec = *rps;
    const size_t in = out.find(" requests in ");
    if (in != std::string_view::npos) {
        size_t b = out.rfind('\n', in);
        b = b == std::string_view::npos ? 0 : b + 1;
        r.requests = static_cast<uint64_t>(number_after(out.substr(b), "").value_or(0));
    }
    r.non_2xx_3xx = static_cast<uint64_t>(number_after(out, "Non-2xx or 3xx responses:").value_or(0));
    for (const char* kind : {"connect", "read", "write", "timeout"}) {
        const size_t se = out.find("Socket errors:");
        if (se == std::string_view::npos) break;
        const std::string_view line = out.substr(se, out.find('\n', se) - se);
        r.socket_errors += static_cast<uint64_t>(number_after(line, kind).value_or(0));
    }
    if (r.requests == 0) throw std::runtime_error("wrk: no requests completed");
    return r;
}

}  // namespace shunt::cli
