#pragma once
// Each part of the CLI registers its subcommands on the root app.
#include <CLI/CLI.hpp>

namespace shunt::cli {
void add_clc_commands(CLI::App& app);
void add_cat_commands(CLI::App& app);
void add_bench_commands(CLI::App& app);
void add_stat_commands(CLI::App& app);
void add_rss_commands(CLI::App& app);
void add_run_commands(CLI::App& app);
void add_rds_commands(CLI::App& app);
void add_proxy_commands(CLI::App& app);
void add_exporter_commands(CLI::App& app);
void add_completion_commands(CLI::App& app);
}
