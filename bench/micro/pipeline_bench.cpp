// What the middleware pipeline costs a request: the runner around an empty chain, around the
// timing middleware alone (its default: no Server-Timing header), and with the header on.
#include <benchmark/benchmark.h>

#include "middleware/pipeline.hpp"
#include "middleware/registry.hpp"

namespace gantry {
namespace {

HttpRequest make_request() {
    HttpRequest r;
    r.method = "GET";
    r.target = "/ping/";
    r.remote_addr = "127.0.0.1";
    r.headers = {{"Host", "127.0.0.1:8000"}, {"User-Agent", "wrk"}, {"Accept", "*/*"}};
    return r;
}

// One request through the chain the way the session drives it: request hooks, then the
// response hooks over a whole body.
void run_once(const Pipeline& pipeline, HttpRequest& request, benchmark::State& state) {
    for (auto _ : state) {
        RequestContext ctx(request);
        std::size_t entered = pipeline.run_request(ctx);
        ResponseHead head{200, "OK", {{"Content-Type", "text/plain"}}};
        std::string body = "ok";
        pipeline.run_response(ctx, head, &body, entered);
        benchmark::DoNotOptimize(head);
        benchmark::DoNotOptimize(body);
    }
}

void BM_NoPipeline(benchmark::State& state) {
    // The session skips the runner when the chain is empty; this is the baseline work it still
    // does per request (the context and the head).
    HttpRequest request = make_request();
    for (auto _ : state) {
        RequestContext ctx(request);
        ResponseHead head{200, "OK", {{"Content-Type", "text/plain"}}};
        std::string body = "ok";
        benchmark::DoNotOptimize(ctx);
        benchmark::DoNotOptimize(head);
        benchmark::DoNotOptimize(body);
    }
}
BENCHMARK(BM_NoPipeline);

void BM_TimingOnly(benchmark::State& state) {
    Config config;  // default chain: timing, Server-Timing off
    auto pipeline = build_pipeline(config);
    HttpRequest request = make_request();
    run_once(*pipeline, request, state);
}
BENCHMARK(BM_TimingOnly);

void BM_TimingWithServerTimingHeader(benchmark::State& state) {
    Config config;
    config.server_timing = true;
    auto pipeline = build_pipeline(config);
    HttpRequest request = make_request();
    run_once(*pipeline, request, state);
}
BENCHMARK(BM_TimingWithServerTimingHeader);

void BM_TimingOff(benchmark::State& state) {
    Config config;
    config.timing = "off";
    auto pipeline = build_pipeline(config);
    HttpRequest request = make_request();
    run_once(*pipeline, request, state);
}
BENCHMARK(BM_TimingOff);

}  // namespace
}  // namespace gantry
