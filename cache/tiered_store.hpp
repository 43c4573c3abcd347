#pragma once
// The app's key/value store when the server has a Redis tier (`--cache redis://...`): the
// server's shared store in front, Redis behind it, so Django's cache API (GantryCache) is shared
// by every server using that Redis, not only by the workers of one.
//
// - Reads ask the shared store first, then Redis; a Redis hit is copied into the shared store
//   with its remaining TTL. Writes and deletes go to both.
// - Redis is the authority for what must be atomic across servers: add() is "set if absent" in
//   Redis and incr() adds in Redis (then this server's copy takes the new value).
// - Every write in Redis also publishes the key on RedisTier::kPurgeChannel, naming this server
//   (`origin`), so the other servers drop the copy their shared store may hold (the subscriber of
//   each server's first worker) and this one keeps its own.
// - Redis down (a failure, a deadline missed, the breaker open): the shared store alone serves,
//   as it does without a tier. A cache may forget; it may not fail.
//
// In Redis a value is a hash: "v" holds the bytes as the shared store keeps them and "f" the
// flags, so a value set on one server decodes on another. The multi-step operations are Lua
// scripts (atomic in Redis). Every call blocks on the network for at most the tier's deadlines:
// call it off the I/O threads (and, from Python, without the GIL).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/key_value_store.hpp"

namespace gantry {

class RedisTier;
class SharedStore;

class TieredStore final : public KeyValueStore {
public:
    // `local` and `redis` are borrowed: they outlive this store. `origin` names this server in
    // the purge messages (the same in all its workers; see SharedStore::id).
    TieredStore(SharedStore& local, RedisTier& redis, std::string origin);

    // What the server's purge subscriber does with a message ("=key" or a prefix) another
    // server published: drops it from `local`, after advancing its generation.
    static void apply_purge(SharedStore& local, std::string_view message);

    bool get_into(std::string_view key, Value& out) override;
    bool contains(std::string_view key) override;
    bool set(std::string_view key, std::string_view value, std::uint32_t flags, Ttl ttl) override;
    bool add(std::string_view key, std::string_view value, std::uint32_t flags, Ttl ttl) override;
    bool erase(std::string_view key) override;
    bool touch(std::string_view key, Ttl ttl) override;
    std::optional<std::int64_t> incr(std::string_view key, std::int64_t delta) override;
    // Both tiers; returns the larger of the two counts (an entry is usually in both).
    std::size_t erase_prefix(std::string_view prefix) override;
    KeyValueStats stats() override;  // the shared store's

    void get_many(const std::vector<std::string>& keys, std::vector<std::optional<Value>>& out) override;
    std::size_t set_many(const std::vector<Item>& entries) override;
    std::size_t erase_many(const std::vector<std::string>& keys) override;

private:
    // Copies what Redis answered into the shared store, unless another server's change was
    // announced meanwhile (the generation moved since `before`): the copy might predate it.
    void copy_in(std::string_view key, std::string_view bytes, std::uint32_t flags, Ttl ttl, std::uint64_t before);

    SharedStore& local_;
    RedisTier& redis_;
    std::string origin_;
    std::string key_tag_;  // "@<origin> =": the purge message for one key, less the key
};

}  // namespace gantry
