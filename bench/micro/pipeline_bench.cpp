// What the middleware pipeline costs a request: the runner around an empty chain, around the
// timing middleware alone (its default: no Server-Timing header), with the header on, the default
// chain as a worker builds it with nothing to serve (timing,static: static leaves the chain), and a
// static hit.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "middleware/pipeline.hpp"
#include "middleware/registry.hpp"
#include "server/config.hpp"  // the chain as the command line sets it

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
    Config config;
    config.middleware = {{"timing", {}}};  // Server-Timing off
    auto pipeline = build_pipeline(chain_settings(config));
    HttpRequest request = make_request();
    run_once(*pipeline, request, state);
}
BENCHMARK(BM_TimingOnly);

void BM_DefaultChain(benchmark::State& state) {
    Config config;  // timing,static as a worker builds it: static has nothing mounted and leaves
    auto pipeline = build_pipeline(chain_settings(config), PipelineInputs{true, nullptr});
    HttpRequest request = make_request();
    run_once(*pipeline, request, state);
}
BENCHMARK(BM_DefaultChain);

// A 60 KB stylesheet with a .gz beside it, asked for with Accept-Encoding: gzip: the static
// middleware's whole answer (resolve, look up, negotiate, conditionals, the head), no socket.
void BM_StaticHitFromMemory(benchmark::State& state) {
    char tmpl[] = "/tmp/gantry-bench-static-XXXXXX";
    std::filesystem::path root = ::mkdtemp(tmpl);
    std::ofstream(root / "site.css") << std::string(60 * 1024, 'c');
    std::ofstream(root / "site.css.gz") << std::string(9 * 1024, 'z');
    Config config;
    config.static_mounts = {{"/static/", root.string()}};
    auto pipeline = build_pipeline(chain_settings(config), PipelineInputs{true, nullptr});
    HttpRequest request = make_request();
    request.target = "/static/site.css";
    request.headers.push_back({"Accept-Encoding", "gzip"});
    for (auto _ : state) {
        RequestContext ctx(request);
        std::size_t entered = pipeline->run_request(ctx);
        pipeline->run_response(ctx, ctx.answer_head(), nullptr, entered);
        benchmark::DoNotOptimize(ctx.answer_extra());
    }
    std::filesystem::remove_all(root);
}
BENCHMARK(BM_StaticHitFromMemory);

void BM_TimingWithServerTimingHeader(benchmark::State& state) {
    Config config;
    config.middleware = {{"timing", {}}};
    config.server_timing = true;
    auto pipeline = build_pipeline(chain_settings(config));
    HttpRequest request = make_request();
    run_once(*pipeline, request, state);
}
BENCHMARK(BM_TimingWithServerTimingHeader);

void BM_TimingOff(benchmark::State& state) {
    Config config;
    config.middleware = {{"timing", {}}};
    config.timing = "off";
    auto pipeline = build_pipeline(chain_settings(config));
    HttpRequest request = make_request();
    run_once(*pipeline, request, state);
}
BENCHMARK(BM_TimingOff);

}  // namespace
}  // namespace gantry
