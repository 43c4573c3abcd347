#include "cache/redis_tier.hpp"

#include <hiredis/hiredis.h>

#include <poll.h>

#include <cerrno>
#include <chrono>

namespace gantry {

RedisTier::RedisTier(RedisSettings settings, std::size_t threads, std::size_t max_queue)
    : settings_(settings), store_(std::move(settings)), max_queue_(max_queue) {
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

RedisTier::~RedisTier() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        jobs_.clear();
    }
    ready_.notify_all();
    for (auto& t : threads_) t.join();
    stop_subscriber_ = true;
    if (subscriber_.joinable()) subscriber_.join();
}

bool RedisTier::submit(std::function<void(RedisStore&)> job) {
    if (!store_.available()) return false;
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || jobs_.size() >= max_queue_) return false;
        jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
    return true;
}

void RedisTier::run() {
    for (;;) {
        std::function<void(RedisStore&)> job;
        {
            std::unique_lock lock(mutex_);
            ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            if (stopping_) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        job(store_);
    }
}

std::size_t RedisTier::purge_everywhere(const std::vector<std::string>& patterns) {
    std::size_t removed = 0;
    for (const auto& p : patterns) {
        if (!p.empty() && p[0] == '=') removed += store_.erase(std::string_view(p).substr(1)) ? 1 : 0;
        else removed += store_.erase_prefix(p).value_or(0);
        store_.publish(kPurgeChannel, p);
    }
    return removed;
}

std::string RedisTier::from_origin(std::string_view origin, std::string_view pattern) {
    std::string message = "@";
    message.append(origin).append(" ").append(pattern);
    return message;
}

void RedisTier::subscribe_purges(std::function<void(const std::string&)> on_purge, std::string own_origin) {
    subscriber_ = std::thread([this, on_purge = std::move(on_purge), own_origin = std::move(own_origin)] {
        run_subscriber(on_purge, own_origin);
    });
}

void RedisTier::run_subscriber(std::function<void(const std::string&)> on_purge, const std::string& own_origin) {
    // "@<origin> <pattern>": this server's own change is already in its store.
    auto deliver = [&](std::string message) {
        if (!message.empty() && message[0] == '@') {
            auto space = message.find(' ');
            if (space != std::string::npos) {
                if (!own_origin.empty() && std::string_view(message).substr(1, space - 1) == own_origin) return;
                message.erase(0, space + 1);
            }
        }
        on_purge(message);
    };
    using namespace std::chrono_literals;
    timeval connect_tv{0, 200000};
    while (!stop_subscriber_) {
        redisContext* c = redisConnectWithTimeout(settings_.host.c_str(), settings_.port, connect_tv);
        bool ok = c && !c->err;
        if (ok && !settings_.password.empty()) {
            auto* r = static_cast<redisReply*>(redisCommand(c, "AUTH %s", settings_.password.c_str()));
            ok = r && r->type != REDIS_REPLY_ERROR;
            if (r) freeReplyObject(r);
        }
        if (ok) {
            auto* r = static_cast<redisReply*>(redisCommand(c, "SUBSCRIBE %s", kPurgeChannel));
            ok = r != nullptr;
            if (r) freeReplyObject(r);
        }
        // poll() with a short timeout lets the loop see stop_subscriber_ without a socket
        // timeout, after which hiredis would give the connection up (and messages could be missed).
        while (ok && !stop_subscriber_) {
            void* reply = nullptr;
            if (redisGetReplyFromReader(c, &reply) != REDIS_OK) break;
            if (reply) {
                auto* r = static_cast<redisReply*>(reply);
                if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING)
                    deliver(std::string(r->element[2]->str, r->element[2]->len));
                freeReplyObject(r);
                continue;
            }
            pollfd p{c->fd, POLLIN, 0};
            int n = ::poll(&p, 1, 250);
            if (n < 0 && errno != EINTR) break;
            if (n <= 0) continue;
            if (redisBufferRead(c) != REDIS_OK) break;
        }
        if (c) redisFree(c);
        if (!stop_subscriber_) std::this_thread::sleep_for(ok ? 10ms : 500ms);
    }
}

}  // namespace gantry
