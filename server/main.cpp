// Wiring only: parse the command line, then hand over to the master process.
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "server/config.hpp"
#include "server/master.hpp"
#include "server/python_config_reader.hpp"
#include "static/precompress.hpp"

int main(int argc, char** argv) {
    gantry::CommandLine command;
    gantry::EmbeddedConfigReader python_config;  // a gunicorn.conf.py is run by the embedded interpreter
    try {
        command = gantry::parse_command_line(argc, argv, GANTRY_VERSION, &python_config);
    } catch (const gantry::ConfigError& e) {
        std::fprintf(stderr, "gantry: error: %s\n", e.what());
        return 2;
    }
    if (command.exit_now) {
        std::fputs(command.output.c_str(), command.exit_code == 0 ? stdout : stderr);
        return command.exit_code;
    }
    if (!command.compress_static_dir.empty()) {
        try {
            auto report = gantry::precompress_tree(command.compress_static_dir, std::cout);
            std::cout.flush();
            std::printf("%llu files: %llu variants written, %llu skipped (incompressible type), %llu skipped (under 5%% saved), %llu errors\n",
                        static_cast<unsigned long long>(report.files), static_cast<unsigned long long>(report.written),
                        static_cast<unsigned long long>(report.skipped_type),
                        static_cast<unsigned long long>(report.skipped_small_gain),
                        static_cast<unsigned long long>(report.errors));
            return report.errors ? 1 : 0;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "gantry compress-static: error: %s\n", e.what());
            return 2;
        }
    }
    return gantry::run_master(command.config, std::vector<std::string>(argv, argv + argc), &python_config);
}
