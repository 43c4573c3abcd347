#pragma once
// The Redis tier's threads: Redis calls block (for at most their deadline), so they run here and
// never on an I/O thread. The cache middleware submits a lookup and waits for it with Flow::wait;
// stores are fire-and-forget. A full queue (Redis slower than the traffic) drops the job: a miss,
// never a stall.
//
// Purges reach every server: gantry.cache publishes the purged prefix on a Redis channel, and one
// subscriber per server (in its first worker) removes it from that server's shared store.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cache/redis_store.hpp"
#include "http/key_value_store.hpp"

namespace gantry {

class RedisTier final : public PurgeBroadcaster {
public:
    static constexpr const char* kPurgeChannel = "gantry:purge";

    RedisTier(RedisSettings settings, std::size_t threads = 2, std::size_t max_queue = 4096);
    ~RedisTier() override;  // drops queued jobs, joins
    RedisTier(const RedisTier&) = delete;
    RedisTier& operator=(const RedisTier&) = delete;

    // Runs `job` on a tier thread. False (and `job` is dropped) when the queue is full or the
    // breaker is open: the caller goes on as for a miss.
    bool submit(std::function<void(RedisStore&)> job);

    RedisStore& store() { return store_; }
    const RedisSettings& settings() const { return settings_; }

    // Removes each pattern ("=key" or a prefix) from Redis and publishes it on kPurgeChannel, so
    // every server's subscriber removes it from its own store. Blocking Redis calls, on the
    // caller's thread. Returns how many Redis keys went.
    std::size_t purge_everywhere(const std::vector<std::string>& patterns) override;

    // Subscribes to the purge channel on a thread of its own and calls `on_purge(pattern)` for
    // each message, reconnecting by itself while Redis is away. A message from `own_origin`
    // (see from_origin) is skipped: this server's store already has that change.
    void subscribe_purges(std::function<void(const std::string&)> on_purge, std::string own_origin = {});

    // A purge message that names the server it comes from: "@<origin> <pattern>". Servers'
    // messages without one ("=key" or a prefix) reach every subscriber, the sender's included.
    static std::string from_origin(std::string_view origin, std::string_view pattern);

private:
    void run();
    void run_subscriber(std::function<void(const std::string&)> on_purge, const std::string& own_origin);

    RedisSettings settings_;
    RedisStore store_;
    std::size_t max_queue_;
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::function<void(RedisStore&)>> jobs_;
    bool stopping_ = false;
    std::atomic<bool> stop_subscriber_{false};
    std::vector<std::thread> threads_;
    std::thread subscriber_;
};

}  // namespace gantry
