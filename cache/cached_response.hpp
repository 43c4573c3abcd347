#pragma once
// A response as the cache keeps it, and its byte form for a store (shared memory or Redis, where
// servers of different builds may meet: the form has a version byte, and anything unreadable
// is a miss, never a crash).
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "http/response_sink.hpp"

namespace gantry {

struct CachedResponse {
    ResponseHead head;
    std::string body;
    std::time_t stored_at = 0;              // wall clock, seconds: Age is now - stored_at
    std::time_t fresh_until = 0;            // served as a hit until then
    std::time_t stale_while_revalidate_until = 0;  // then served stale while one refresh runs
    std::time_t stale_if_error_until = 0;   // and up to then in place of an error
    bool serves_authorized = false;         // may answer a request carrying Authorization

    enum class Freshness { fresh, stale_while_revalidate, stale_if_error_only, expired };
    Freshness freshness(std::time_t now) const;
    // Seconds the store must keep it: until the last moment it may still be used.
    std::time_t keep_until() const;

    std::string serialize() const;
    static std::optional<CachedResponse> parse(std::string_view bytes);
};

}  // namespace gantry
