#pragma once
// Builds the native middleware chain named in the config from a table of factories (registry.cpp):
// the registry checks the chain as a whole (known names, each once, their order), each
// middleware's factory its own options. An unknown name or option is a ConfigError at start-up,
// never a surprise per request.
#include <memory>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "http/app_static_files.hpp"
#include "http/config_error.hpp"
#include "middleware/middleware_spec.hpp"
#include "middleware/pipeline.hpp"

namespace gantry {

class RedisTier;
class SharedStore;

// The settings the chain is built from (the command line's --middleware, --timing, --static, ...).
struct ChainSettings {
    std::vector<MiddlewareSpec> chain;                               // in order
    bool timed = true;                                               // --timing off: no clock read
    bool server_timing = false;                                      // --server-timing
    std::vector<std::string> timing_allow_ips;                       // --timing-allow-ips
    std::vector<std::pair<std::string, std::string>> static_mounts;  // --static URL_PREFIX=DIR
    bool static_watch = false;                                       // --static-watch
    std::size_t cache_size = 0;                                      // --cache-size (the cache needs a store)
};

// What a worker learnt once its app was loaded, for the middlewares that serve from it.
struct PipelineInputs {
    bool index_static = false;                     // false (the master's check): options only, no files read
    const DjangoStaticSettings* django = nullptr;  // the app's static settings, if a Django app
    SharedStore* cache_store = nullptr;            // the store the master shares (--cache-size > 0)
    RedisTier* redis_tier = nullptr;               // --cache redis://...: the tier behind it
};

// Throws ConfigError naming the middleware and the option.
std::unique_ptr<Pipeline> build_pipeline(const ChainSettings& settings, const PipelineInputs& inputs = {});

}  // namespace gantry
