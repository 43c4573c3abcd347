#include "cache/redis_store.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

#include "tests/cache/redis_test_server.hpp"

namespace gantry {
namespace {

using namespace std::chrono_literals;

class RedisStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        settings_.port = test::free_port();
        server_ = std::make_unique<test::RedisServer>(settings_.port);
        settings_.open_for = 300ms;
    }
    RedisSettings settings_;
    std::unique_ptr<test::RedisServer> server_;
};

TEST_F(RedisStoreTest, SetGetEraseWithTtl) {
    RedisStore store(settings_);
    std::string binary("a\0b\r\n", 5);
    EXPECT_TRUE(store.set("k", binary, std::nullopt));
    EXPECT_EQ(store.get("k"), binary);
    EXPECT_FALSE(store.get("missing").has_value());
    EXPECT_TRUE(store.set("short", "x", 50ms));
    EXPECT_TRUE(store.get("short").has_value());
    std::this_thread::sleep_for(120ms);
    EXPECT_FALSE(store.get("short").has_value());
    EXPECT_TRUE(store.erase("k"));
    EXPECT_FALSE(store.erase("k"));
}

TEST_F(RedisStoreTest, ErasePrefixTakesGlobCharactersLiterally) {
    RedisStore store(settings_);
    for (int i = 0; i < 30; ++i) store.set("page:/a*/" + std::to_string(i), "x", std::nullopt);
    store.set("page:/ab/1", "x", std::nullopt);  // would match the unescaped glob page:/a*
    EXPECT_EQ(store.erase_prefix("page:/a*/"), 30u);
    EXPECT_TRUE(store.get("page:/ab/1").has_value());
}

TEST_F(RedisStoreTest, DownMeansQuickMissesThenItComesBackByItself) {
    RedisStore store(settings_);
    ASSERT_TRUE(store.set("k", "v", std::nullopt));
    server_->stop();
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 50; ++i) EXPECT_FALSE(store.get("k").has_value());
    auto took = std::chrono::steady_clock::now() - start;
    auto s = store.stats();
    EXPECT_GE(s.breaker_opened, 1u);
    EXPECT_GE(s.short_circuited, 40u);  // most calls never touched the network
    EXPECT_FALSE(store.available());
    EXPECT_LT(took, 2s);  // generous bound: the point is "not 50 connect time-outs"
    server_->start();
    std::this_thread::sleep_for(350ms);  // the breaker's open time
    bool back = false;
    for (int i = 0; i < 20 && !back; ++i) {
        back = store.set("k2", "v2", std::nullopt);
        if (!back) std::this_thread::sleep_for(50ms);
    }
    EXPECT_TRUE(back);
    EXPECT_TRUE(store.available());
    EXPECT_EQ(store.get("k2"), "v2");
}

TEST_F(RedisStoreTest, SlowRedisIsATimeoutNotAStall) {
    RedisStore store(settings_);
    store.set("k", "v", std::nullopt);
    // DEBUG SLEEP blocks the server for 1 s; our call must give up after io_timeout (50 ms).
    pid_t pid = ::fork();
    if (pid == 0) {
        std::string port = std::to_string(settings_.port);
        ::freopen("/dev/null", "w", stdout);
        ::execlp("redis-cli", "redis-cli", "-p", port.c_str(), "DEBUG", "SLEEP", "1", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    std::this_thread::sleep_for(150ms);
    auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(store.get("k").has_value());
    EXPECT_LT(std::chrono::steady_clock::now() - start, 900ms);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);  // the sleep really ran
}

TEST(RedisSettings, FromUrl) {
    auto s = RedisSettings::from_url("redis://:secret@cache.example:6380/2");
    EXPECT_EQ(s.host, "cache.example");
    EXPECT_EQ(s.port, 6380);
    EXPECT_EQ(s.db, 2);
    EXPECT_EQ(s.password, "secret");
    auto d = RedisSettings::from_url("redis://127.0.0.1");
    EXPECT_EQ(d.port, 6379);
    EXPECT_EQ(d.db, 0);
    EXPECT_EQ(RedisSettings::from_url("redis://[::1]:7000/0").host, "::1");
    EXPECT_EQ(RedisSettings::from_url("redis://[::1]:7000/0").port, 7000);
    EXPECT_THROW(RedisSettings::from_url("http://x"), std::invalid_argument);
    EXPECT_THROW(RedisSettings::from_url("redis://h:99999"), std::invalid_argument);
    EXPECT_THROW(RedisSettings::from_url("redis://h/x"), std::invalid_argument);
}

}  // namespace
}  // namespace gantry
