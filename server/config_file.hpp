#pragma once
// The -c TOML config file: the same settings as the flags, with underscores ("max_requests"), and
// the middleware chain as [[middleware]] tables carrying each middleware's own options.
#include <string>

#include "server/config_layer.hpp"

namespace gantry {

// What the file at `path` sets. Throws ConfigError naming the file (and the key) for a file that
// cannot be read, is not TOML, or has an unknown key or a value of the wrong type.
ConfigLayer read_config_file(const std::string& path);

}  // namespace gantry
