#include "server/exchange_report.hpp"  // first: the header stands alone

#include <gtest/gtest.h>

#include <string>

#include "server/metrics_store.hpp"

namespace gantry {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A request queued at t0 + 1 ms, taken by a Python thread at + 3 ms, answered at + 10 ms,
// written at + 12 ms (its first byte came at t0).
struct Fixture {
    Clock::time_point t0 = Clock::now();
    HttpRequest request;
    std::vector<HttpHeader> response_headers{{"Content-Type", "text/plain"}};
    FinishedExchange exchange;

    Fixture() {
        request.method = "GET";
        request.target = "/x";
        exchange.request = &request;
        exchange.response_headers = &response_headers;
        exchange.status = 200;
        exchange.body_bytes = 42;
        exchange.started = t0;
        exchange.queued_at = t0 + 1ms;
        exchange.app.app_started = t0 + 3ms;
        exchange.app.app_finished = t0 + 10ms;
        exchange.finished = t0 + 12ms;
        exchange.wall_started = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
    }
};

std::string count_of(const MetricsStore& store, const std::string& stage) {
    std::string text = store.render();
    std::string key = "gantry_stage_duration_seconds_count{stage=\"" + stage + "\"} ";
    auto at = text.find(key);
    if (at == std::string::npos) return "<none>";
    return text.substr(at + key.size(), text.find('\n', at) - at - key.size());
}

std::string responses(const MetricsStore& store, const std::string& status_class) {
    std::string text = store.render();
    std::string key = "gantry_requests_total{status=\"" + status_class + "\"} ";
    auto at = text.find(key);
    return text.substr(at + key.size(), text.find('\n', at) - at - key.size());
}

TEST(ExchangeReport, CompletesTheStageTimings) {
    Fixture f;
    RequestTimings timings;
    timings.middleware_count = 1;
    timings.on_response_ns[0] = 500'000;  // a response hook ran between the app's end and the write
    ExchangeReport(nullptr, nullptr, nullptr).report(f.exchange, timings);
    EXPECT_EQ(timings.python_wait_ns, 2'000'000);
    EXPECT_EQ(timings.app_ns, 7'000'000);
    EXPECT_EQ(timings.write_ns, 1'500'000);  // 2 ms after the app, less the hook's 0.5 ms
    EXPECT_EQ(timings.total_ns, 12'000'000);
}

TEST(ExchangeReport, NoAppMeansNoAppStages) {
    Fixture f;
    f.exchange.app = AppTimes{};  // a middleware (or the server itself) answered
    RequestTimings timings;
    ExchangeReport(nullptr, nullptr, nullptr).report(f.exchange, timings);
    EXPECT_EQ(timings.python_wait_ns, -1);
    EXPECT_EQ(timings.app_ns, -1);
    EXPECT_EQ(timings.write_ns, -1);
    EXPECT_EQ(timings.total_ns, 12'000'000);
}

TEST(ExchangeReport, WriteNeverGoesNegative) {
    Fixture f;
    RequestTimings timings;
    timings.middleware_count = 1;
    timings.on_response_ns[0] = 5'000'000;  // hooks longer than the whole write (clock granularity)
    ExchangeReport(nullptr, nullptr, nullptr).report(f.exchange, timings);
    EXPECT_EQ(timings.write_ns, 0);
}

TEST(ExchangeReport, ObservesEveryStageAndTheResponseClass) {
    Fixture f;
    auto store = MetricsStore::create({"mw.a.request", "mw.a.response", "python_wait", "app", "write", "total"});
    MetricsStages stages;
    stages.store = store.get();
    stages.middleware_request = {store->stage_index("mw.a.request")};
    stages.middleware_response = {store->stage_index("mw.a.response")};
    stages.python_wait = store->stage_index("python_wait");
    stages.app = store->stage_index("app");
    stages.write = store->stage_index("write");
    stages.total = store->stage_index("total");
    ExchangeReport report(store.get(), &stages, nullptr);
    EXPECT_EQ(report.metrics(), store.get());
    EXPECT_FALSE(report.needs_request());

    RequestTimings timings;
    timings.middleware_count = 1;
    report.report(f.exchange, timings);
    for (const char* stage : {"mw.a.request", "mw.a.response", "python_wait", "app", "write", "total"})
        EXPECT_EQ(count_of(*store, stage), "1") << stage;
    EXPECT_EQ(responses(*store, "2xx"), "1");

    // Nothing written (the client left first): the stages are observed, no response is counted.
    Fixture gone;
    gone.exchange.status = 0;
    RequestTimings more;
    report.report(gone.exchange, more);
    EXPECT_EQ(count_of(*store, "total"), "2");
    EXPECT_EQ(responses(*store, "2xx"), "1");
}

TEST(ExchangeReport, GivesTheAccessLogItsRecord) {
    Fixture f;
    int calls = 0;
    CompletedExchange seen;
    ExchangeLog log = [&](const CompletedExchange& done) {
        ++calls;
        seen = done;
    };
    ExchangeReport report(nullptr, nullptr, &log);
    EXPECT_TRUE(report.needs_request());
    RequestTimings timings;
    report.report(f.exchange, timings);
    ASSERT_EQ(calls, 1);
    EXPECT_EQ(seen.timings, &timings);
    EXPECT_EQ(seen.request, &f.request);
    EXPECT_EQ(seen.response_headers, &f.response_headers);
    EXPECT_EQ(seen.status, 200);
    EXPECT_EQ(seen.body_bytes, 42u);
    EXPECT_EQ(seen.started, f.exchange.wall_started);
    EXPECT_EQ(seen.duration, 12ms);
}

TEST(ExchangeReport, LogsOnlyWrittenResponses) {
    Fixture f;
    int calls = 0;
    ExchangeLog log = [&](const CompletedExchange&) { ++calls; };
    ExchangeReport report(nullptr, nullptr, &log);
    f.exchange.status = 0;
    RequestTimings timings;
    report.report(f.exchange, timings);
    EXPECT_EQ(calls, 0);
}

TEST(ExchangeReport, AnEmptyLogIsNoLog) {
    ExchangeLog empty;
    ExchangeReport report(nullptr, nullptr, &empty);
    EXPECT_FALSE(report.needs_request());
    Fixture f;
    RequestTimings timings;
    report.report(f.exchange, timings);  // must not call the empty function
    EXPECT_EQ(timings.total_ns, 12'000'000);
}

}  // namespace
}  // namespace gantry
