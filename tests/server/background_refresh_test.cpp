#include "server/background_refresh.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "cache/cache_key.hpp"
#include "cache/cached_response.hpp"
#include "cache/shared_store.hpp"
#include "middleware/cache_middleware.hpp"
#include "middleware/pipeline.hpp"

namespace gantry {
namespace {

TEST(BackgroundRefresh, ItsRequestIsAPlainGetForTheWholePage) {
    HttpRequest r;
    r.method = "GET";
    r.target = "/p?x=1";
    r.headers = {{"Host", "example.com"}, {"Cookie", "a=1"}, {"If-None-Match", "\"v1\""},
                 {"If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT"}, {"Range", "bytes=0-1"},
                 {"Accept-Encoding", "gzip"}};
    r.remote_addr = "10.0.0.1";
    r.url_scheme = "https";
    HttpRequest copy = BackgroundRefresh::refresh_request(r);
    EXPECT_EQ(copy.method, "GET");
    EXPECT_EQ(copy.target, "/p?x=1");
    ASSERT_EQ(copy.headers.size(), 3u);  // what the page varies on stays, the conditions go
    EXPECT_EQ(copy.headers[0].name, "Host");
    EXPECT_EQ(copy.headers[1].name, "Cookie");
    EXPECT_EQ(copy.headers[2].name, "Accept-Encoding");
    EXPECT_EQ(copy.remote_addr, "10.0.0.1");
    EXPECT_EQ(copy.url_scheme, "https");
}

HttpRequest get(const std::string& target) {
    HttpRequest r;
    r.method = "GET";
    r.target = target;
    r.headers = {{"Host", "example.com"}};
    return r;
}

// The cache in a chain of its own, over a real store, with a page stored and then gone stale
// (within its stale-while-revalidate window).
class RefreshThroughTheCache : public ::testing::Test {
protected:
    RefreshThroughTheCache() {
        std::vector<std::unique_ptr<const Middleware>> chain;
        chain.push_back(std::make_unique<CacheMiddleware>(CacheOptions{}, &store_));
        pipeline_ = std::make_unique<Pipeline>(std::move(chain));
        EXPECT_EQ(through_chain("/p", "v1"), "v1");
        std::string key = CacheKey(get("/p"), "example.com").variant_key({}, "");
        auto entry = CachedResponse::parse(store_.get(key)->bytes);
        for (std::time_t* t : {&entry->stored_at, &entry->fresh_until, &entry->stale_while_revalidate_until})
            *t -= 70;  // max-age=60 has passed, stale-while-revalidate=30 has not
        store_.set(key, entry->serialize(), 0, std::chrono::seconds(60));
    }
    // One request: the cache's answer, or the app's (`app_body`) as the cache saw it go out.
    std::string through_chain(const std::string& target, std::string app_body) {
        HttpRequest r = get(target);
        RequestContext ctx(r);
        std::size_t entered = pipeline_->run_request(ctx);
        if (ctx.answered()) return ctx.answer_body();
        ResponseHead head{200, "OK", {{"Cache-Control", "max-age=60, stale-while-revalidate=30"}}};
        pipeline_->run_response(ctx, head, &app_body, entered);
        return app_body;
    }
    // A stale answer's request, and the refresh it asked for (started).
    std::unique_ptr<BackgroundRefresh> stale_answer_and_its_refresh() {
        HttpRequest r = get("/p");
        RequestContext ctx(r);
        pipeline_->run_request(ctx);
        EXPECT_EQ(ctx.answer_body(), "v1");
        EXPECT_TRUE(ctx.background_refresh_requested());
        auto refresh = std::make_unique<BackgroundRefresh>(*pipeline_, ctx);
        EXPECT_TRUE(refresh->start());
        return refresh;
    }
    static RefreshAnswer answer(int status, std::string body) {
        return RefreshAnswer{RefreshAnswer::Kind::whole,
                             ResponseHead{status, "X", {{"Cache-Control", "max-age=60, stale-while-revalidate=30"}}},
                             std::move(body)};
    }

    SharedStore store_{1 << 20};
    std::unique_ptr<Pipeline> pipeline_;
};

TEST_F(RefreshThroughTheCache, TheAppsAnswerIsStoredAndServedNext) {
    auto refresh = stale_answer_and_its_refresh();
    EXPECT_EQ(through_chain("/p", "not called"), "v1");  // stale while the refresh runs
    refresh->complete(answer(200, "v2"));
    EXPECT_EQ(through_chain("/p", "not called"), "v2");
}

TEST_F(RefreshThroughTheCache, AnErrorOrAStreamKeepsTheStaleCopyAndTheNextRefreshWorks) {
    stale_answer_and_its_refresh()->complete(answer(500, "broken"));
    stale_answer_and_its_refresh()->complete(RefreshAnswer{RefreshAnswer::Kind::streamed, {}, {}});
    stale_answer_and_its_refresh()->complete(RefreshAnswer{RefreshAnswer::Kind::failed, {}, {}});
    stale_answer_and_its_refresh().reset();  // dropped unrun (a stopped I/O thread)
    EXPECT_EQ(through_chain("/p", "not called"), "v1");
    stale_answer_and_its_refresh()->complete(answer(200, "v2"));
    EXPECT_EQ(through_chain("/p", "not called"), "v2");
}

}  // namespace
}  // namespace gantry
