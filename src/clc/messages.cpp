#include "clc/messages.hpp"

#include <algorithm>
#include <cctype>

namespace shunt::clc {

MsgType type_of(const Message& m) {
    if (const auto* ac = std::get_if<AcceptConfirm>(&m)) return ac->type;
    return std::holds_alternative<Proposal>(m) ? MsgType::Proposal : MsgType::Decline;
}

std::string_view to_string(MsgType t) {
    switch (t) {
        case MsgType::Proposal: return "Proposal";
        case MsgType::Accept: return "Accept";
        case MsgType::Confirm: return "Confirm";
        case MsgType::Decline: return "Decline";
    }
    return "Unknown";
}

Eid pad_blank(std::string_view text) {
    Eid out;
    out.fill(' ');
    std::copy_n(text.begin(), std::min(text.size(), out.size()), out.begin());
    return out;
}

bool make_ueid(std::string_view text, Eid& out) {
    if (text.empty() || text.size() > kEidLen) return false;
    if (!std::isalnum(static_cast<unsigned char>(text.front()))) return false;
    for (char c : text) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
        if (!ok) return false;
    }
    out = pad_blank(text);
    return true;
}

std::string trim_blank(const Eid& eid) {
    std::string s(eid.begin(), eid.end());
    while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
    return s;
}

std::vector<SmcdDevice> smcd_devices(const V2Extension& v2) {
    std::vector<SmcdDevice> out;
    const auto& g = v2.gids;
    for (size_t i = 0; i < g.size(); ++i) {
        if (!is_emulated_chid(g[i].chid)) {
            out.push_back({g[i].chid, g[i].gid, 0});
        } else if (i + 1 < g.size() && g[i + 1].chid == g[i].chid) {
            out.push_back({g[i].chid, g[i].gid, g[i + 1].gid});
            ++i;
        }
        // An emulated entry without its pair names no device (Linux skips it).
    }
    return out;
}

}  // namespace shunt::clc
