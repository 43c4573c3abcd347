#pragma once
// --print-config: the settings in effect, as a gantry TOML config file (-c) that sets them all.
#include <string>

#include "server/config.hpp"

namespace gantry {

std::string config_as_toml(const Config& config);

}  // namespace gantry
