#pragma once
// Internal to the config: one list of arguments read into a layer (server/config.cpp), and the
// sources put together in gunicorn's order (server/config_sources.cpp).
#include <optional>
#include <string>
#include <vector>

#include "server/config.hpp"
#include "server/config_layer.hpp"

namespace gantry {

struct ArgumentsRead {
    ConfigLayer layer;
    std::optional<std::string> config_file;  // -c as given
    bool exit_now = false;                   // --help, --version, --print-settings-table
    int exit_code = 0;
    std::string output;
};

// `args` without the program name: the command line, $GUNICORN_CMD_ARGS, or a Python config
// file's settings spelled as flags. Throws ConfigError.
ArgumentsRead read_arguments(const std::vector<std::string>& args, const char* version);

CommandLine read_config_sources(const std::vector<std::string>& args, const char* version, PythonConfigReader* python);

}  // namespace gantry
