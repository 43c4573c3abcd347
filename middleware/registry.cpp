#include "middleware/registry.hpp"

#include <algorithm>
#include <charconv>
#include <set>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "middleware/cache_middleware.hpp"
#include "middleware/compress_middleware.hpp"
#include "middleware/static_middleware.hpp"
#include "middleware/timing_middleware.hpp"
#include "http/text.hpp"

namespace gantry {

namespace {


bool parse_bool(const MiddlewareSpec& spec, const std::string& key, const std::string& value) {
    if (value == "true" || value == "1" || value == "yes" || value == "on") return true;
    if (value == "false" || value == "0" || value == "no" || value == "off") return false;
    throw ConfigError("middleware '" + spec.name + "': option '" + key + "' must be true or false, got '" + value + "'");
}

std::unique_ptr<const Middleware> make_timing(const MiddlewareSpec& spec, const ChainSettings& config,
                                              const std::vector<std::string>& names) {
    bool server_timing = config.server_timing;
    std::vector<std::string> allow = config.timing_allow_ips;
    for (const auto& [key, value] : spec.options) {
        if (key == "server_timing")
            server_timing = parse_bool(spec, key, value);
        else if (key == "allow_ips")
            allow = split_commas(value);
        else
            throw ConfigError("middleware 'timing': unknown option '" + key + "' (known: server_timing, allow_ips)");
    }
    return std::make_unique<TimingMiddleware>(server_timing, std::move(allow), names);
}

long parse_int(const MiddlewareSpec& spec, const std::string& key, const std::string& value, long lo, long hi) {
    long n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size() || n < lo || n > hi)
        throw ConfigError("middleware '" + spec.name + "': option '" + key + "' must be an integer from " +
                          std::to_string(lo) + " to " + std::to_string(hi) + ", got '" + value + "'");
    return n;
}

CompressOptions compress_options(const MiddlewareSpec& spec) {
    CompressOptions o;
    for (const auto& [key, value] : spec.options) {
        if (key == "min_length") {
            o.min_length = static_cast<std::size_t>(parse_int(spec, key, value, 0, 1L << 40));
        } else if (key == "types") {
            o.types = split_commas(value);
            for (const auto& t : o.types)
                if (std::count(t.begin(), t.end(), '*') > 1 || t.find_first_of(" ;,") != std::string::npos)
                    throw ConfigError("middleware 'compress': option 'types': '" + t +
                                      "' is not a media type pattern (at most one '*', e.g. text/*, *+json)");
            if (o.types.empty()) throw ConfigError("middleware 'compress': option 'types' is empty");
        } else if (key == "prefer") {
            o.prefer.clear();
            for (const auto& token : split_commas(value)) {
                auto coding = coding_from_token(token);
                if (!coding)
                    throw ConfigError("middleware 'compress': option 'prefer': unknown coding '" + token +
                                      "' (known: br, zstd, gzip)");
                if (std::find(o.prefer.begin(), o.prefer.end(), *coding) != o.prefer.end())
                    throw ConfigError("middleware 'compress': option 'prefer' lists '" + token + "' twice");
                o.prefer.push_back(*coding);
            }
            if (o.prefer.empty()) throw ConfigError("middleware 'compress': option 'prefer' is empty");
        } else if (key == "gzip_level") {
            o.levels.gzip = static_cast<int>(parse_int(spec, key, value, kMinLevel[1], kMaxLevel[1]));
        } else if (key == "br_level") {
            o.levels.br = static_cast<int>(parse_int(spec, key, value, kMinLevel[2], kMaxLevel[2]));
        } else if (key == "zstd_level") {
            o.levels.zstd = static_cast<int>(parse_int(spec, key, value, kMinLevel[3], kMaxLevel[3]));
        } else if (key == "breach_mitigation") {
            o.levels.breach_mitigation = parse_bool(spec, key, value);
        } else {
            throw ConfigError("middleware 'compress': unknown option '" + key +
                              "' (known: min_length, types, prefer, gzip_level, br_level, zstd_level, "
                              "breach_mitigation)");
        }
    }
    return o;
}

std::unique_ptr<const Middleware> make_compress(const MiddlewareSpec& spec) {
    return std::make_unique<CompressMiddleware>(compress_options(spec));
}

long long parse_count(const MiddlewareSpec& spec, const std::string& key, const std::string& value) {
    long long n = -1;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size() || n < 0)
        throw ConfigError("middleware '" + spec.name + "': option '" + key + "' must be a whole number >= 0, got '" + value + "'");
    return n;
}

// "/news/=60, /api/=5": URL prefixes the cache stores for that many seconds when the app declares
// no lifetime itself.
std::vector<CacheRule> parse_cache_rules(const MiddlewareSpec& spec, const std::string& value) {
    std::vector<CacheRule> rules;
    for (const auto& item : split_commas(value)) {
        auto eq = item.rfind('=');
        if (eq == std::string::npos || eq == 0 || item[0] != '/')
            throw ConfigError("middleware 'cache': option 'rules': '" + item + "' is not /url-prefix=seconds");
        rules.push_back({item.substr(0, eq), parse_count(spec, "rules", item.substr(eq + 1))});
    }
    return rules;
}

std::unique_ptr<const Middleware> make_cache(const MiddlewareSpec& spec, const ChainSettings& config,
                                             const PipelineInputs& inputs) {
    CacheOptions o;
    for (const auto& [key, value] : spec.options) {
        if (key == "rules")
            o.rules = parse_cache_rules(spec, value);
        else if (key == "max_entry_bytes")
            o.max_entry_bytes = static_cast<std::size_t>(parse_count(spec, key, value));
        else if (key == "lock_timeout_ms")
            o.lock_timeout_ms = static_cast<int>(std::min<long long>(parse_count(spec, key, value), 600000));
        else
            throw ConfigError("middleware 'cache': unknown option '" + key +
                              "' (known: rules, max_entry_bytes, lock_timeout_ms)");
    }
    // Compression below the cache: entries are its output, keyed by the coding it would choose.
    bool below = false;
    for (const auto& s : config.chain) {
        if (s.name == CacheMiddleware::kName) below = true;
        else if (below && s.name == CompressMiddleware::kName)
            for (Coding c : compress_options(s).prefer) o.codings_below.push_back(coding_token(c));
    }
    if (config.cache_size == 0) throw ConfigError("middleware 'cache' needs a store: --cache-size must be more than 0");
    // No store in the master's check (options only): that chain is never run.
    return std::make_unique<CacheMiddleware>(std::move(o), inputs.cache_store, inputs.redis_tier);
}

// The mounts: --static ones first, then the Django app's STATIC_URL (finders in DEBUG, as
// runserver; STATIC_ROOT otherwise) unless a --static mount already has that prefix.
std::unique_ptr<const Middleware> make_static(const MiddlewareSpec& spec, const ChainSettings& config,
                                              const PipelineInputs& inputs) {
    StaticOptions options;
    bool use_django = true, watch = config.static_watch;
    for (const auto& [key, value] : spec.options) {
        if (key == "max_age")
            options.max_age = parse_count(spec, key, value);
        else if (key == "cors")
            options.cors = parse_bool(spec, key, value);
        else if (key == "memory_file_max")
            options.memory.file_max = static_cast<std::uint64_t>(parse_count(spec, key, value));
        else if (key == "memory_budget")
            options.memory.budget = static_cast<std::uint64_t>(parse_count(spec, key, value));
        else if (key == "django")
            use_django = parse_bool(spec, key, value);
        else if (key == "watch")
            watch = watch || parse_bool(spec, key, value);
        else
            throw ConfigError("middleware 'static': unknown option '" + key +
                              "' (known: max_age, cors, memory_file_max, memory_budget, django, watch)");
    }
    std::vector<StaticMountSpec> mounts;
    std::vector<bool> watched;
    std::set<std::string> prefixes;
    for (const auto& [prefix, dir] : config.static_mounts) {
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            throw ConfigError("--static " + prefix + "=" + dir + ": " + dir + " is not a directory");
        std::string normal = normalize_url_prefix(prefix);
        if (!prefixes.insert(normal).second) throw ConfigError("--static: prefix " + normal + " given twice");
        mounts.push_back(StaticMountSpec{normal, {StaticSource{dir, ""}}});
        watched.push_back(watch);
    }
    const DjangoStaticSettings* django = inputs.django;
    if (use_django && django && django->found) {
        for (const auto& note : django->notes) spdlog::warn("static: {}", note);
        std::string prefix = django->static_url.empty() ? "" : normalize_url_prefix(django->static_url);
        if (prefix.empty()) {
            spdlog::info("static: STATIC_URL is not a local path; Django's static files are not served");
        } else if (prefixes.count(prefix)) {
            spdlog::info("static: {} is served from --static, not from Django's settings", prefix);
        } else if (django->debug) {
            // DEBUG: runserver's behaviour, the app directories and STATICFILES_DIRS, no collectstatic.
            mounts.push_back(StaticMountSpec{prefix, django->finder_sources});
            watched.push_back(true);
        } else if (!django->static_root.empty()) {
            struct stat st {};
            if (::stat(django->static_root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
                spdlog::warn("static: STATIC_ROOT {} is not a directory (run collectstatic); {} is not served",
                             django->static_root, prefix);
            else {
                mounts.push_back(StaticMountSpec{prefix, {StaticSource{django->static_root, ""}}});
                watched.push_back(watch);
            }
        } else {
            spdlog::info("static: STATIC_ROOT is not set; {} is left to the app", prefix);
        }
    }
    if (!inputs.index_static) {
        // The master's check: options validated, no file read (each worker indexes its own).
        mounts.clear();
        watched.clear();
    } else if (mounts.empty()) {
        spdlog::debug("static: nothing to serve; left out of the chain");
        return nullptr;
    }
    return std::make_unique<StaticMiddleware>(std::move(mounts), std::move(watched), options);
}

}  // namespace

std::unique_ptr<Pipeline> build_pipeline(const ChainSettings& config, const PipelineInputs& inputs) {
    static const std::set<std::string> known = {std::string(TimingMiddleware::kName), std::string(StaticMiddleware::kName),
                                                std::string(CompressMiddleware::kName),
                                                std::string(CacheMiddleware::kName)};
    std::vector<std::string> names;
    std::set<std::string> seen;
    for (const auto& spec : config.chain) {
        if (!known.count(spec.name)) {
            std::string list;
            for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
            throw ConfigError("unknown middleware '" + spec.name + "' (known: " + list + ")");
        }
        if (!seen.insert(spec.name).second) throw ConfigError("middleware '" + spec.name + "' is listed twice");
        names.push_back(spec.name);
    }
    if (names.size() > kMaxMiddleware)
        throw ConfigError("at most " + std::to_string(kMaxMiddleware) + " middlewares in the chain");
    auto position = [&](std::string_view name) -> std::ptrdiff_t {
        for (std::size_t i = 0; i < names.size(); ++i)
            if (names[i] == name) return static_cast<std::ptrdiff_t>(i);
        return -1;
    };
    const auto static_at = position(StaticMiddleware::kName);
    if (!config.static_mounts.empty() && static_at < 0)
        throw ConfigError("--static needs the 'static' middleware in the chain (e.g. --middleware timing,static)");
    // A static answer's body is a file or shared bytes, which only the head's hooks above it see:
    // whatever rewrites or keeps bodies belongs below it (timing,static,cache,compress).
    for (std::string_view below : {"cache", "compress"}) {
        auto at = position(below);
        if (static_at >= 0 && at >= 0 && at < static_at)
            throw ConfigError("middleware '" + std::string(below) + "' must come after 'static' in the chain");
    }
    // Timing is built last: it names the entries of the final chain, and a static middleware with
    // nothing to serve leaves the chain (its timed hooks would cost ~100 ns a request for nothing).
    std::vector<std::unique_ptr<const Middleware>> built(config.chain.size());
    std::vector<std::string> final_names;
    for (std::size_t i = 0; i < config.chain.size(); ++i) {
        const auto& spec = config.chain[i];
        if (spec.name == StaticMiddleware::kName) {
            built[i] = make_static(spec, config, inputs);
            if (!built[i]) continue;
        }
        if (spec.name == CompressMiddleware::kName) built[i] = make_compress(spec);
        if (spec.name == CacheMiddleware::kName) built[i] = make_cache(spec, config, inputs);
        final_names.push_back(spec.name);
    }
    for (std::size_t i = 0; i < config.chain.size(); ++i)
        if (config.chain[i].name == TimingMiddleware::kName)
            built[i] = make_timing(config.chain[i], config, final_names);
    std::vector<std::unique_ptr<const Middleware>> chain;
    for (auto& m : built)
        if (m) chain.push_back(std::move(m));
    return std::make_unique<Pipeline>(std::move(chain), config.timed);
}

}  // namespace gantry
