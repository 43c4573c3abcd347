#include "cache/cache_policy.hpp"

#include <cctype>
#include <cstring>

#include "cache/cache_control.hpp"
#include "http/http_date.hpp"
#include "http/header_fields.hpp"

namespace gantry {

namespace {



}  // namespace

bool CachePolicy::may_lookup(const HttpRequest& request) {
    return request.method == "GET" || request.method == "HEAD";
}

StorageDecision CachePolicy::decide(const HttpRequest& request, std::string_view path, int status,
                                    const std::vector<HttpHeader>& response_headers, bool streaming,
                                    std::time_t now) const {
    StorageDecision d;
    auto refuse = [](const char* reason) {
        StorageDecision no;
        no.reason = reason;
        return no;
    };
    if (!may_lookup(request)) return refuse("method");
    if (status != 200) return refuse("status");
    if (streaming) return refuse("streaming");

    std::vector<std::string_view> cc_values;
    for (const auto& h : response_headers)
        if (iequals(h.name, "Cache-Control")) cc_values.push_back(h.value);
    CacheControl cc = CacheControl::parse(cc_values);
    if (cc.is_private) return refuse("private");
    if (cc.no_store) return refuse("no-store");
    if (cc.no_cache) return refuse("no-cache");
    // A cookie set by the response belongs to one client: never stored, whatever the request had.
    if (find_field(response_headers, "Set-Cookie")) return refuse("set-cookie");
    for (const auto& h : response_headers)
        if (iequals(h.name, "Vary") && list_contains(h.value, "*")) return refuse("vary-star");

    // RFC 9111 §3.5: a response to a request with Authorization is shared only if it says so.
    d.serves_authorized = cc.is_public || cc.s_maxage.has_value() || cc.must_revalidate;
    if (request.find_header("Authorization") && !d.serves_authorized) return refuse("authorization");

    std::optional<std::int64_t> lifetime;
    if (cc.s_maxage) lifetime = cc.s_maxage;
    else if (cc.max_age) lifetime = cc.max_age;
    else if (const HttpHeader* expires = find_field(response_headers, "Expires")) {
        auto at = parse_http_date(expires->value);
        std::time_t base = now;
        if (const HttpHeader* date = find_field(response_headers, "Date"))
            if (auto parsed = parse_http_date(date->value)) base = *parsed;
        lifetime = at ? std::max<std::int64_t>(0, *at - base) : 0;  // an invalid Expires is in the past
    }
    if (!lifetime) {
        for (const auto& rule : rules_)
            if (path.substr(0, rule.path_prefix.size()) == rule.path_prefix) {
                lifetime = rule.ttl_seconds;
                break;
            }
        if (!lifetime) return refuse("no-lifetime");
    }
    if (*lifetime <= 0) return refuse("zero-lifetime");

    d.store = true;
    d.ttl = *lifetime;
    // must-revalidate forbids serving stale (RFC 9111 §5.2.2.2), so both stale extensions lapse.
    if (!cc.must_revalidate && !cc.proxy_revalidate) {
        d.stale_while_revalidate = cc.stale_while_revalidate.value_or(0);
        d.stale_if_error = cc.stale_if_error.value_or(0);
    }
    return d;
}

}  // namespace gantry
