#pragma once
// `shunt rds stress`: the rds-stress workload (tools: rds-stress.c, rds.md §3.1) on shunt rds.
#include <CLI/CLI.hpp>

namespace shunt::cli {
void add_rds_stress(CLI::App& rds);
}
