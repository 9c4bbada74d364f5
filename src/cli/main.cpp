// shunt: one binary, subcommands in the manner of git / ip.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "shunt/version.hpp"

int main(int argc, char** argv) {
    CLI::App app{"shunt: faster datacenter sockets without changing applications"};
    app.set_version_flag("--version", std::string("shunt ") + shunt::kVersion);
    app.require_subcommand(1);
    shunt::cli::add_clc_commands(app);
    shunt::cli::add_cat_commands(app);
    shunt::cli::add_bench_commands(app);
    shunt::cli::add_stat_commands(app);
    shunt::cli::add_rss_commands(app);
    shunt::cli::add_run_commands(app);
    shunt::cli::add_rds_commands(app);
    shunt::cli::add_proxy_commands(app);
    shunt::cli::add_exporter_commands(app);
    shunt::cli::add_completion_commands(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        fmt::print(stderr, "shunt: {}\n", e.what());
        return 1;
    }
    return 0;
}
