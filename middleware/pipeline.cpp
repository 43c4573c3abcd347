#include "middleware/pipeline.hpp"

#include <stdexcept>

#include <spdlog/spdlog.h>


namespace gantry {

namespace {

using Clock = std::chrono::steady_clock;

// One clock read per hook boundary; none at all when timing is off.
struct HookClock {
    bool on;
    Clock::time_point start;
    explicit HookClock(bool timed) : on(timed), start(timed ? Clock::now() : Clock::time_point{}) {}
    std::int64_t elapsed() const {
        return on ? std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count() : 0;
    }
};

void answer_500(RequestContext& ctx) {
    ResponseHead head;
    head.status = 500;
    head.reason = "Internal Server Error";
    head.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
    ctx.respond(std::move(head), "500 Internal Server Error\n");
}

}  // namespace

Pipeline::Pipeline(std::vector<std::unique_ptr<const Middleware>> chain, bool timed)
    : chain_(std::move(chain)), timed_(timed) {
    if (chain_.size() > kMaxMiddleware)
        throw std::invalid_argument("at most " + std::to_string(kMaxMiddleware) + " middlewares in a chain");
    for (const auto& m : chain_) {
        names_.emplace_back(m->name());
        reads_request_in_response_ = reads_request_in_response_ || m->reads_request_in_response();
    }
}

std::size_t Pipeline::run_request(RequestContext& ctx, std::size_t from) const {
    RequestTimings& timings = ctx.mutable_timings();
    timings.middleware_count = chain_.size();
    ctx.set_waiting_at(static_cast<std::size_t>(-1));
    for (std::size_t i = from; i < chain_.size(); ++i) {
        HookClock clock(timed_);
        Flow flow;
        try {
            ctx.set_current(i);
            flow = chain_[i]->on_request(ctx);
        } catch (const std::exception& e) {
            spdlog::error("middleware {} failed in on_request for {} {}: {}", names_[i], ctx.request().method,
                          ctx.request().target, e.what());
            answer_500(ctx);
            flow = Flow::respond;
        }
        timings.on_request_ns[i] += clock.elapsed();  // a waiting middleware's calls add up
        if (flow == Flow::wait) {
            ctx.set_waiting_at(i);
            return i;  // the ones above have entered; this one is asked again
        }
        if (flow == Flow::respond) {
            if (!ctx.answered()) {
                spdlog::error("middleware {} returned respond without an answer; sending 500", names_[i]);
                answer_500(ctx);
            }
            return i + 1;
        }
    }
    return chain_.size();
}

void Pipeline::run_response(RequestContext& ctx, ResponseHead& head, std::string* whole_body,
                            std::size_t entered) const {
    RequestTimings& timings = ctx.mutable_timings();
    for (std::size_t i = entered; i-- > 0;) {
        HookClock clock(timed_);
        try {
            ctx.set_current(i);
            chain_[i]->on_response(ctx, head, whole_body);
        } catch (const std::exception& e) {
            spdlog::error("middleware {} failed in on_response for {} {}: {}", names_[i], ctx.request().method,
                          ctx.request().target, e.what());
            if (whole_body) {
                head = ResponseHead{500, "Internal Server Error", {{"Content-Type", "text/plain; charset=utf-8"}}};
                *whole_body = "500 Internal Server Error\n";
            }
        }
        timings.on_response_ns[i] += clock.elapsed();
    }
}

void Pipeline::run_chunk(RequestContext& ctx, std::string& chunk, std::size_t entered) const {
    RequestTimings& timings = ctx.mutable_timings();
    for (std::size_t i = entered; i-- > 0;) {
        HookClock clock(timed_);
        try {
            ctx.set_current(i);
            chain_[i]->on_chunk(ctx, chunk);
        } catch (const std::exception& e) {
            // Mid-stream there is no clean answer left: log it and pass the chunk on unchanged.
            spdlog::error("middleware {} failed in on_chunk for {} {}: {}", names_[i], ctx.request().method,
                          ctx.request().target, e.what());
        }
        timings.on_response_ns[i] += clock.elapsed();
    }
}

void Pipeline::run_stream_end(RequestContext& ctx, std::string& tail, std::size_t entered) const {
    RequestTimings& timings = ctx.mutable_timings();
    for (std::size_t i = entered; i-- > 0;) {
        HookClock clock(timed_);
        try {
            ctx.set_current(i);
            chain_[i]->on_stream_end(ctx, tail);
        } catch (const std::exception& e) {
            // As mid-stream: log it; the client sees whatever the stream holds so far.
            spdlog::error("middleware {} failed in on_stream_end for {} {}: {}", names_[i], ctx.request().method,
                          ctx.request().target, e.what());
        }
        timings.on_response_ns[i] += clock.elapsed();
    }
}

}  // namespace gantry
