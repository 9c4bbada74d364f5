// Bar chart of speedups with gnuplot (gnuplot-nox has the png terminal), data passed inline.
#include "cli/bench_plot.hpp"

#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>

#include "cli/child_process.hpp"

namespace shunt::cli {

void write_speedup_plot(const std::vector<PlotBar>& bars, const std::string& title, const std::string& png) {
    if (bars.empty()) throw std::runtime_error("nothing to plot");
    const std::string gnuplot = find_program("gnuplot");
    if (gnuplot.empty()) throw std::runtime_error("gnuplot is not installed (apt-get install gnuplot-nox)");
    std::string script = fmt::format(
        "set terminal png size 1000,560 font ',10'\n"
        "set output '{}'\n"
        "set title \"{}\"\n"
        "set ylabel 'speedup over TCP loopback (higher is better, log scale)'\n"
        "set style fill solid 0.6 border -1\n"
        "set boxwidth 0.6\n"
        // Log scale: a 0.004x latency (shown as 250x) and a 1.7x stand side by side.
        "set logscale y 10\n"
        "set yrange [0.1:*]\n"
        "set xrange [-0.6:{}]\n"
        "set xtics rotate by -20 nomirror\n"
        "set grid ytics\n"
        "set key top left\n"
        "$data << EOD\n",
        png, title, static_cast<double>(bars.size()) - 0.4);
    for (const PlotBar& b : bars) script += fmt::format("\"{}\" {:.4f} {:.4f}\n", b.label, b.speedup, b.target_speedup);
    script +=
        "EOD\n"
        "plot $data using 0:2:xtic(1) with boxes lc rgb '#4a90d9' title 'shunt run vs TCP', \\\n"
        "     $data using 0:3 with points pt 9 ps 2.5 lc rgb '#d0021b' title 'target', \\\n"
        "     $data using 0:2:(sprintf('%.2fx', $2)) with labels offset 0,0.8 notitle, \\\n"
        "     1 with lines dt 2 lc rgb 'black' title 'TCP'\n";
    FILE* p = ::popen((gnuplot + " 1>&2").c_str(), "w");
    if (!p) throw std::runtime_error("cannot start gnuplot");
    std::fwrite(script.data(), 1, script.size(), p);
    const int st = ::pclose(p);
    if (st != 0) throw std::runtime_error("gnuplot failed (" + describe_status(st) + ")");
}

}  // namespace shunt::cli
