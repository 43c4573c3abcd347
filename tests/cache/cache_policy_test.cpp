#include "cache/cache_policy.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

namespace gantry {
namespace {

constexpr std::time_t kNow = 1795000000;  // 2026-11-18

HttpRequest get(std::vector<HttpHeader> headers = {}) {
    HttpRequest r;
    r.method = "GET";
    r.target = "/page";
    r.headers = std::move(headers);
    return r;
}

StorageDecision decide(const std::vector<HttpHeader>& response, const HttpRequest& request = get(), int status = 200,
                       bool streaming = false, const CachePolicy& policy = CachePolicy{}) {
    return policy.decide(request, "/page", status, response, streaming, kNow);
}

TEST(CachePolicy, OnlyDeclaredLifetimesAreStoredByDefault) {
    EXPECT_FALSE(decide({}).store);
    EXPECT_STREQ(decide({}).reason, "no-lifetime");
    auto d = decide({{"Cache-Control", "max-age=120"}});
    EXPECT_TRUE(d.store);
    EXPECT_EQ(d.ttl, 120);
}

TEST(CachePolicy, SharedMaxAgeWinsOverMaxAgeWhichWinsOverExpires) {
    EXPECT_EQ(decide({{"Cache-Control", "max-age=120, s-maxage=30"}}).ttl, 30);
    EXPECT_EQ(decide({{"Cache-Control", "max-age=120"}, {"Expires", "Thu, 01 Jan 2099 00:00:00 GMT"}}).ttl, 120);
    auto d = decide({{"Date", "Wed, 18 Nov 2026 10:00:00 GMT"}, {"Expires", "Wed, 18 Nov 2026 10:05:00 GMT"}});
    EXPECT_TRUE(d.store);
    EXPECT_EQ(d.ttl, 300);
}

TEST(CachePolicy, InvalidOrPastExpiresIsNotStored) {
    EXPECT_FALSE(decide({{"Expires", "0"}}).store);
    EXPECT_FALSE(decide({{"Expires", "Thu, 01 Jan 1970 00:00:00 GMT"}}).store);
    EXPECT_FALSE(decide({{"Cache-Control", "max-age=0"}}).store);
}

TEST(CachePolicy, PrivateNoStoreNoCacheAreRefused) {
    for (const char* cc : {"private, max-age=60", "no-store, max-age=60", "no-cache, max-age=60", "max-age=60, PRIVATE"})
        EXPECT_FALSE(decide({{"Cache-Control", cc}}).store) << cc;
}

TEST(CachePolicy, SetCookieIsNeverStored) {
    EXPECT_STREQ(decide({{"Cache-Control", "public, max-age=60"}, {"Set-Cookie", "sid=1"}}).reason, "set-cookie");
    EXPECT_FALSE(decide({{"Cache-Control", "max-age=60"}, {"set-cookie", "a=b"}}, get({{"Cookie", "x=1"}})).store);
}

TEST(CachePolicy, OnlyGetAndHeadOnly200NotStreaming) {
    HttpRequest post = get();
    post.method = "POST";
    EXPECT_FALSE(decide({{"Cache-Control", "max-age=60"}}, post).store);
    HttpRequest head = get();
    head.method = "HEAD";
    EXPECT_TRUE(decide({{"Cache-Control", "max-age=60"}}, head).store);
    EXPECT_FALSE(decide({{"Cache-Control", "max-age=60"}}, get(), 404).store);
    EXPECT_FALSE(decide({{"Cache-Control", "max-age=60"}}, get(), 200, true).store);
}

TEST(CachePolicy, AuthorizationNeedsPublic) {
    auto with_auth = get({{"Authorization", "Basic eDp5"}});
    EXPECT_STREQ(decide({{"Cache-Control", "max-age=60"}}, with_auth).reason, "authorization");
    auto d = decide({{"Cache-Control", "public, max-age=60"}}, with_auth);
    EXPECT_TRUE(d.store);
    EXPECT_TRUE(d.serves_authorized);
    EXPECT_FALSE(decide({{"Cache-Control", "max-age=60"}}).serves_authorized);
}

TEST(CachePolicy, VaryStarIsNotStored) {
    EXPECT_FALSE(decide({{"Cache-Control", "max-age=60"}, {"Vary", "Cookie, *"}}).store);
}

TEST(CachePolicy, RulesGiveALifetimeOnlyWhenTheResponseHasNone) {
    CachePolicy policy({{"/pa", 45}});
    EXPECT_EQ(decide({}, get(), 200, false, policy).ttl, 45);
    EXPECT_EQ(decide({{"Cache-Control", "max-age=5"}}, get(), 200, false, policy).ttl, 5);
    EXPECT_FALSE(decide({{"Cache-Control", "no-store"}}, get(), 200, false, policy).store);
    CachePolicy other({{"/other", 45}});
    EXPECT_FALSE(decide({}, get(), 200, false, other).store);
}

TEST(CachePolicy, StaleExtensionsUnlessMustRevalidate) {
    auto d = decide({{"Cache-Control", "max-age=60, stale-while-revalidate=30, stale-if-error=300"}});
    EXPECT_EQ(d.stale_while_revalidate, 30);
    EXPECT_EQ(d.stale_if_error, 300);
    auto strict = decide({{"Cache-Control", "max-age=60, must-revalidate, stale-if-error=300"}});
    EXPECT_TRUE(strict.store);
    EXPECT_EQ(strict.stale_if_error, 0);
}

}  // namespace
}  // namespace gantry
