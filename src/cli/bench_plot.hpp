#pragma once
// The PNG of `shunt bench apps`: one bar per row, the speedup over TCP (TCP/shunt for
// latencies, shunt/TCP for rates, so higher is better everywhere), the target marked on each.
#include <string>
#include <vector>

namespace shunt::cli {

struct PlotBar {
    std::string label;
    double speedup, target_speedup;
};

// Runs gnuplot; throws std::runtime_error if it is missing or fails.
void write_speedup_plot(const std::vector<PlotBar>& bars, const std::string& title, const std::string& png);

}  // namespace shunt::cli
