#pragma once
// Debug log of the preload (SHUNT_DEBUG=1 for stderr, or a file path): one line per decision,
// "shunt[pid] ...". printf-style so the preload needs nothing beyond libc and libstdc++.
namespace shunt::preload {

bool log_enabled();
[[gnu::format(printf, 1, 2)]] void log_debug(const char* fmt, ...);
// Problems the user must hear about even without SHUNT_DEBUG (stderr).
[[gnu::format(printf, 1, 2)]] void log_always(const char* fmt, ...);

}  // namespace shunt::preload
