#include "middleware/cache_middleware.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <ctime>

#include "cache/cache_key.hpp"
#include "cache/cached_response.hpp"
#include "cache/shared_store.hpp"

namespace gantry {
namespace {

HttpRequest get(std::string target, std::vector<HttpHeader> headers = {}) {
    HttpRequest r;
    r.method = "GET";
    r.target = std::move(target);
    r.headers = std::move(headers);
    r.headers.push_back({"Host", "example.com"});
    return r;
}

class CacheMiddlewareTest : public ::testing::Test {
protected:
    SharedStore store_{1 << 20};
    CacheMiddleware cache_{CacheOptions{}, &store_};

    // One request through the middleware; the app (when called) answers `app_head`/`app_body`.
    struct Outcome {
        Flow flow;
        ResponseHead head;
        std::string body;
        std::string timing;
    };
    Outcome run(HttpRequest request, ResponseHead app_head, std::string app_body) {
        RequestContext ctx(request);
        Outcome out;
        out.flow = cache_.on_request(ctx);
        if (out.flow == Flow::respond) {
            out.head = ctx.answer_head();
            out.body = ctx.answer_body();
        } else if (out.flow == Flow::next) {
            out.head = std::move(app_head);
            out.body = std::move(app_body);
            cache_.on_response(ctx, out.head, &out.body);
        }
        for (const auto& m : ctx.server_timing())
            if (m.name == "cache") out.timing = m.description;
        return out;
    }
    static ResponseHead ok(std::vector<HttpHeader> headers) { return ResponseHead{200, "OK", std::move(headers)}; }

    // Ages the stored copy of `target` (no Vary, no coding) by 70 s: a max-age of 60 has passed,
    // a stale-while-revalidate of 30 has not.
    void make_stale(const std::string& target) {
        std::string key = CacheKey(get(target), "example.com").variant_key({}, "");
        auto stored = store_.get(key);
        ASSERT_TRUE(stored);
        auto entry = CachedResponse::parse(stored->bytes);
        ASSERT_TRUE(entry);
        for (std::time_t* t : {&entry->stored_at, &entry->fresh_until, &entry->stale_while_revalidate_until,
                               &entry->stale_if_error_until})
            *t -= 70;
        ASSERT_TRUE(store_.set(key, entry->serialize(), 0, std::chrono::seconds(60)));
    }
    static std::string timing_of(RequestContext& ctx) {
        for (const auto& m : ctx.server_timing())
            if (m.name == "cache") return m.description;
        return {};
    }
    static inline const std::vector<HttpHeader> kSwr = {{"Cache-Control", "max-age=60, stale-while-revalidate=30"}};
};

TEST_F(CacheMiddlewareTest, StoresWhatDeclaresALifetimeAndAnswersTheNextOne) {
    auto first = run(get("/p"), ok({{"Cache-Control", "max-age=60"}}), "one");
    EXPECT_EQ(first.flow, Flow::next);
    EXPECT_EQ(first.timing, "miss");
    auto second = run(get("/p"), ok({}), "two");
    EXPECT_EQ(second.flow, Flow::respond);
    EXPECT_EQ(second.body, "one");
    EXPECT_EQ(second.timing, "hit");
    bool has_age = false;
    for (const auto& h : second.head.headers) has_age = has_age || h.name == "Age";
    EXPECT_TRUE(has_age);
}

TEST_F(CacheMiddlewareTest, AWebSocketHandshakeIsNeitherLookedUpNorStored) {
    run(get("/ws"), ok({{"Cache-Control", "max-age=60"}}), "cached page");  // a page stored at the same URL
    HttpRequest request = get("/ws");
    RequestContext ctx(request);
    ctx.mark_websocket_handshake();
    EXPECT_EQ(cache_.on_request(ctx), Flow::next);  // the stored page is not the answer
    EXPECT_FALSE(ctx.answered());
    EXPECT_EQ(ctx.state(), nullptr);  // nothing for on_response to store
    ResponseHead switching{101, "Switching Protocols", {{"Cache-Control", "max-age=60"}}};
    std::string none;
    cache_.on_response(ctx, switching, &none);
    EXPECT_EQ(switching.status, 101);
}

TEST_F(CacheMiddlewareTest, NothingWithoutALifetime) {
    run(get("/n"), ok({}), "one");
    EXPECT_EQ(run(get("/n"), ok({}), "two").body, "two");
}

TEST_F(CacheMiddlewareTest, VaryValuesAreKeys) {
    run(get("/v", {{"Cookie", "a"}}), ok({{"Cache-Control", "max-age=60"}, {"Vary", "Cookie"}}), "for a");
    EXPECT_EQ(run(get("/v", {{"Cookie", "b"}}), ok({{"Cache-Control", "max-age=60"}, {"Vary", "Cookie"}}), "for b").body, "for b");
    EXPECT_EQ(run(get("/v", {{"Cookie", "a"}}), ok({}), "x").body, "for a");
    EXPECT_EQ(run(get("/v", {{"Cookie", "b"}}), ok({}), "x").body, "for b");
}

TEST_F(CacheMiddlewareTest, AMissOfAKnownPageWaitsWhileAnotherRequestFetchesIt) {
    run(get("/w"), ok({{"Cache-Control", "max-age=60"}}), "v1");
    store_.clear();  // the entry is gone...
    run(get("/w"), ok({{"Cache-Control", "max-age=60"}}), "v2");  // ...and stored again: the URL is known
    store_.erase_prefix("gantry:page:");  // expired, say; the Vary list stays
    HttpRequest fetching = get("/w");
    RequestContext holder(fetching);
    EXPECT_EQ(cache_.on_request(holder), Flow::next);  // takes the lock
    HttpRequest waiting = get("/w");
    RequestContext waiter(waiting);
    EXPECT_EQ(cache_.on_request(waiter), Flow::wait);
    EXPECT_GT(waiter.wait_deadline(), RequestContext::WaitClock::now());
    ResponseHead head = ok({{"Cache-Control", "max-age=60"}});
    std::string body = "v3";
    cache_.on_response(holder, head, &body);  // stored
    EXPECT_EQ(cache_.on_request(waiter), Flow::respond);
    EXPECT_EQ(waiter.answer_body(), "v3");
}

TEST_F(CacheMiddlewareTest, TheLockGoesWithTheRequestHoweverItEnds) {
    run(get("/l"), ok({{"Cache-Control", "max-age=60"}}), "v1");
    store_.erase_prefix("gantry:page:");
    {
        HttpRequest r = get("/l");
        RequestContext ctx(r);
        EXPECT_EQ(cache_.on_request(ctx), Flow::next);
    }  // the app failed, the client left: no on_response
    HttpRequest r = get("/l");
    RequestContext ctx(r);
    EXPECT_EQ(cache_.on_request(ctx), Flow::next);  // not left waiting for a fetch that ended
}

TEST_F(CacheMiddlewareTest, WithinStaleWhileRevalidateEveryRequestGetsTheStaleCopyAndOneRefreshIsAskedFor) {
    run(get("/s"), ok(kSwr), "v1");
    make_stale("/s");
    HttpRequest first_request = get("/s");
    RequestContext first(first_request);
    ASSERT_EQ(cache_.on_request(first), Flow::respond);  // the lock's winner gets the stale copy too...
    EXPECT_EQ(first.answer_body(), "v1");
    EXPECT_EQ(timing_of(first), "stale");
    EXPECT_TRUE(first.background_refresh_requested());  // ...and asks for the refresh
    HttpRequest second_request = get("/s");
    RequestContext second(second_request);
    ASSERT_EQ(cache_.on_request(second), Flow::respond);
    EXPECT_EQ(second.answer_body(), "v1");
    EXPECT_EQ(timing_of(second), "stale");
    EXPECT_FALSE(second.background_refresh_requested());  // one refresh: the first holds the lock

    // The refresh: its own context, with the first's state (the lock); it goes to the app.
    HttpRequest refresh_request = get("/s");
    RequestContext refresh(refresh_request, first);
    EXPECT_TRUE(refresh.is_background_refresh());
    ASSERT_EQ(cache_.on_request(refresh), Flow::next);
    EXPECT_FALSE(refresh.answered());
    auto during = run(get("/s"), ok({}), "not called");
    EXPECT_EQ(during.body, "v1");  // still stale, still no second refresh (the lock went with it)
    EXPECT_EQ(during.timing, "stale");
    ResponseHead head = ok(kSwr);
    std::string body = "v2";
    cache_.on_response(refresh, head, &body);  // stored as for a miss
    EXPECT_EQ(body, "v2");
    auto after = run(get("/s"), ok({}), "not called");
    EXPECT_EQ(after.body, "v2");
    EXPECT_EQ(after.timing, "hit");
}

TEST_F(CacheMiddlewareTest, OnlyTheLocksWinnerAsksForARefresh) {
    run(get("/o"), ok(kSwr), "v1");
    make_stale("/o");
    HttpRequest a_request = get("/o");
    RequestContext a(a_request);
    ASSERT_EQ(cache_.on_request(a), Flow::respond);
    EXPECT_TRUE(a.background_refresh_requested());
    for (int i = 0; i < 3; ++i) {
        HttpRequest r = get("/o");
        RequestContext ctx(r);
        ASSERT_EQ(cache_.on_request(ctx), Flow::respond);
        EXPECT_FALSE(ctx.background_refresh_requested());
    }
}

TEST_F(CacheMiddlewareTest, ARefreshThatNeverRunsOrFailsLetsTheLockGoAndKeepsTheStaleCopy) {
    run(get("/f"), ok(kSwr), "v1");
    make_stale("/f");
    {
        HttpRequest r = get("/f");
        RequestContext ctx(r);
        ASSERT_EQ(cache_.on_request(ctx), Flow::respond);
        EXPECT_TRUE(ctx.background_refresh_requested());
    }  // no refresh made (the queue was full): the lock goes with the request
    {
        HttpRequest r = get("/f");
        RequestContext ctx(r);
        ASSERT_EQ(cache_.on_request(ctx), Flow::respond);
        ASSERT_TRUE(ctx.background_refresh_requested());  // the next one may refresh
        HttpRequest copy = get("/f");
        RequestContext refresh(copy, ctx);
        ASSERT_EQ(cache_.on_request(refresh), Flow::next);
    }  // the refresh failed (the app raised): no on_response, its context is dropped
    HttpRequest r = get("/f");
    RequestContext ctx(r);
    ASSERT_EQ(cache_.on_request(ctx), Flow::respond);
    EXPECT_EQ(ctx.answer_body(), "v1");  // the stale copy stays
    EXPECT_TRUE(ctx.background_refresh_requested());  // and the next refresh may run
}

TEST_F(CacheMiddlewareTest, ARefreshIsNeverAnsweredFromTheStore) {
    run(get("/r"), ok({{"Cache-Control", "max-age=60"}}), "v1");
    EXPECT_EQ(run(get("/r"), ok({}), "x").flow, Flow::respond);  // fresh: a hit
    HttpRequest original = get("/r");
    RequestContext asked(original);
    HttpRequest copy = get("/r");
    RequestContext refresh(copy, asked);
    EXPECT_EQ(cache_.on_request(refresh), Flow::next);
    ResponseHead head = ok({{"Cache-Control", "max-age=60"}});
    std::string body = "v2";
    cache_.on_response(refresh, head, &body);
    EXPECT_EQ(run(get("/r"), ok({}), "x").body, "v2");
}

TEST_F(CacheMiddlewareTest, PastStaleWhileRevalidateAMissStillFetchesInTheRequest) {
    run(get("/e"), ok({{"Cache-Control", "max-age=60"}}), "v1");  // no stale-while-revalidate
    make_stale("/e");
    HttpRequest r = get("/e");
    RequestContext ctx(r);
    EXPECT_EQ(cache_.on_request(ctx), Flow::next);
    EXPECT_FALSE(ctx.background_refresh_requested());
    EXPECT_EQ(timing_of(ctx), "miss");
}

TEST(CacheFactory, ReadsItsOptionsAndNeedsAStore) {
    CacheOptions o = cache_options(MiddlewareSpec{"cache", {{"rules", "/news/=60"}, {"lock_timeout_ms", "9999999"}}});
    ASSERT_EQ(o.rules.size(), 1u);
    EXPECT_EQ(o.rules[0].path_prefix, "/news/");
    EXPECT_EQ(o.rules[0].ttl_seconds, 60);
    EXPECT_EQ(o.lock_timeout_ms, 600000);  // capped
    EXPECT_TRUE(o.codings_below.empty());
    // The master's check: a size but no store yet.
    EXPECT_EQ(make_cache_middleware(MiddlewareSpec{"cache", {}}, {64 << 20, nullptr, nullptr, {"br", "gzip"}})->name(), "cache");
    EXPECT_THROW(make_cache_middleware(MiddlewareSpec{"cache", {}}, {0, nullptr, nullptr, {}}), ConfigError);
}

}  // namespace
}  // namespace gantry
