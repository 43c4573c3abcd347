#include "http/http_date.hpp"

namespace gantry {

std::optional<std::time_t> parse_http_date(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    std::string s(text);
    // The literal "GMT" is in each format: strptime's %Z would take any zone name.
    for (const char* format : {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
        std::tm tm{};
        const char* end = ::strptime(s.c_str(), format, &tm);
        if (end && *end == '\0') return ::timegm(&tm);
    }
    return std::nullopt;
}

std::string format_http_date(std::time_t when) {
    std::tm tm{};
    ::gmtime_r(&when, &tm);
    char buf[64];
    std::size_t n = std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return std::string(buf, n);
}

}  // namespace gantry
