#pragma once
// Host metrics in Prometheus form, for `shunt stats --prometheus` and `shunt exporter`.
//
// A sample is read from what the host exposes now: each process's shunt-stats region (lo
// counters) and each rds node's info socket (lanes, retransmits). Those counters live in their
// process and vanish with it, so a plain sum over live processes would go backwards when one
// exits. HostTotals keeps, per source (a process, or an rds node incarnation), the last values
// it saw; when a source disappears its last values move into a retired sum that only grows.
// The exporter samples every second, so at most the last second of an exiting process's
// activity is missing from the totals; docs/packaging.md explains the choice.
#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace shunt::cli {

// (metric name, label set as written in the exposition, e.g. `mode="smcd",role="client"`).
using SeriesKey = std::pair<std::string, std::string>;
using SeriesValues = std::map<SeriesKey, uint64_t>;

struct MetricsSample {
    std::map<std::string, SeriesValues> counters;  // by source: "lo/<pid>/<start time>", "rds/<node>/<incarnation>"
    SeriesValues gauges;                           // point-in-time values, never retired
};

// Reads every region and rds node this process may see (the same user, or root).
MetricsSample read_metrics_sample();

class HostTotals {
public:
    // Folds a new sample in and returns the host totals of every counter series.
    SeriesValues update(const MetricsSample& s);

private:
    std::map<std::string, SeriesValues> last_;
    SeriesValues retired_;
};

// The Prometheus text exposition (version 0.0.4) of counters and gauges, with HELP and TYPE.
std::string render_prometheus(const SeriesValues& counters, const SeriesValues& gauges);

// `shunt stats --prometheus`: one sample of the live processes (no memory of those that
// exited: that is the exporter's job).
void print_prometheus();

}  // namespace shunt::cli
