#include "cache/cache_control.hpp"
#include "http/header_fields.hpp"

#include <cctype>
#include <charconv>
#include <limits>

namespace gantry {

namespace {



// delta-seconds; an overflow saturates (RFC 9111 §1.2.2: 2^31 means "forever" enough).
std::optional<std::int64_t> parse_delta(std::string_view v) {
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (v.empty()) return std::nullopt;
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec == std::errc::result_out_of_range && end == v.data() + v.size()) return std::int64_t{1} << 31;
    if (ec != std::errc{} || end != v.data() + v.size() || n < 0) return std::nullopt;
    return n;
}


void apply(CacheControl& cc, std::string_view element) {
    std::string_view name = element, value;
    bool has_value = false;
    if (auto eq = element.find('='); eq != std::string_view::npos) {
        name = trim(element.substr(0, eq));
        value = trim(element.substr(eq + 1));
        has_value = true;
    }
    auto delta = [&](std::optional<std::int64_t>& slot, bool invalid_means_zero) {
        auto parsed = has_value ? parse_delta(value) : std::nullopt;
        if (parsed) slot = slot ? std::min(*slot, *parsed) : *parsed;  // repeated: the stricter
        else if (invalid_means_zero) slot = 0;
    };
    if (iequals(name, "public")) cc.is_public = true;
    else if (iequals(name, "private")) cc.is_private = true;
    else if (iequals(name, "no-store")) cc.no_store = true;
    else if (iequals(name, "no-cache")) cc.no_cache = true;
    else if (iequals(name, "no-transform")) cc.no_transform = true;
    else if (iequals(name, "must-revalidate")) cc.must_revalidate = true;
    else if (iequals(name, "proxy-revalidate")) cc.proxy_revalidate = true;
    else if (iequals(name, "max-age")) delta(cc.max_age, true);
    else if (iequals(name, "s-maxage")) delta(cc.s_maxage, true);
    else if (iequals(name, "stale-while-revalidate")) delta(cc.stale_while_revalidate, false);
    else if (iequals(name, "stale-if-error")) delta(cc.stale_if_error, false);
    // Anything else (extensions) is ignored, as RFC 9111 §5.2.3 says.
}

}  // namespace

CacheControl CacheControl::parse(std::string_view value) {
    CacheControl cc;
    for_each_list_element(value, [&](std::string_view e) { apply(cc, e); });
    return cc;
}

CacheControl CacheControl::parse(std::span<const std::string_view> values) {
    CacheControl cc;
    for (auto v : values) for_each_list_element(v, [&](std::string_view e) { apply(cc, e); });
    return cc;
}


}  // namespace gantry
