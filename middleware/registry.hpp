#pragma once
// Builds the native middleware chain named in the config. Each middleware's factory validates its
// options; an unknown name or option is a ConfigError at start-up, never a surprise per request.
#include <memory>

#include "middleware/pipeline.hpp"
#include "server/config.hpp"

namespace gantry {

// Throws ConfigError naming the middleware and the option.
std::unique_ptr<Pipeline> build_pipeline(const Config& config);

}  // namespace gantry
