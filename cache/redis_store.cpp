#include "cache/redis_store.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <memory>
#include <stdexcept>

namespace gantry {

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

timeval to_timeval(std::chrono::milliseconds ms) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
}

using Reply = std::unique_ptr<redisReply, RedisStore::ReplyDeleter>;

Reply command(redisContext* c, std::initializer_list<std::string_view> args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (auto a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    return Reply(static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
}

// SCAN MATCH takes a glob: the prefix's own *, ?, [, ] and \ must match themselves.
std::string glob_escape(std::string_view prefix) {
    std::string out;
    for (char c : prefix) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
        out += c;
    }
    return out + "*";
}

}  // namespace

RedisSettings RedisSettings::from_url(std::string_view url) {
    RedisSettings s;
    constexpr std::string_view scheme = "redis://";
    if (url.substr(0, scheme.size()) != scheme)
        throw std::invalid_argument("'" + std::string(url) + "': a Redis URL starts with redis://");
    std::string_view rest = url.substr(scheme.size());
    if (auto at = rest.rfind('@'); at != std::string_view::npos) {
        std::string_view auth = rest.substr(0, at);
        if (auto colon = auth.find(':'); colon != std::string_view::npos) auth = auth.substr(colon + 1);
        s.password = std::string(auth);
        rest = rest.substr(at + 1);
    }
    std::string_view hostport = rest.substr(0, rest.find('/'));
    if (auto slash = rest.find('/'); slash != std::string_view::npos) {
        std::string_view db = rest.substr(slash + 1);
        if (!db.empty()) {
            auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), s.db);
            if (ec != std::errc{} || end != db.data() + db.size() || s.db < 0)
                throw std::invalid_argument("'" + std::string(url) + "': the database must be a number");
        }
    }
    auto parse_port = [&](std::string_view port) {
        auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), s.port);
        if (ec != std::errc{} || end != port.data() + port.size() || s.port <= 0 || s.port > 65535)
            throw std::invalid_argument("'" + std::string(url) + "': bad port");
    };
    if (!hostport.empty() && hostport.front() == '[') {  // [::1]:6379
        auto close = hostport.find(']');
        if (close == std::string_view::npos) throw std::invalid_argument("'" + std::string(url) + "': unclosed [");
        if (close + 1 < hostport.size()) {
            if (hostport[close + 1] != ':') throw std::invalid_argument("'" + std::string(url) + "': bad address");
            parse_port(hostport.substr(close + 2));
        }
        hostport = hostport.substr(1, close - 1);
    } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
        parse_port(hostport.substr(colon + 1));
        hostport = hostport.substr(0, colon);
    }
    if (!hostport.empty()) s.host = std::string(hostport);
    return s;
}

void RedisStore::ReplyDeleter::operator()(redisReply* r) const { freeReplyObject(r); }

RedisStore::RedisStore(RedisSettings settings) : settings_(std::move(settings)) {}

RedisStore::~RedisStore() {
    for (auto* c : idle_) redisFree(c);
}

redisContext* RedisStore::connect() {
    redisContext* c = redisConnectWithTimeout(settings_.host.c_str(), settings_.port, to_timeval(settings_.connect_timeout));
    if (!c) return nullptr;
    if (c->err || redisSetTimeout(c, to_timeval(settings_.io_timeout)) != REDIS_OK) {
        redisFree(c);
        return nullptr;
    }
    auto ok = [](const Reply& r) { return r && r->type != REDIS_REPLY_ERROR; };
    if (!settings_.password.empty() && !ok(command(c, {"AUTH", settings_.password}))) {
        redisFree(c);
        return nullptr;
    }
    if (settings_.db != 0 && !ok(command(c, {"SELECT", std::to_string(settings_.db)}))) {
        redisFree(c);
        return nullptr;
    }
    return c;
}

bool RedisStore::admit() {
    std::int64_t until = open_until_ns_.load(std::memory_order_acquire);
    if (until == 0) return true;
    if (now_ns() < until) return false;
    // Half-open: one trial call at a time; the rest still miss at once.
    bool expected = false;
    return trial_in_flight_.compare_exchange_strong(expected, true);
}

void RedisStore::succeeded() {
    consecutive_failures_.store(0, std::memory_order_relaxed);
    if (open_until_ns_.load(std::memory_order_relaxed) != 0) {
        open_until_ns_.store(0, std::memory_order_release);
        trial_in_flight_.store(false);
    }
}

void RedisStore::failed() {
    failures_.fetch_add(1, std::memory_order_relaxed);
    int n = consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
    bool was_trial = trial_in_flight_.exchange(false);
    if (n >= settings_.failures_to_open || was_trial) {
        if (open_until_ns_.exchange(now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(settings_.open_for).count()) == 0)
            opened_.fetch_add(1, std::memory_order_relaxed);
    }
}

bool RedisStore::with_connection(const std::function<bool(redisContext*)>& work) {
    calls_.fetch_add(1, std::memory_order_relaxed);
    if (!admit()) {
        short_circuited_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    redisContext* c = nullptr;
    {
        std::lock_guard lock(pool_mutex_);
        if (!idle_.empty()) {
            c = idle_.back();
            idle_.pop_back();
        }
    }
    if (!c) c = connect();
    if (!c) {
        failed();
        return false;
    }
    if (!work(c) || c->err) {
        redisFree(c);  // a timed-out connection may still get the late reply: never reuse it
        failed();
        return false;
    }
    succeeded();
    {
        std::lock_guard lock(pool_mutex_);
        if (idle_.size() < settings_.pool_size) c = (idle_.push_back(c), nullptr);
    }
    if (c) redisFree(c);
    return true;
}

Reply RedisStore::run(const std::function<Reply(redisContext*)>& commands) {
    Reply reply;
    if (!with_connection([&](redisContext* c) { return (reply = commands(c)) != nullptr; })) return nullptr;
    if (reply->type == REDIS_REPLY_ERROR) return nullptr;  // Redis answered: not the breaker's business
    return reply;
}

std::vector<Reply> RedisStore::pipeline(const std::vector<Command>& commands) {
    std::vector<Reply> replies;
    bool done = with_connection([&](redisContext* c) {
        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        for (const auto& command : commands) {
            argv.clear();
            lens.clear();
            for (auto a : command) {
                argv.push_back(a.data());
                lens.push_back(a.size());
            }
            if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK)
                return false;
        }
        for (std::size_t i = 0; i < commands.size(); ++i) {
            void* reply = nullptr;
            if (redisGetReply(c, &reply) != REDIS_OK || !reply) return false;
            replies.emplace_back(static_cast<redisReply*>(reply));
        }
        return true;
    });
    if (!done) replies.clear();
    return replies;
}

std::optional<std::string> RedisStore::get(std::string_view key) {
    Reply r = run([&](redisContext* c) { return command(c, {"GET", key}); });
    if (!r || r->type != REDIS_REPLY_STRING) return std::nullopt;
    return std::string(r->str, r->len);
}

bool RedisStore::set(std::string_view key, std::string_view value, std::optional<std::chrono::milliseconds> ttl) {
    Reply r = run([&](redisContext* c) {
        if (!ttl) return command(c, {"SET", key, value});
        std::string ms = std::to_string(std::max<std::int64_t>(1, ttl->count()));
        return command(c, {"SET", key, value, "PX", ms});
    });
    return r && r->type == REDIS_REPLY_STATUS;
}

bool RedisStore::erase(std::string_view key) {
    Reply r = run([&](redisContext* c) { return command(c, {"DEL", key}); });
    return r && r->type == REDIS_REPLY_INTEGER && r->integer > 0;
}

std::optional<std::size_t> RedisStore::erase_prefix(std::string_view prefix) {
    std::size_t removed = 0;
    std::string pattern = glob_escape(prefix);
    Reply r = run([&](redisContext* c) -> Reply {
        std::string cursor = "0";
        do {
            Reply page = command(c, {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
            if (!page || page->type != REDIS_REPLY_ARRAY || page->elements != 2) return page;
            cursor.assign(page->element[0]->str, page->element[0]->len);
            redisReply* keys = page->element[1];
            for (std::size_t i = 0; i < keys->elements; ++i) {
                Reply del = command(c, {"UNLINK", std::string_view(keys->element[i]->str, keys->element[i]->len)});
                if (!del) return del;
                if (del->type == REDIS_REPLY_INTEGER) removed += static_cast<std::size_t>(del->integer);
            }
            if (cursor == "0") return page;
        } while (true);
    });
    if (!r) return std::nullopt;
    return removed;
}

bool RedisStore::publish(std::string_view channel, std::string_view message) {
    Reply r = run([&](redisContext* c) { return command(c, {"PUBLISH", channel, message}); });
    return r && r->type == REDIS_REPLY_INTEGER;
}

bool RedisStore::available() const {
    std::int64_t until = open_until_ns_.load(std::memory_order_acquire);
    return until == 0 || now_ns() >= until;
}

RedisStore::Stats RedisStore::stats() const {
    Stats s;
    s.calls = calls_.load();
    s.failures = failures_.load();
    s.short_circuited = short_circuited_.load();
    s.breaker_opened = opened_.load();
    return s;
}

}  // namespace gantry
