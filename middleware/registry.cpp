#include "middleware/registry.hpp"

#include <set>

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

}  // namespace

std::unique_ptr<Pipeline> build_pipeline(const Config& config) {
    static const std::set<std::string> known = {std::string(TimingMiddleware::kName)};
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
    std::vector<std::unique_ptr<const Middleware>> chain;
    for (const auto& spec : config.middleware) {
        if (spec.name == TimingMiddleware::kName) chain.push_back(make_timing(spec, config, names));
    }
    return std::make_unique<Pipeline>(std::move(chain), config.timing != "off");
}

}  // namespace gantry
