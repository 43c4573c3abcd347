#include "cache/shared_store.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace gantry {
namespace {

using namespace std::chrono_literals;

// "k" + std::to_string(i) trips GCC 12's false -Wrestrict; this says the same.
std::string key_of(const char* prefix, int i) {
    std::string key(prefix);
    key += std::to_string(i);
    return key;
}

template <class F>
int in_child(F body) {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::alarm(20);
        int rc = body();
        ::_exit(rc);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(SharedStore, SetGetFlagsAndReplace) {
    SharedStore store(1 << 20);
    EXPECT_FALSE(store.get("k").has_value());
    EXPECT_TRUE(store.set("k", "v1", 7, std::nullopt));
    auto v = store.get("k");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->bytes, "v1");
    EXPECT_EQ(v->flags, 7u);
    EXPECT_FALSE(v->expires.has_value());
    EXPECT_TRUE(store.set("k", std::string(1000, 'x'), 1, std::nullopt));
    EXPECT_EQ(store.get("k")->bytes.size(), 1000u);
    EXPECT_EQ(store.stats().entries, 1u);
    EXPECT_TRUE(store.set("", "", 0, std::nullopt));  // empty key and value are values like any other
    EXPECT_EQ(store.get("")->bytes, "");
}

TEST(SharedStore, TtlExpires) {
    SharedStore store(1 << 20);
    store.set("short", "a", 0, 30ms);
    store.set("long", "b", 0, 60s);
    store.set("zero", "c", 0, 0ms);
    EXPECT_FALSE(store.contains("zero"));
    EXPECT_TRUE(store.contains("short"));
    std::this_thread::sleep_for(60ms);
    EXPECT_FALSE(store.get("short").has_value());
    EXPECT_TRUE(store.get("long").has_value());
    EXPECT_EQ(store.stats().entries, 1u);  // the expired ones were removed when met
}

TEST(SharedStore, AddEraseTouch) {
    SharedStore store(1 << 20);
    EXPECT_TRUE(store.add("k", "1", 0, std::nullopt));
    EXPECT_FALSE(store.add("k", "2", 0, std::nullopt));
    EXPECT_EQ(store.get("k")->bytes, "1");
    EXPECT_TRUE(store.touch("k", 20ms));
    std::this_thread::sleep_for(40ms);
    EXPECT_TRUE(store.add("k", "3", 0, std::nullopt));  // an expired key counts as absent
    EXPECT_EQ(store.get("k")->bytes, "3");
    EXPECT_TRUE(store.erase("k"));
    EXPECT_FALSE(store.erase("k"));
    EXPECT_FALSE(store.touch("k", std::nullopt));
}

TEST(SharedStore, IncrOnDecimalIntegers) {
    SharedStore store(1 << 20);
    store.set("n", "9", 3, 60s);
    EXPECT_EQ(store.incr("n", 1), 10);  // grows: stored anew, flags and TTL kept
    auto v = store.get("n");
    EXPECT_EQ(v->bytes, "10");
    EXPECT_EQ(v->flags, 3u);
    EXPECT_TRUE(v->expires.has_value());
    EXPECT_EQ(store.incr("n", -15), -5);
    EXPECT_EQ(store.incr("n", 5), 0);
    EXPECT_EQ(store.get("n")->bytes, "0");
    EXPECT_FALSE(store.incr("missing", 1).has_value());
    store.set("s", "abc", 0, std::nullopt);
    EXPECT_FALSE(store.incr("s", 1).has_value());
    store.set("max", std::to_string(INT64_MAX), 0, std::nullopt);
    EXPECT_FALSE(store.incr("max", 1).has_value());
}

TEST(SharedStore, ErasePrefixAndClear) {
    SharedStore store(1 << 20);
    for (int i = 0; i < 10; ++i) store.set(key_of("page:/a/", i), "x", 0, std::nullopt);
    store.set("page:/b/1", "x", 0, std::nullopt);
    store.set("other", "x", 0, std::nullopt);
    EXPECT_EQ(store.erase_prefix("page:/a/"), 10u);
    EXPECT_TRUE(store.contains("page:/b/1"));
    store.clear();
    EXPECT_FALSE(store.contains("other"));
    EXPECT_EQ(store.stats().entries, 0u);
    EXPECT_EQ(store.stats().bytes_used, 0u);
}

TEST(SharedStore, LeastRecentlyUsedGoFirstWhenFull) {
    SharedStore store(256 << 10);
    std::string value(8 << 10, 'v');
    store.set("hot", value, 0, std::nullopt);
    for (int i = 0; i < 200; ++i) {
        store.set(key_of("k", i), value, 0, std::nullopt);
        ASSERT_TRUE(store.get("hot").has_value()) << "the hot entry was evicted at " << i;
    }
    auto s = store.stats();
    EXPECT_GT(s.evictions, 150u);
    EXPECT_LT(s.entries, 32u);
    EXPECT_FALSE(store.contains("k0"));
    EXPECT_TRUE(store.contains("k199"));
    EXPECT_LE(s.bytes_used, s.capacity);
}

TEST(SharedStore, TooLargeNeverFitsAndDropsTheOldValue) {
    SharedStore store(256 << 10);
    store.set("k", "small", 0, std::nullopt);
    EXPECT_FALSE(store.set("k", std::string(100 << 10, 'x'), 0, std::nullopt));
    EXPECT_FALSE(store.contains("k"));
}

TEST(SharedStore, SharedWithForkedWorkers) {
    SharedStore store(1 << 20);
    store.set("from-master", "m", 0, std::nullopt);
    int rc = in_child([&] {
        if (!store.get("from-master")) return 1;
        store.set("from-worker", "w", 0, std::nullopt);
        store.erase("from-master");
        return 0;
    });
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(store.get("from-worker")->bytes, "w");
    EXPECT_FALSE(store.contains("from-master"));
}

TEST(SharedStore, AWorkerDyingWithTheLockWipesInsteadOfHanging) {
    SharedStore store(1 << 20);
    store.set("k", "v", 0, std::nullopt);
    int rc = in_child([&] {
        store.lock_and_abandon_for_test();
        return 0;  // exits holding the lock
    });
    EXPECT_EQ(rc, 0);
    EXPECT_FALSE(store.contains("k"));  // wiped, not hung
    EXPECT_TRUE(store.set("k2", "v2", 0, std::nullopt));
    EXPECT_EQ(store.get("k2")->bytes, "v2");
    EXPECT_EQ(store.stats().wipes, 1u);
}

TEST(SharedStore, ConcurrentProcessesAndThreadsKeepItConsistent) {
    SharedStore store(512 << 10);
    auto hammer = [&store](int seed) {
        std::string value;
        for (int i = 0; i < 5000; ++i) {
            std::string key = key_of("k", (i * 7 + seed) % 300);
            value.assign(static_cast<std::size_t>((i * 13 + seed) % 4000), static_cast<char>('a' + seed % 26));
            switch (i % 5) {
            case 0: case 1: store.set(key, value, static_cast<std::uint32_t>(value.size()), std::nullopt); break;
            case 2: case 3: {
                auto v = store.get(key);
                // Whatever was read must be one whole value: its length is its flags.
                if (v && v->bytes.size() != v->flags) return false;
                break;
            }
            default: store.erase(key);
            }
        }
        return true;
    };
    // The child is forked before the thread starts: forking while another thread runs could
    // hand the child a lock that thread held (ASan's allocator's, say) and hang it.
    pid_t child = ::fork();
    if (child == 0) {
        ::alarm(20);
        ::_exit(hammer(2) ? 0 : 1);
    }
    std::atomic<bool> ok{true};
    std::thread t([&] { ok = ok && hammer(1); });
    EXPECT_TRUE(hammer(3));
    t.join();
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_TRUE(ok);
    auto s = store.stats();
    EXPECT_LE(s.entries, 300u);
    EXPECT_EQ(s.wipes, 0u);
}

}  // namespace
}  // namespace gantry
