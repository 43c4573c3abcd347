#pragma once
// Where settings come from besides the command line, in gunicorn's order: $GANTRY_CMD_ARGS and
// $GUNICORN_CMD_ARGS (split as a shell would), the config file (a Python file executed as gunicorn
// does, or gantry's TOML file), $WEB_CONCURRENCY and $VIRTUAL_ENV.
#include <string>
#include <vector>

#include "server/config.hpp"
#include "server/config_layer.hpp"

namespace gantry {

// One gunicorn setting a Python config file set, as its module-level name held it: values as
// flag text (["3"], ["a", "b"] for a repeated one, [] for a switch that is on), or a hook.
struct PythonConfigSetting {
    std::string name;
    std::vector<std::string> values;
};

// Runs a Python config file. server/ has no interpreter: main.cpp hands in the embedded one
// (server/python_config_reader.hpp).
class PythonConfigReader {
public:
    virtual ~PythonConfigReader() = default;
    // Executes `location` (a path, file:PATH or python:module.name) as gunicorn does, with the
    // interpreter of `virtualenv` ("" : the system one), and returns the gunicorn settings among
    // its names, in the file's order (unknown names are ignored, as gunicorn ignores them).
    // Throws ConfigError with the file's traceback or the setting whose value is not usable.
    virtual std::vector<PythonConfigSetting> read(const std::string& location, const std::string& virtualenv) = 0;
};

// "a 'b c' d\"e\"" -> {a, b c, de}: the shell's word splitting, as gunicorn applies shlex.split to
// $GUNICORN_CMD_ARGS. Throws ConfigError naming `what` for an unterminated quote.
std::vector<std::string> split_shell_words(const std::string& text, const std::string& what);

// The Python settings as the flags they stand for ("--workers=3", "--preload"), plus what has no
// flag (the app of wsgi_app; hooks and file-only settings as noted ones) put into `extra`.
std::vector<std::string> python_settings_as_arguments(const std::vector<PythonConfigSetting>& settings,
                                                      ConfigLayer& extra);

}  // namespace gantry
