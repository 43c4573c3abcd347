#include "cache/tiered_store.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cache/redis_tier.hpp"
#include "cache/shared_store.hpp"
#include "tests/cache/redis_test_server.hpp"

namespace gantry {
namespace {

using namespace std::chrono_literals;

// One server as the worker wires it: its own shared store, a Redis tier, the purge subscriber
// that drops what other servers changed, and the tiered store Django's backend uses.
struct Server {
    explicit Server(const RedisSettings& settings) : local(1 << 20), tier(settings, 1) {
        tier.subscribe_purges([this](const std::string& message) { TieredStore::apply_purge(local, message); },
                              origin);
    }
    SharedStore local;
    RedisTier tier;
    std::string origin = std::to_string(local.id());
    TieredStore store{local, tier, origin};
};

// Polls `done` for up to 10 s: the purge channel is asynchronous, and this machine may be slow.
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds within = 10s) {
    auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
        if (done()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return done();
}

class TieredStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        settings_.port = test::free_port();
        redis_ = std::make_unique<test::RedisServer>(settings_.port);
        settings_.open_for = 300ms;
        settings_.io_timeout = 1000ms;  // a starved machine must not turn round trips into misses
        a_ = std::make_unique<Server>(settings_);
        b_ = std::make_unique<Server>(settings_);
        // Until both subscribers listen: a message published before that is not delivered.
        for (Server* s : {a_.get(), b_.get()}) ASSERT_TRUE(eventually([&] { return drained(*s, 200ms); }));
    }

    // True once `s` has applied every purge message published so far (one channel: in order).
    // A copy from Redis made while a message is in flight is dropped, rightly: tests that look
    // for a copy wait for this first.
    static bool drained(Server& s, std::chrono::milliseconds within = 10s) {
        s.local.set("drain", "x", 0, std::nullopt);
        s.tier.store().publish(RedisTier::kPurgeChannel, "=drain");
        return eventually([&] { return !s.local.contains("drain"); }, within);
    }

    RedisSettings settings_;
    std::unique_ptr<test::RedisServer> redis_;
    std::unique_ptr<Server> a_, b_;
};

TEST_F(TieredStoreTest, AValueSetOnOneServerIsReadOnAnotherWithItsFlagsAndTtl) {
    std::string binary("a\0b\r\n", 5);
    ASSERT_TRUE(a_->store.set("k", binary, 7, 60s));
    ASSERT_TRUE(a_->store.set("forever", "f", 3, std::nullopt));
    EXPECT_FALSE(b_->local.contains("k"));
    ASSERT_TRUE(drained(*b_));
    KeyValueStore::Value v;
    ASSERT_TRUE(b_->store.get_into("k", v));
    EXPECT_EQ(v.bytes, binary);
    EXPECT_EQ(v.flags, 7u);
    ASSERT_TRUE(v.expires.has_value());
    EXPECT_GT(*v.expires, KeyValueStore::Clock::now());
    EXPECT_LE(*v.expires, KeyValueStore::Clock::now() + 60s);
    // The hit is copied into B's own store, with what is left of its TTL.
    KeyValueStore::Value copy;
    ASSERT_TRUE(b_->local.get_into("k", copy));
    EXPECT_EQ(copy.bytes, binary);
    EXPECT_EQ(copy.flags, 7u);
    ASSERT_TRUE(copy.expires.has_value());
    ASSERT_TRUE(b_->store.get_into("forever", v));
    EXPECT_EQ(v.flags, 3u);
    EXPECT_FALSE(v.expires.has_value());
    EXPECT_TRUE(b_->store.contains("k"));
    EXPECT_FALSE(b_->store.contains("never-set"));
    EXPECT_FALSE(b_->store.get_into("never-set", v));
}

TEST_F(TieredStoreTest, WritesOnOneServerDropTheCopiesOfTheOthers) {
    ASSERT_TRUE(a_->store.set("k", "one", 0, std::nullopt));
    ASSERT_TRUE(drained(*b_));
    KeyValueStore::Value v;
    ASSERT_TRUE(b_->store.get_into("k", v));
    ASSERT_TRUE(b_->local.contains("k"));
    ASSERT_TRUE(a_->store.set("k", "two", 0, std::nullopt));
    EXPECT_TRUE(eventually([&] { return b_->store.get_into("k", v) && v.bytes == "two"; }));
    EXPECT_TRUE(a_->store.erase("k"));
    EXPECT_TRUE(eventually([&] { return !b_->local.contains("k"); }));
    EXPECT_FALSE(b_->store.get_into("k", v));
    EXPECT_FALSE(b_->store.erase("k"));

    // clear(): a prefix, in both tiers and every server's store.
    ASSERT_TRUE(a_->store.set("ns:1", "x", 0, std::nullopt));
    ASSERT_TRUE(a_->store.set("ns:2", "x", 0, std::nullopt));
    ASSERT_TRUE(a_->store.set("other", "x", 0, std::nullopt));
    ASSERT_TRUE(b_->store.get_into("ns:1", v));
    EXPECT_EQ(a_->store.erase_prefix("ns:"), 2u);
    EXPECT_TRUE(eventually([&] { return !b_->local.contains("ns:1"); }));
    EXPECT_FALSE(b_->store.get_into("ns:2", v));
    EXPECT_TRUE(b_->store.get_into("other", v));
}

TEST_F(TieredStoreTest, TouchReachesRedisAndTheOtherServers) {
    ASSERT_TRUE(a_->store.set("k", "v", 0, 60s));
    KeyValueStore::Value v;
    ASSERT_TRUE(b_->store.get_into("k", v));
    EXPECT_TRUE(a_->store.touch("k", std::nullopt));
    EXPECT_TRUE(eventually([&] { return b_->store.get_into("k", v) && !v.expires; }));
    EXPECT_FALSE(b_->store.touch("never-set", 10s));
}

TEST_F(TieredStoreTest, IncrementsFromTwoServersAddUpExactly) {
    ASSERT_TRUE(a_->store.set("n", "0", 1, std::nullopt));
    constexpr int kEach = 150;
    std::vector<std::int64_t> seen_a, seen_b;
    auto count = [](Server& s, std::vector<std::int64_t>& seen) {
        for (int i = 0; i < kEach; ++i) {
            auto v = s.store.incr("n", 1);
            if (v) seen.push_back(*v);
        }
    };
    std::thread ta(count, std::ref(*a_), std::ref(seen_a));
    std::thread tb(count, std::ref(*b_), std::ref(seen_b));
    ta.join();
    tb.join();
    std::set<std::int64_t> all(seen_a.begin(), seen_a.end());
    all.insert(seen_b.begin(), seen_b.end());
    ASSERT_EQ(seen_a.size() + seen_b.size(), 2u * kEach);
    EXPECT_EQ(all.size(), 2u * kEach);  // no two increments saw the same count
    EXPECT_EQ(*all.begin(), 1);
    EXPECT_EQ(*all.rbegin(), 2 * kEach);
    KeyValueStore::Value v;
    ASSERT_TRUE(eventually([&] { return b_->store.get_into("n", v) && v.bytes == std::to_string(2 * kEach); }));
    EXPECT_EQ(v.flags, 1u);  // the flags stay with the value
}

TEST_F(TieredStoreTest, IncrKeepsMemcachedsRulesAndExactIntegers) {
    EXPECT_FALSE(a_->store.incr("missing", 1).has_value());
    ASSERT_TRUE(a_->store.set("text", "abc", 3, std::nullopt));
    EXPECT_FALSE(b_->store.incr("text", 1).has_value());
    ASSERT_TRUE(a_->store.set("max", std::to_string(std::numeric_limits<std::int64_t>::max()), 1, std::nullopt));
    EXPECT_FALSE(b_->store.incr("max", 1).has_value());  // overflow
    // 2^53 + 1: a double would round it.
    ASSERT_TRUE(a_->store.set("big", "9007199254740993", 1, 60s));
    ASSERT_TRUE(drained(*b_));
    EXPECT_EQ(b_->store.incr("big", 1), 9007199254740994);
    KeyValueStore::Value v;
    ASSERT_TRUE(b_->local.get_into("big", v));  // the incrementing server keeps the new value
    EXPECT_EQ(v.bytes, "9007199254740994");
    EXPECT_TRUE(v.expires.has_value());  // and its TTL
    EXPECT_EQ(a_->store.incr("big", -4), 9007199254740990);
}

TEST_F(TieredStoreTest, AValueRedisForgotIsSeededFromTheSharedStore) {
    ASSERT_TRUE(a_->store.set("n", "41", 1, std::nullopt));
    {
        RedisStore direct(settings_);
        ASSERT_TRUE(direct.erase("n"));  // as a Redis restart would
    }
    EXPECT_EQ(a_->store.incr("n", 1), 42);
    KeyValueStore::Value v;
    ASSERT_TRUE(b_->store.get_into("n", v));
    EXPECT_EQ(v.bytes, "42");
}

TEST_F(TieredStoreTest, AddIsDecidedByRedisAcrossServers) {
    ASSERT_TRUE(a_->store.add("k", "a", 0, std::nullopt));
    EXPECT_FALSE(b_->local.contains("k"));
    EXPECT_FALSE(b_->store.add("k", "b", 0, std::nullopt));  // B's own store lacks it: Redis says no
    KeyValueStore::Value v;
    ASSERT_TRUE(b_->store.get_into("k", v));
    EXPECT_EQ(v.bytes, "a");
    // Concurrent adds of fresh keys: exactly one server wins each.
    constexpr int kKeys = 40;
    std::atomic<int> wins{0};
    auto race = [&](Server& s, const char* value) {
        for (int i = 0; i < kKeys; ++i) wins += s.store.add("race:" + std::to_string(i), value, 0, 60s) ? 1 : 0;
    };
    std::thread ta(race, std::ref(*a_), "a");
    std::thread tb(race, std::ref(*b_), "b");
    ta.join();
    tb.join();
    EXPECT_EQ(wins.load(), kKeys);
}

TEST_F(TieredStoreTest, ManyKeysInOneCall) {
    std::vector<KeyValueStore::Item> items = {{"m1", "one", 3, std::nullopt}, {"m2", "two", 2, 60s}, {"m3", "3", 1, std::nullopt}};
    ASSERT_TRUE(b_->local.set("m1", "stale", 3, std::nullopt));  // a copy B holds, which A's write replaces
    EXPECT_EQ(a_->store.set_many(items), 3u);
    std::vector<std::optional<KeyValueStore::Value>> got;
    ASSERT_TRUE(eventually([&] {
        b_->store.get_many({"m1", "absent", "m2", "m3"}, got);
        return got.size() == 4 && got[0] && got[0]->bytes == "one";
    }));
    EXPECT_FALSE(got[1].has_value());
    ASSERT_TRUE(got[2] && got[3]);
    EXPECT_EQ(got[2]->bytes, "two");
    EXPECT_EQ(got[2]->flags, 2u);
    EXPECT_TRUE(got[2]->expires.has_value());
    EXPECT_EQ(got[3]->bytes, "3");
    EXPECT_EQ(b_->store.erase_many({"m1", "m2", "absent"}), 2u);
    EXPECT_TRUE(eventually([&] { return !a_->local.contains("m1") && !a_->local.contains("m2"); }));
    a_->store.get_many({"m1", "m2", "m3"}, got);
    EXPECT_FALSE(got[0] || got[1]);
    EXPECT_TRUE(got[2].has_value());
}

TEST_F(TieredStoreTest, TooLargeForTheSharedStoreIsAbsentEverywhere) {
    ASSERT_TRUE(a_->store.set("big", "old", 0, std::nullopt));
    std::string big(300 * 1024, 'x');  // more than an eighth of the 1 MiB store
    EXPECT_FALSE(a_->store.set("big", big, 0, std::nullopt));
    KeyValueStore::Value v;
    EXPECT_FALSE(a_->store.get_into("big", v));
    EXPECT_FALSE(b_->store.get_into("big", v));
}

TEST_F(TieredStoreTest, RedisDownTheSharedStoreAloneServes) {
    ASSERT_TRUE(a_->store.set("k", "v", 0, std::nullopt));
    ASSERT_TRUE(a_->store.set("n", "1", 1, std::nullopt));
    redis_->stop();
    KeyValueStore::Value v;
    EXPECT_TRUE(a_->store.get_into("k", v));
    EXPECT_FALSE(b_->store.get_into("k", v));  // a miss, not an error
    EXPECT_TRUE(a_->store.set("k2", "v2", 0, std::nullopt));
    EXPECT_TRUE(a_->store.get_into("k2", v));
    EXPECT_EQ(a_->store.incr("n", 5), 6);
    EXPECT_FALSE(b_->store.incr("n", 1).has_value());
    EXPECT_TRUE(a_->store.add("new", "x", 0, std::nullopt));
    EXPECT_FALSE(a_->store.add("new", "y", 0, std::nullopt));
    EXPECT_TRUE(a_->store.touch("new", 60s));
    std::vector<std::optional<KeyValueStore::Value>> got;
    a_->store.get_many({"k", "k2", "absent"}, got);
    EXPECT_TRUE(got[0] && got[1] && !got[2]);
    EXPECT_EQ(a_->store.erase_many({"k", "k2"}), 2u);
    EXPECT_TRUE(a_->store.erase("new"));
    EXPECT_GE(a_->tier.store().stats().breaker_opened, 1u);
}

}  // namespace
}  // namespace gantry
