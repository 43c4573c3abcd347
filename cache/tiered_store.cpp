#include "cache/tiered_store.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <utility>

#include "cache/redis_tier.hpp"
#include "cache/shared_store.hpp"

namespace gantry {

namespace {

using Reply = RedisStore::Reply;
using Command = RedisStore::Command;
using Clock = KeyValueStore::Clock;

// Each script takes the key as KEYS[1] (KEYS for the delete), and the purge channel and the
// message's start ("@<origin> =") as ARGVs, so every write tells the other servers to drop their
// copy. A TTL argument of "0" means none.
constexpr std::string_view kSetScript = R"lua(
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'f', ARGV[2])
if ARGV[3] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
redis.call('PUBLISH', ARGV[4], ARGV[5] .. KEYS[1])
return 1
)lua";

constexpr std::string_view kAddScript = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'f', ARGV[2])
if ARGV[3] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
redis.call('PUBLISH', ARGV[4], ARGV[5] .. KEYS[1])
return 1
)lua";

constexpr std::string_view kDeleteScript = R"lua(
local n = 0
for _, key in ipairs(KEYS) do
  n = n + redis.call('DEL', key)
  redis.call('PUBLISH', ARGV[1], ARGV[2] .. key)
end
return n
)lua";

constexpr std::string_view kTouchScript = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '0' then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3] .. KEYS[1])
return 1
)lua";

// A key Redis lacks but this server's store has (Redis restarted, or was away when it was set)
// is seeded from that copy (ARGV[4..6]) before the addition, so the count goes on. HINCRBY
// refuses a value that is not an integer, or an overflow: an error reply, nothing published.
// The new value is read back as text: Lua's numbers are doubles and would round it.
constexpr std::string_view kIncrScript = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then
  if not ARGV[4] then return false end
  redis.call('HSET', KEYS[1], 'v', ARGV[4], 'f', ARGV[5])
  if ARGV[6] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[6]) end
end
redis.call('HINCRBY', KEYS[1], 'v', ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3] .. KEYS[1])
return {redis.call('HGET', KEYS[1], 'v'), redis.call('HGET', KEYS[1], 'f'), redis.call('PTTL', KEYS[1])}
)lua";

constexpr std::string_view kChannel = RedisTier::kPurgeChannel;

std::string ttl_arg(KeyValueStore::Ttl ttl) {
    return ttl ? std::to_string(std::max<std::int64_t>(1, ttl->count())) : std::string("0");
}

// What is left of a value's life, as a TTL (at least 1 ms: it was alive when read).
KeyValueStore::Ttl remaining(const KeyValueStore::Value& v) {
    if (!v.expires) return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*v.expires - Clock::now());
    return std::max(left, std::chrono::milliseconds(1));
}

std::string_view text(const redisReply* r) { return std::string_view(r->str, r->len); }

bool is_string(const redisReply* r) { return r && r->type == REDIS_REPLY_STRING; }

template <class Int>
bool parse(std::string_view s, Int& out) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && end == s.data() + s.size();
}

// A value from HMGET key v f and PTTL key; false for a miss (or something that is not ours).
bool value_from(const Reply& fields, const Reply& pttl, KeyValueStore::Value& out, KeyValueStore::Ttl& ttl) {
    if (!fields || fields->type != REDIS_REPLY_ARRAY || fields->elements != 2) return false;
    if (!is_string(fields->element[0]) || !is_string(fields->element[1])) return false;
    if (!pttl || pttl->type != REDIS_REPLY_INTEGER || pttl->integer == -2) return false;  // gone meanwhile
    std::uint32_t flags = 0;
    if (!parse(text(fields->element[1]), flags)) return false;
    out.bytes.assign(text(fields->element[0]));
    out.flags = flags;
    if (pttl->integer < 0) {
        ttl.reset();
        out.expires.reset();
    } else {
        ttl = std::chrono::milliseconds(std::max<long long>(1, pttl->integer));
        out.expires = Clock::now() + *ttl;
    }
    return true;
}

bool is_integer(const Reply& r) { return r && r->type == REDIS_REPLY_INTEGER; }

}  // namespace

TieredStore::TieredStore(SharedStore& local, RedisTier& redis, std::string origin)
    : local_(local), redis_(redis), origin_(std::move(origin)), key_tag_(RedisTier::from_origin(origin_, "=")) {}

void TieredStore::apply_purge(SharedStore& local, std::string_view message) {
    local.advance_generation();  // first: a copy racing with this drop sees it moved
    if (!message.empty() && message[0] == '=') local.erase(message.substr(1));
    else local.erase_prefix(message);
}

void TieredStore::copy_in(std::string_view key, std::string_view bytes, std::uint32_t flags, Ttl ttl,
                          std::uint64_t before) {
    local_.set(key, bytes, flags, ttl);
    // The purge may have dropped the key before the set above: then only this check removes
    // the older copy. (Any announced change moves the generation: some good copies go too.)
    if (local_.generation() != before) local_.erase(key);
}

bool TieredStore::get_into(std::string_view key, Value& out) {
    if (local_.get_into(key, out)) return true;
    std::uint64_t before = local_.generation();
    auto replies = redis_.store().pipeline({{"HMGET", key, "v", "f"}, {"PTTL", key}});
    Ttl ttl;
    if (replies.size() != 2 || !value_from(replies[0], replies[1], out, ttl)) return false;
    copy_in(key, out.bytes, out.flags, ttl, before);  // the next read stays on this server
    return true;
}

bool TieredStore::contains(std::string_view key) {
    if (local_.contains(key)) return true;
    auto replies = redis_.store().pipeline({{"EXISTS", key}});
    return !replies.empty() && is_integer(replies[0]) && replies[0]->integer == 1;
}

bool TieredStore::set(std::string_view key, std::string_view value, std::uint32_t flags, Ttl ttl) {
    if (!local_.set(key, value, flags, ttl)) {
        // Too large for the shared store: absent everywhere, as it is without a tier.
        erase_many({std::string(key)});
        return false;
    }
    std::string flags_arg = std::to_string(flags), ttl_ms = ttl_arg(ttl);
    redis_.store().pipeline({{"EVAL", kSetScript, "1", key, value, flags_arg, ttl_ms, kChannel, key_tag_}});
    return true;
}

bool TieredStore::add(std::string_view key, std::string_view value, std::uint32_t flags, Ttl ttl) {
    std::string flags_arg = std::to_string(flags), ttl_ms = ttl_arg(ttl);
    std::uint64_t before = local_.generation();
    auto replies = redis_.store().pipeline({{"EVAL", kAddScript, "1", key, value, flags_arg, ttl_ms, kChannel, key_tag_}});
    if (replies.empty() || !is_integer(replies[0])) return local_.add(key, value, flags, ttl);  // Redis away
    if (replies[0]->integer == 0) return false;  // another server (or this one) has it
    copy_in(key, value, flags, ttl, before);
    return true;
}

bool TieredStore::erase(std::string_view key) {
    bool here = local_.erase(key);
    auto replies = redis_.store().pipeline({{"EVAL", kDeleteScript, "1", key, kChannel, key_tag_}});
    return here || (!replies.empty() && is_integer(replies[0]) && replies[0]->integer > 0);
}

bool TieredStore::touch(std::string_view key, Ttl ttl) {
    bool here = local_.touch(key, ttl);
    std::string ttl_ms = ttl_arg(ttl);
    auto replies = redis_.store().pipeline({{"EVAL", kTouchScript, "1", key, ttl_ms, kChannel, key_tag_}});
    return here || (!replies.empty() && is_integer(replies[0]) && replies[0]->integer == 1);
}

std::optional<std::int64_t> TieredStore::incr(std::string_view key, std::int64_t delta) {
    Value seed;
    bool seeded = local_.get_into(key, seed);
    std::string delta_arg = std::to_string(delta), flags_arg, ttl_ms;
    Command command{"EVAL", kIncrScript, "1", key, delta_arg, kChannel, key_tag_};
    if (seeded) {
        flags_arg = std::to_string(seed.flags);
        ttl_ms = ttl_arg(remaining(seed));
        command.insert(command.end(), {seed.bytes, flags_arg, ttl_ms});
    }
    std::uint64_t before = local_.generation();
    auto replies = redis_.store().pipeline({command});
    if (replies.empty()) return local_.incr(key, delta);  // Redis away: this server's count goes on
    const Reply& r = replies[0];
    // nil: absent in both tiers; an error: not an integer, or the sum overflows.
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !is_string(r->element[0]) || !is_string(r->element[1]) ||
        r->element[2]->type != REDIS_REPLY_INTEGER)
        return std::nullopt;
    std::int64_t value = 0;
    std::uint32_t flags = 0;
    if (!parse(text(r->element[0]), value) || !parse(text(r->element[1]), flags)) return std::nullopt;
    Ttl ttl;
    if (r->element[2]->integer >= 0) ttl = std::chrono::milliseconds(std::max<long long>(1, r->element[2]->integer));
    copy_in(key, text(r->element[0]), flags, ttl, before);
    return value;
}

std::size_t TieredStore::erase_prefix(std::string_view prefix) {
    std::size_t here = local_.erase_prefix(prefix);
    std::size_t there = redis_.store().erase_prefix(prefix).value_or(0);
    redis_.store().publish(kChannel, RedisTier::from_origin(origin_, prefix));
    return std::max(here, there);
}

KeyValueStats TieredStore::stats() { return local_.stats(); }

void TieredStore::get_many(const std::vector<std::string>& keys, std::vector<std::optional<Value>>& out) {
    out.clear();
    out.resize(keys.size());
    std::vector<std::size_t> missed;
    std::vector<Command> commands;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        Value v;
        if (local_.get_into(keys[i], v)) {
            out[i] = std::move(v);
            continue;
        }
        missed.push_back(i);
        commands.push_back({"HMGET", keys[i], "v", "f"});
        commands.push_back({"PTTL", keys[i]});
    }
    if (missed.empty()) return;
    std::uint64_t before = local_.generation();
    auto replies = redis_.store().pipeline(commands);
    if (replies.size() != commands.size()) return;
    for (std::size_t m = 0; m < missed.size(); ++m) {
        Value v;
        Ttl ttl;
        if (!value_from(replies[2 * m], replies[2 * m + 1], v, ttl)) continue;
        copy_in(keys[missed[m]], v.bytes, v.flags, ttl, before);
        out[missed[m]] = std::move(v);
    }
}

std::size_t TieredStore::set_many(const std::vector<Item>& entries) {
    std::vector<std::string> args;  // the commands' flag and TTL texts (views point into these)
    args.reserve(2 * entries.size());
    std::vector<Command> commands;
    std::vector<std::string> too_large;
    std::size_t stored = 0;
    for (const auto& e : entries) {
        if (!local_.set(e.key, e.value, e.flags, e.ttl)) {
            too_large.push_back(e.key);
            continue;
        }
        ++stored;
        args.push_back(std::to_string(e.flags));
        const std::string& flags_arg = args.back();
        args.push_back(ttl_arg(e.ttl));
        commands.push_back({"EVAL", kSetScript, "1", e.key, e.value, flags_arg, args.back(), kChannel, key_tag_});
    }
    if (!too_large.empty()) erase_many(too_large);
    if (!commands.empty()) redis_.store().pipeline(commands);
    return stored;
}

std::size_t TieredStore::erase_many(const std::vector<std::string>& keys) {
    std::size_t here = 0;
    for (const auto& k : keys) here += local_.erase(k) ? 1 : 0;
    if (keys.empty()) return 0;
    std::string count = std::to_string(keys.size());
    Command command{"EVAL", kDeleteScript, count};
    for (const auto& k : keys) command.push_back(k);
    command.push_back(kChannel);
    command.push_back(key_tag_);
    auto replies = redis_.store().pipeline({command});
    std::size_t there = !replies.empty() && is_integer(replies[0]) ? static_cast<std::size_t>(replies[0]->integer) : 0;
    return std::max(here, there);
}

}  // namespace gantry
