#include "server/native_endpoints.hpp"  // first: the header stands alone

#include <gtest/gtest.h>

#include "server/load_board.hpp"
#include "server/metrics_store.hpp"

namespace gantry {
namespace {

HttpRequest get(std::string target) {
    HttpRequest r;
    r.method = "GET";
    r.target = std::move(target);
    return r;
}

std::string header(const ResponseHead& head, std::string_view name) {
    for (const auto& h : head.headers)
        if (h.name == name) return h.value;
    return "<none>";
}

TEST(HealthEndpoint, WithoutAPathAnswersNothing) {
    HealthEndpoint health;
    EXPECT_FALSE(health.enabled());
    EXPECT_FALSE(health.answer(get("/"), false));
    EXPECT_FALSE(health.answer(get("/ready"), false));
}

TEST(HealthEndpoint, LivenessIsOkEvenWhileDraining) {
    HealthEndpoint health("/healthz");
    ASSERT_TRUE(health.enabled());
    for (bool draining : {false, true}) {
        auto answer = health.answer(get("/healthz"), draining);
        ASSERT_TRUE(answer);
        EXPECT_EQ(answer->head.status, 200);
        EXPECT_EQ(answer->head.reason, "OK");
        EXPECT_EQ(answer->body, "ok\n");
        EXPECT_EQ(header(answer->head, "Content-Type"), "text/plain; charset=utf-8");
        EXPECT_EQ(header(answer->head, "Cache-Control"), "no-store");
    }
}

TEST(HealthEndpoint, ReadinessFailsWhileDraining) {
    HealthEndpoint health("/healthz");
    auto ready = health.answer(get("/healthz/ready"), false);
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->head.status, 200);
    EXPECT_EQ(ready->body, "ok\n");
    auto draining = health.answer(get("/healthz/ready"), true);
    ASSERT_TRUE(draining);
    EXPECT_EQ(draining->head.status, 503);
    EXPECT_EQ(draining->head.reason, "Service Unavailable");
    EXPECT_EQ(draining->body, "draining\n");
    EXPECT_EQ(header(draining->head, "Cache-Control"), "no-store");
}

TEST(HealthEndpoint, TheQueryIsIgnoredAndOtherPathsPassThrough) {
    HealthEndpoint health("/healthz");
    EXPECT_TRUE(health.answer(get("/healthz?probe=1"), false));
    EXPECT_TRUE(health.answer(get("/healthz/ready?x"), true));
    EXPECT_FALSE(health.answer(get("/healthz/"), false));
    EXPECT_FALSE(health.answer(get("/healthzz"), false));
    EXPECT_FALSE(health.answer(get("/healthz/readyy"), false));
    EXPECT_FALSE(health.answer(get("/other/ready"), false));
    EXPECT_FALSE(health.answer(get("/"), false));
}

TEST(MetricsAnswer, RendersTheStore) {
    auto store = MetricsStore::create({"total"});
    store->count_response(200);
    NativeAnswer answer = metrics_answer(get("/metrics"), store.get());
    EXPECT_EQ(answer.head.status, 200);
    EXPECT_EQ(header(answer.head, "Content-Type"), std::string(MetricsStore::kContentType));
    EXPECT_NE(answer.body.find("gantry_requests_total{status=\"2xx\"} 1"), std::string::npos) << answer.body;
    EXPECT_EQ(metrics_answer(get("/metrics?name[]=x"), store.get()).head.status, 200);
}

TEST(MetricsAnswer, EachWorkersLoadFollowsTheStore) {
    auto store = MetricsStore::create({"total"});
    auto board = LoadBoard::create();
    board->open(0);
    board->slot(0)->pid = 77;
    board->slot(0)->requests_total = 5;
    NativeAnswer answer = metrics_answer(get("/metrics"), store.get(), board.get());
    auto store_at = answer.body.find("gantry_requests_total");
    auto board_at = answer.body.find("gantry_worker_requests_total{worker=\"0\",pid=\"77\"} 5\n");
    ASSERT_NE(board_at, std::string::npos) << answer.body;
    EXPECT_LT(store_at, board_at);
}

TEST(MetricsAnswer, OtherTargetsAreNotFound) {
    auto store = MetricsStore::create({"total"});
    for (const char* target : {"/", "/metricsx", "/metrics/", "/other?/metrics"}) {
        NativeAnswer answer = metrics_answer(get(target), store.get());
        EXPECT_EQ(answer.head.status, 404) << target;
        EXPECT_EQ(answer.body, "404 Not Found: metrics are at /metrics\n");
        EXPECT_EQ(header(answer.head, "Content-Type"), "text/plain; charset=utf-8");
    }
}

TEST(MetricsAnswer, WithoutAStoreIsUnavailable) {
    NativeAnswer answer = metrics_answer(get("/metrics"), nullptr);
    EXPECT_EQ(answer.head.status, 503);
    EXPECT_EQ(answer.body, "metrics unavailable\n");
    EXPECT_EQ(metrics_answer(get("/nope"), nullptr).head.status, 404);
}

TEST(OverloadedAnswer, IsA503ToRetryShortly) {
    NativeAnswer answer = overloaded_answer();
    EXPECT_EQ(answer.head.status, 503);
    EXPECT_EQ(answer.head.reason, "Service Unavailable");
    EXPECT_EQ(header(answer.head, "Retry-After"), "1");
    EXPECT_EQ(header(answer.head, "Content-Type"), "text/plain; charset=utf-8");
    EXPECT_EQ(answer.body, "503 Service Unavailable: the server is overloaded, retry shortly\n");
}

}  // namespace
}  // namespace gantry
