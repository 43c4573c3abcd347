#pragma once
// The Cache-Control header (RFC 9111 §5.2) as the cache reads it: which directives are present
// and their delta-seconds. Several Cache-Control fields combine as one list.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace gantry {

struct CacheControl {
    bool is_public = false;
    bool is_private = false;
    bool no_store = false;
    bool no_cache = false;
    bool no_transform = false;
    bool must_revalidate = false;
    bool proxy_revalidate = false;
    std::optional<std::int64_t> max_age;
    std::optional<std::int64_t> s_maxage;
    std::optional<std::int64_t> stale_while_revalidate;
    std::optional<std::int64_t> stale_if_error;

    // Directive names are case-insensitive; values may be quoted. A directive whose value is not
    // delta-seconds (max-age=abc) counts as absent, except that a malformed max-age/s-maxage
    // makes the response stale at once (RFC 9111 §4.2.1: treat an invalid freshness as 0)
    // - the safe reading for a cache.
    static CacheControl parse(std::string_view value);
    static CacheControl parse(std::span<const std::string_view> values);
};

}  // namespace gantry
