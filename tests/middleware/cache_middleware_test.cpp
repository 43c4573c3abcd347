#include "middleware/cache_middleware.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

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
