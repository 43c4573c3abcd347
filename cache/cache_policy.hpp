#pragma once
// Which responses the cache may store and serve, and for how long: the rules of Django's
// UpdateCacheMiddleware/FetchFromCacheMiddleware and RFC 9111 for a shared cache, made opt-in
// so that turning the cache on never caches a page the app did not mean to.
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/request.hpp"

namespace gantry {

// A configured URL rule: paths starting with `path_prefix` may be stored for `ttl_seconds` when
// the response itself declares no lifetime.
struct CacheRule {
    std::string path_prefix;
    std::int64_t ttl_seconds = 0;
};

struct StorageDecision {
    bool store = false;
    const char* reason = "";                 // why not (for the debug log and the tests)
    std::int64_t ttl = 0;                    // seconds fresh
    std::int64_t stale_while_revalidate = 0; // seconds after that a stale copy may be served while one refresh runs
    std::int64_t stale_if_error = 0;         // seconds after that a stale copy may stand in for an error
    bool serves_authorized = false;          // may answer requests that carry Authorization
};

class CachePolicy {
public:
    explicit CachePolicy(std::vector<CacheRule> rules = {}) : rules_(std::move(rules)) {}

    // Whether a request may be looked up at all: GET or HEAD. (A request with Authorization may
    // only be answered by an entry whose decision said serves_authorized.)
    static bool may_lookup(const HttpRequest& request);

    // `request_headers`: the request's headers; `path`: its decoded path; `status` and
    // `response_headers`: the final response; `streaming`: the body was not known whole;
    // `now`: the wall clock, for Expires.
    StorageDecision decide(const HttpRequest& request, std::string_view path, int status,
                           const std::vector<HttpHeader>& response_headers, bool streaming,
                           std::time_t now) const;

private:
    std::vector<CacheRule> rules_;
};

}  // namespace gantry
