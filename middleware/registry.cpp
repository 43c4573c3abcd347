#include "middleware/registry.hpp"

#include <charconv>
#include <set>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "middleware/static_middleware.hpp"
#include "middleware/timing_middleware.hpp"

namespace gantry {

namespace {

std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        auto comma = text.find(',', start);
        std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        while (!item.empty() && item.front() == ' ') item.erase(item.begin());
        while (!item.empty() && item.back() == ' ') item.pop_back();
        if (!item.empty()) out.push_back(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

bool parse_bool(const MiddlewareSpec& spec, const std::string& key, const std::string& value) {
    if (value == "true" || value == "1" || value == "yes" || value == "on") return true;
    if (value == "false" || value == "0" || value == "no" || value == "off") return false;
    throw ConfigError("middleware '" + spec.name + "': option '" + key + "' must be true or false, got '" + value + "'");
}

std::unique_ptr<const Middleware> make_timing(const MiddlewareSpec& spec, const Config& config,
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

long long parse_count(const MiddlewareSpec& spec, const std::string& key, const std::string& value) {
    long long n = -1;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size() || n < 0)
        throw ConfigError("middleware '" + spec.name + "': option '" + key + "' must be a whole number >= 0, got '" + value + "'");
    return n;
}

// The mounts: --static ones first, then the Django app's STATIC_URL (finders in DEBUG, as
// runserver; STATIC_ROOT otherwise) unless a --static mount already has that prefix.
std::unique_ptr<const Middleware> make_static(const MiddlewareSpec& spec, const Config& config,
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

std::unique_ptr<Pipeline> build_pipeline(const Config& config, const PipelineInputs& inputs) {
    static const std::set<std::string> known = {std::string(TimingMiddleware::kName),
                                                std::string(StaticMiddleware::kName)};
    std::vector<std::string> names;
    std::set<std::string> seen;
    for (const auto& spec : config.middleware) {
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
    std::vector<std::unique_ptr<const Middleware>> built(config.middleware.size());
    std::vector<std::string> final_names;
    for (std::size_t i = 0; i < config.middleware.size(); ++i) {
        const auto& spec = config.middleware[i];
        if (spec.name == StaticMiddleware::kName) {
            built[i] = make_static(spec, config, inputs);
            if (!built[i]) continue;
        }
        final_names.push_back(spec.name);
    }
    for (std::size_t i = 0; i < config.middleware.size(); ++i)
        if (config.middleware[i].name == TimingMiddleware::kName)
            built[i] = make_timing(config.middleware[i], config, final_names);
    std::vector<std::unique_ptr<const Middleware>> chain;
    for (auto& m : built)
        if (m) chain.push_back(std::move(m));
    return std::make_unique<Pipeline>(std::move(chain), config.timing != "off");
}

}  // namespace gantry
