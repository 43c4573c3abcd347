#pragma once
// Builds the native middleware chain named in the config. Each middleware's factory validates its
// options; an unknown name or option is a ConfigError at start-up, never a surprise per request.
#include <memory>

#include "middleware/pipeline.hpp"
#include "server/config.hpp"
#include "static/static_settings.hpp"

namespace gantry {

class RedisTier;
class SharedStore;

// What a worker learnt once its app was loaded, for the middlewares that serve from it.
struct PipelineInputs {
    bool index_static = false;                     // false (the master's check): options only, no files read
    const DjangoStaticSettings* django = nullptr;  // the app's static settings, if a Django app
    SharedStore* cache_store = nullptr;            // the store the master shares (--cache-size > 0)
    RedisTier* redis_tier = nullptr;               // --cache redis://...: the tier behind it
};

// Throws ConfigError naming the middleware and the option.
std::unique_ptr<Pipeline> build_pipeline(const Config& config, const PipelineInputs& inputs = {});

}  // namespace gantry
