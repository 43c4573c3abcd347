#pragma once
// "cache": answers cacheable GET/HEAD requests from the server's shared store without Python, and
// stores the app's cacheable responses there - by Django's caching rules (cache/cache_policy.hpp),
// opt-in per response. Placed above "compress" in the chain, it stores compressed variants, so a
// hit does no compression work.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache_policy.hpp"
#include "middleware/middleware.hpp"
#include "http/config_error.hpp"
#include "middleware/middleware_spec.hpp"

namespace gantry {

class CacheKey;
class RedisTier;
class SharedStore;
struct CacheState;

struct CacheOptions {
    std::vector<CacheRule> rules;          // URL prefixes stored for a TTL when the app gives none
    std::size_t max_entry_bytes = 8 << 20; // larger bodies are not stored
    int lock_timeout_ms = 5000;            // concurrent misses wait this long for one fetch
    // The codings the compress middleware below offers, in its order; empty when compression is not
    // below this middleware (Accept-Encoding is then keyed by its raw value).
    std::vector<std::string_view> codings_below;
};

// What its factory needs beyond the spec.
struct CacheSettings {
    std::size_t store_size = 0;     // --cache-size: 0 is no store, so no cache (an error)
    SharedStore* store = nullptr;   // the store itself; null only in the master's check
    RedisTier* redis = nullptr;     // --cache redis://...: the tier behind it, or null
    // The codings the compress entry below it offers (see CacheOptions), worked out by the registry.
    std::vector<std::string_view> codings_below;
};

class CacheMiddleware final : public Middleware {
public:
    static constexpr std::string_view kName = "cache";

    // `store` is null only in the master's check of the config, whose chain never runs.
    // `redis`: the shared tier behind it (--cache redis://...), or null.
    CacheMiddleware(CacheOptions options, SharedStore* store, RedisTier* redis = nullptr);

    std::string_view name() const override { return kName; }
    Flow on_request(RequestContext& ctx) const override;
    void on_response(RequestContext& ctx, ResponseHead& head, std::string* whole_body) const override;
    bool reads_request_in_response() const override { return true; }  // the Vary values, learnt from the response

private:
    CacheOptions options_;
    CachePolicy policy_;
    bool ask_redis(RequestContext& ctx, CacheState& state) const;
    void absorb_redis(CacheState& state, const CacheKey& key) const;

    SharedStore* store_;
    RedisTier* redis_;
};

// Throws ConfigError naming the option.
CacheOptions cache_options(const MiddlewareSpec& spec);
std::unique_ptr<const Middleware> make_cache_middleware(const MiddlewareSpec& spec, CacheSettings settings);

}  // namespace gantry
