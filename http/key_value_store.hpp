#pragma once
// The server's key/value store as the app side sees it (the `gantry.cache` module and Django's
// GantryCache backend): opaque bytes plus 32 bits of flags, TTLs, memcached's incr. cache/
// implements it (the shared-memory store, and the two tiers: that store with Redis behind it);
// embed/ only holds this interface.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gantry {

struct KeyValueStats {
    std::uint64_t entries = 0;
    std::uint64_t bytes_used = 0;    // by entries (keys, values and their bookkeeping)
    std::uint64_t capacity = 0;      // the store's size
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t evictions = 0;     // entries dropped to make room (not expiries)
    std::uint64_t wipes = 0;         // times a dead worker's lock made the store start over
};

class KeyValueStore {
public:
    using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC: one clock for all processes
    using Ttl = std::optional<std::chrono::milliseconds>;  // nullopt: never expires

    struct Value {
        std::string bytes;
        std::uint32_t flags = 0;
        std::optional<Clock::time_point> expires;  // nullopt: never
    };

    virtual ~KeyValueStore() = default;

    // Copies the value into `out`, reusing its buffer. False when absent or expired.
    virtual bool get_into(std::string_view key, Value& out) = 0;
    virtual bool contains(std::string_view key) = 0;
    // Stores (replacing). False when the value can never fit, in which case any old value under
    // the key is removed too.
    virtual bool set(std::string_view key, std::string_view value, std::uint32_t flags, Ttl ttl) = 0;
    // Stores only if absent (or expired). False if present.
    virtual bool add(std::string_view key, std::string_view value, std::uint32_t flags, Ttl ttl) = 0;
    virtual bool erase(std::string_view key) = 0;
    // New TTL for a present key. False if absent.
    virtual bool touch(std::string_view key, Ttl ttl) = 0;
    // Adds `delta` to a value that is an ASCII decimal integer (keeping its TTL and flags).
    // nullopt if absent, not an integer, or the result overflows.
    virtual std::optional<std::int64_t> incr(std::string_view key, std::int64_t delta) = 0;
    // Removes every key starting with `prefix`; returns how many.
    virtual std::size_t erase_prefix(std::string_view prefix) = 0;
    virtual KeyValueStats stats() = 0;

    // Many keys in one call: a store with a network tier behind it makes each one round trip.
    struct Item {
        std::string key;
        std::string value;
        std::uint32_t flags = 0;
        Ttl ttl;
    };
    // One slot per key in `out`: the value, or nullopt when absent.
    virtual void get_many(const std::vector<std::string>& keys, std::vector<std::optional<Value>>& out) {
        out.clear();
        out.resize(keys.size());
        for (std::size_t i = 0; i < keys.size(); ++i) {
            Value v;
            if (get_into(keys[i], v)) out[i] = std::move(v);
        }
    }
    // Stores each entry as set() does; returns how many were stored.
    virtual std::size_t set_many(const std::vector<Item>& entries) {
        std::size_t stored = 0;
        for (const auto& e : entries) stored += set(e.key, e.value, e.flags, e.ttl) ? 1 : 0;
        return stored;
    }
    // Returns how many of the keys were present.
    virtual std::size_t erase_many(const std::vector<std::string>& keys) {
        std::size_t erased = 0;
        for (const auto& k : keys) erased += erase(k) ? 1 : 0;
        return erased;
    }
};

// Purges that reach beyond this server: every server sharing the same tier drops the keys too.
class PurgeBroadcaster {
public:
    virtual ~PurgeBroadcaster() = default;
    // Each pattern is "=key" for one key, else a key prefix. Blocks on the network (call it
    // without the GIL); returns how many keys the shared tier removed.
    virtual std::size_t purge_everywhere(const std::vector<std::string>& patterns) = 0;
};

}  // namespace gantry
