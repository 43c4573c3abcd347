#pragma once
// One key/value store in shared memory for every worker of a server: mapped by the master before
// it forks, so a value stored by one worker is seen by all, and a purge is seen at once. A byte
// budget (the mapping's size), TTLs, and LRU eviction when full.
//
// Values are opaque bytes plus 32 bits of `flags` for the caller's own encoding, as memcached
// has; incr/decr work on values that are ASCII decimal integers, as memcached's do.
//
// Surviving a worker's death: one process-shared robust mutex guards the store. A worker that
// dies holding it (SIGKILL mid-update) leaves the structure possibly half-changed; the next
// process to lock sees EOWNERDEAD and wipes the store. A cache may forget; it may not be wrong
// or hang.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/key_value_store.hpp"

namespace gantry {

using SharedStoreStats = KeyValueStats;  // capacity: the mapping's size

class SharedStore final : public KeyValueStore {
public:

    // Maps `capacity_bytes` (at least 64 KiB) of shared anonymous memory. Throws std::system_error.
    explicit SharedStore(std::size_t capacity_bytes);
    ~SharedStore() override;
    SharedStore(const SharedStore&) = delete;
    SharedStore& operator=(const SharedStore&) = delete;

    // Copies the value out (the lock is held only for the copy). nullopt when absent or expired.
    std::optional<Value> get(std::string_view key);
    // Like get, but reuses `out`'s buffer (the hit path allocates nothing once warm).
    bool get_into(std::string_view key, Value& out) override;
    bool contains(std::string_view key) override;

    // Stores (replacing). False when the value can never fit (larger than an eighth of the
    // store), in which case any old value under the key is removed too.
    bool set(std::string_view key, std::string_view value, std::uint32_t flags, Ttl ttl) override;
    // Stores only if absent (or expired). False if present.
    bool add(std::string_view key, std::string_view value, std::uint32_t flags, Ttl ttl) override;
    bool erase(std::string_view key) override;
    // New TTL for a present key. False if absent.
    bool touch(std::string_view key, Ttl ttl) override;
    // Adds `delta` to a value that is an ASCII decimal integer (keeping its TTL and flags).
    // nullopt if absent, not an integer, or the result overflows.
    std::optional<std::int64_t> incr(std::string_view key, std::int64_t delta) override;
    // Removes every key starting with `prefix`; returns how many.
    std::size_t erase_prefix(std::string_view prefix) override;
    void clear();

    SharedStoreStats stats() override;

    // Drawn at random when the store is made (in the master, before it forks): the same in every
    // worker of this server, different on any other. Names the server in the Redis tier's purges.
    std::uint64_t id() const { return id_; }

    // A counter every worker sees, for the Redis tier: advanced before a change announced by
    // another server is applied, so a copy from Redis made meanwhile (maybe older than that
    // change) can tell, and is dropped (TieredStore).
    std::uint64_t generation() const;
    void advance_generation();

    // Test hook: lock the store and never unlock, as a worker killed mid-update would.
    void lock_and_abandon_for_test();

private:
    struct Region;
    class Guard;
    Region* region_;
    std::size_t mapped_;
    std::uint64_t id_;
};

}  // namespace gantry
