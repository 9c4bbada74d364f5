#pragma once
// `shunt rds stress`: the rds-stress workload (rds-tools' rds-stress) on shunt rds.
#include <CLI/CLI.hpp>

namespace shunt::cli {
void add_rds_stress(CLI::App& rds);
}
