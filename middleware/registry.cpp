#include "middleware/registry.hpp"

#include <algorithm>
#include <set>

#include "middleware/cache_middleware.hpp"
#include "middleware/compress_middleware.hpp"
#include "middleware/static_middleware.hpp"
#include "middleware/timing_middleware.hpp"

namespace gantry {

namespace {

// What the registry knows while it builds a chain. A factory line of the table takes from it only
// what its middleware uses, so no middleware sees the whole configuration.
struct ChainBuild {
    const ChainSettings& settings;
    const PipelineInputs& inputs;
    std::size_t at = 0;                    // the entry being built
    std::vector<std::string> final_names;  // the chain as it ends up (for the after_chain entries)

    // The codings the compress entry below this one offers (a name is listed once), in its order:
    // what a cache here keys its compressed variants by.
    std::vector<std::string_view> codings_below() const {
        std::vector<std::string_view> codings;
        for (std::size_t i = at + 1; i < settings.chain.size(); ++i)
            if (settings.chain[i].name == CompressMiddleware::kName)
                for (Coding c : compress_options(settings.chain[i]).prefer) codings.push_back(coding_token(c));
        return codings;
    }
};

enum class Phase {
    chain,        // built in chain order; may return nullptr to leave the chain
    after_chain,  // built once the others are, to know the final chain; always stays in it
};

struct MiddlewareFactory {
    std::string_view name;
    Phase phase;
    std::unique_ptr<const Middleware> (*make)(const MiddlewareSpec&, const ChainBuild&);
};

// Every native middleware: its name, when it is built, and the settings it gets.
const MiddlewareFactory kFactories[] = {
    // Timing names the entries of the final chain, and a static middleware with nothing to serve
    // leaves the chain (its timed hooks would cost ~100 ns a request for nothing): built last.
    {TimingMiddleware::kName, Phase::after_chain,
     [](const MiddlewareSpec& spec, const ChainBuild& b) {
         return make_timing_middleware(spec, {{b.settings.server_timing, b.settings.timing_allow_ips}, b.final_names});
     }},
    {StaticMiddleware::kName, Phase::chain,
     [](const MiddlewareSpec& spec, const ChainBuild& b) {
         return make_static_middleware(
             spec, {b.settings.static_mounts, b.settings.static_watch, b.inputs.index_static, b.inputs.django});
     }},
    {CacheMiddleware::kName, Phase::chain,
     [](const MiddlewareSpec& spec, const ChainBuild& b) {
         return make_cache_middleware(
             spec, {b.settings.cache_size, b.inputs.cache_store, b.inputs.redis_tier, b.codings_below()});
     }},
    {CompressMiddleware::kName, Phase::chain,
     [](const MiddlewareSpec& spec, const ChainBuild&) { return make_compress_middleware(spec); }},
};

// `later` must come after `earlier` when both are in the chain.
struct OrderRule {
    std::string_view later, earlier;
};

// A static answer's body is a file or shared bytes, which only the head's hooks above it see:
// whatever rewrites or keeps bodies belongs below it (timing,static,cache,compress).
constexpr OrderRule kOrderRules[] = {
    {CacheMiddleware::kName, StaticMiddleware::kName},
    {CompressMiddleware::kName, StaticMiddleware::kName},
};

const MiddlewareFactory* factory_of(std::string_view name) {
    for (const auto& f : kFactories)
        if (f.name == name) return &f;
    return nullptr;
}

std::string known_names() {
    std::vector<std::string> names;
    for (const auto& f : kFactories) names.emplace_back(f.name);
    std::sort(names.begin(), names.end());
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    return list;
}

// The checks across entries: known names, each once, within the runner's limit, in an order that works.
void check_chain(const ChainSettings& settings) {
    std::set<std::string> seen;
    for (const auto& spec : settings.chain) {
        if (!factory_of(spec.name))
            throw ConfigError("unknown middleware '" + spec.name + "' (known: " + known_names() + ")");
        if (!seen.insert(spec.name).second) throw ConfigError("middleware '" + spec.name + "' is listed twice");
    }
    if (settings.chain.size() > kMaxMiddleware)
        throw ConfigError("at most " + std::to_string(kMaxMiddleware) + " middlewares in the chain");
    auto position = [&](std::string_view name) -> std::ptrdiff_t {
        for (std::size_t i = 0; i < settings.chain.size(); ++i)
            if (settings.chain[i].name == name) return static_cast<std::ptrdiff_t>(i);
        return -1;
    };
    if (!settings.static_mounts.empty() && position(StaticMiddleware::kName) < 0)
        throw ConfigError("--static needs the 'static' middleware in the chain (e.g. --middleware timing,static)");
    for (const auto& rule : kOrderRules) {
        auto later = position(rule.later), earlier = position(rule.earlier);
        if (earlier >= 0 && later >= 0 && later < earlier)
            throw ConfigError("middleware '" + std::string(rule.later) + "' must come after '" +
                              std::string(rule.earlier) + "' in the chain");
    }
}

}  // namespace

std::unique_ptr<Pipeline> build_pipeline(const ChainSettings& settings, const PipelineInputs& inputs) {
    check_chain(settings);
    const auto& chain = settings.chain;
    ChainBuild build{settings, inputs, 0, {}};
    std::vector<std::unique_ptr<const Middleware>> built(chain.size());
    for (std::size_t i = 0; i < chain.size(); ++i) {
        const MiddlewareFactory& factory = *factory_of(chain[i].name);
        if (factory.phase == Phase::chain) {
            build.at = i;
            built[i] = factory.make(chain[i], build);
            if (!built[i]) continue;  // nothing to do: left out of the chain
        }
        build.final_names.push_back(chain[i].name);
    }
    for (std::size_t i = 0; i < chain.size(); ++i) {
        const MiddlewareFactory& factory = *factory_of(chain[i].name);
        if (factory.phase == Phase::after_chain) {
            build.at = i;
            built[i] = factory.make(chain[i], build);
        }
    }
    std::vector<std::unique_ptr<const Middleware>> pipeline;
    for (auto& m : built)
        if (m) pipeline.push_back(std::move(m));
    return std::make_unique<Pipeline>(std::move(pipeline), settings.timed);
}

}  // namespace gantry
