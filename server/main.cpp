// Wiring only: parse the command line, then hand over to the master process.
#include <cstdio>

#include "server/config.hpp"
#include "server/master.hpp"

int main(int argc, char** argv) {
    gantry::CommandLine command;
    try {
        command = gantry::parse_command_line(argc, argv, GANTRY_VERSION);
    } catch (const gantry::ConfigError& e) {
        std::fprintf(stderr, "gantry: error: %s\n", e.what());
        return 2;
    }
    if (command.exit_now) {
        std::fputs(command.output.c_str(), command.exit_code == 0 ? stdout : stderr);
        return command.exit_code;
    }
    return gantry::run_master(command.config);
}
