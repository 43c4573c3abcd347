#pragma once
// The shared cache tier: a Redis server every gantry behind a load balancer uses, through hiredis.
// Redis slow or down must mean cache misses, never errors or stalled requests: every call has a
// short deadline, and a circuit breaker stops calling for a while after consecutive failures, then
// lets one call through to see whether Redis is back.
//
// Calls block for at most the I/O timeout: they are made off the I/O threads.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisContext;
struct redisReply;

namespace gantry {

struct RedisSettings {
    std::string host = "127.0.0.1";
    int port = 6379;
    int db = 0;
    std::string password;
    std::chrono::milliseconds connect_timeout{100};
    std::chrono::milliseconds io_timeout{50};
    std::size_t pool_size = 4;                  // idle connections kept
    int failures_to_open = 3;                   // consecutive failures that open the breaker
    std::chrono::milliseconds open_for{1000};   // how long it stays open before a trial call

    // "redis://[:password@]host[:port][/db]"; throws std::invalid_argument with a clear message.
    static RedisSettings from_url(std::string_view url);
};

class RedisStore {
public:
    explicit RedisStore(RedisSettings settings);
    ~RedisStore();
    RedisStore(const RedisStore&) = delete;
    RedisStore& operator=(const RedisStore&) = delete;

    // nullopt on a miss and on any failure (which the breaker counts).
    std::optional<std::string> get(std::string_view key);
    // SET with PX when `ttl` is given. False on failure.
    bool set(std::string_view key, std::string_view value, std::optional<std::chrono::milliseconds> ttl);
    bool erase(std::string_view key);
    // SCAN for the prefix (glob characters escaped) and UNLINK what it finds; nullopt on failure.
    std::optional<std::size_t> erase_prefix(std::string_view prefix);

    // PUBLISH; false on failure.
    bool publish(std::string_view channel, std::string_view message);

    struct ReplyDeleter {  // hiredis's freeReplyObject, without its header here
        void operator()(redisReply* r) const;
    };
    using Reply = std::unique_ptr<redisReply, ReplyDeleter>;
    using Command = std::vector<std::string_view>;  // the command's name and its arguments

    // Sends every command at once on one connection and reads the replies (one round trip),
    // under the breaker. The replies in order, Redis errors included (as error replies); empty
    // when short-circuited or failed.
    std::vector<Reply> pipeline(const std::vector<Command>& commands);

    // False while the breaker is open (calls return at once).
    bool available() const;

    struct Stats {
        std::uint64_t calls = 0, failures = 0, short_circuited = 0, breaker_opened = 0;
    };
    Stats stats() const;

private:
    // Runs `commands` on a pooled connection under the breaker. nullptr: short-circuited, failed
    // (the breaker counts it) or an error reply.
    Reply run(const std::function<Reply(redisContext*)>& commands);
    // Gives `work` a pooled connection under the breaker. False: short-circuited, or `work`
    // failed (returned false, or the connection broke), which the breaker counts.
    bool with_connection(const std::function<bool(redisContext*)>& work);
    redisContext* connect();
    bool admit();
    void succeeded();
    void failed();

    RedisSettings settings_;
    std::mutex pool_mutex_;
    std::vector<redisContext*> idle_;
    std::atomic<int> consecutive_failures_{0};
    std::atomic<std::int64_t> open_until_ns_{0};  // steady clock; 0: closed
    std::atomic<bool> trial_in_flight_{false};
    std::atomic<std::uint64_t> calls_{0}, failures_{0}, short_circuited_{0}, opened_{0};
};

}  // namespace gantry
