#include "middleware/middleware_options.hpp"

#include <charconv>

#include "http/text.hpp"

namespace gantry {

void option_error(const MiddlewareSpec& spec, const std::string& detail) {
    throw ConfigError("middleware '" + spec.name + "': " + detail);
}

void unknown_option(const MiddlewareSpec& spec, const std::string& key, std::string_view known) {
    option_error(spec, "unknown option '" + key + "' (known: " + std::string(known) + ")");
}

bool bool_option(const MiddlewareSpec& spec, const std::string& key, const std::string& value) {
    if (value == "true" || value == "1" || value == "yes" || value == "on") return true;
    if (value == "false" || value == "0" || value == "no" || value == "off") return false;
    option_error(spec, "option '" + key + "' must be true or false, got '" + value + "'");
}

long int_option(const MiddlewareSpec& spec, const std::string& key, const std::string& value, long lo, long hi) {
    long n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size() || n < lo || n > hi)
        option_error(spec, "option '" + key + "' must be an integer from " + std::to_string(lo) + " to " +
                               std::to_string(hi) + ", got '" + value + "'");
    return n;
}

long long count_option(const MiddlewareSpec& spec, const std::string& key, const std::string& value) {
    long long n = -1;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size() || n < 0)
        option_error(spec, "option '" + key + "' must be a whole number >= 0, got '" + value + "'");
    return n;
}

std::vector<std::string> list_option(const std::string& value) { return split_commas(value); }

}  // namespace gantry
