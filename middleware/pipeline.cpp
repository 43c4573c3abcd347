#include "middleware/pipeline.hpp"

#include <stdexcept>

#include <spdlog/spdlog.h>

namespace gantry {

namespace {

// The runner's clock policies: started as a hook begins, `add_to` adds its duration as it ends.
// One clock read per hook boundary...
struct SteadyHookClock {
    using Clock = std::chrono::steady_clock;
    Clock::time_point start = Clock::now();
    void add_to(std::int64_t& ns) const {
        ns += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
    }
};

// ...or none at all (--timing off): every duration stays 0.
struct NoHookClock {
    void add_to(std::int64_t&) const {}
};

void answer_500(RequestContext& ctx) {
    ResponseHead head;
    head.status = 500;
    head.reason = "Internal Server Error";
    head.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
    ctx.respond(std::move(head), "500 Internal Server Error\n");
}

}  // namespace

template <class HookClock>
class Pipeline::ChainRunner final : public Pipeline::Runner {
public:
    std::size_t run_request(const Pipeline& p, RequestContext& ctx, std::size_t from) const override;
    void run_response(const Pipeline& p, RequestContext& ctx, ResponseHead& head, std::string* whole_body,
                      std::size_t entered) const override;
    void run_chunk(const Pipeline& p, RequestContext& ctx, std::string& chunk, std::size_t entered) const override;
    void run_stream_end(const Pipeline& p, RequestContext& ctx, std::string& tail, std::size_t entered) const override;
};

template <class HookClock>
std::size_t Pipeline::ChainRunner<HookClock>::run_request(const Pipeline& p, RequestContext& ctx,
                                                         std::size_t from) const {
    RequestTimings& timings = ctx.mutable_timings();
    timings.middleware_count = p.chain_.size();
    ctx.set_waiting_at(static_cast<std::size_t>(-1));
    for (std::size_t i = from; i < p.chain_.size(); ++i) {
        HookClock clock;
        Flow flow;
        try {
            ctx.set_current(i);
            flow = p.chain_[i]->on_request(ctx);
        } catch (const std::exception& e) {
            spdlog::error("middleware {} failed in on_request for {} {}: {}", p.names_[i], ctx.request().method,
                          ctx.request().target, e.what());
            answer_500(ctx);
            flow = Flow::respond;
        }
        clock.add_to(timings.on_request_ns[i]);  // a waiting middleware's calls add up
        if (flow == Flow::wait) {
            ctx.set_waiting_at(i);
            return i;  // the ones above have entered; this one is asked again
        }
        if (flow == Flow::respond) {
            if (!ctx.answered()) {
                spdlog::error("middleware {} returned respond without an answer; sending 500", p.names_[i]);
                answer_500(ctx);
            }
            return i + 1;
        }
    }
    return p.chain_.size();
}

template <class HookClock>
void Pipeline::ChainRunner<HookClock>::run_response(const Pipeline& p, RequestContext& ctx, ResponseHead& head,
                                                    std::string* whole_body, std::size_t entered) const {
    RequestTimings& timings = ctx.mutable_timings();
    for (std::size_t i = entered; i-- > 0;) {
        HookClock clock;
        try {
            ctx.set_current(i);
            p.chain_[i]->on_response(ctx, head, whole_body);
        } catch (const std::exception& e) {
            spdlog::error("middleware {} failed in on_response for {} {}: {}", p.names_[i], ctx.request().method,
                          ctx.request().target, e.what());
            if (whole_body) {
                head = ResponseHead{500, "Internal Server Error", {{"Content-Type", "text/plain; charset=utf-8"}}};
                *whole_body = "500 Internal Server Error\n";
            }
        }
        clock.add_to(timings.on_response_ns[i]);
    }
}

template <class HookClock>
void Pipeline::ChainRunner<HookClock>::run_chunk(const Pipeline& p, RequestContext& ctx, std::string& chunk,
                                                 std::size_t entered) const {
    RequestTimings& timings = ctx.mutable_timings();
    for (std::size_t i = entered; i-- > 0;) {
        HookClock clock;
        try {
            ctx.set_current(i);
            p.chain_[i]->on_chunk(ctx, chunk);
        } catch (const std::exception& e) {
            // Mid-stream there is no clean answer left, and the chunk may be half rewritten:
            // the response is cut short (the connection closed) rather than sent corrupt.
            spdlog::error("middleware {} failed in on_chunk for {} {}: {}; closing the connection", p.names_[i],
                          ctx.request().method, ctx.request().target, e.what());
            ctx.abort_response();
        }
        clock.add_to(timings.on_response_ns[i]);
        if (ctx.response_aborted()) {
            chunk.clear();
            return;
        }
    }
}

template <class HookClock>
void Pipeline::ChainRunner<HookClock>::run_stream_end(const Pipeline& p, RequestContext& ctx, std::string& tail,
                                                      std::size_t entered) const {
    RequestTimings& timings = ctx.mutable_timings();
    for (std::size_t i = entered; i-- > 0;) {
        HookClock clock;
        try {
            ctx.set_current(i);
            p.chain_[i]->on_stream_end(ctx, tail);
        } catch (const std::exception& e) {
            // As mid-stream: the stream's end is not sent, the connection is closed.
            spdlog::error("middleware {} failed in on_stream_end for {} {}: {}; closing the connection", p.names_[i],
                          ctx.request().method, ctx.request().target, e.what());
            ctx.abort_response();
        }
        clock.add_to(timings.on_response_ns[i]);
        if (ctx.response_aborted()) {
            tail.clear();
            return;
        }
    }
}

const Pipeline::Runner& Pipeline::runner_for(bool timed) {
    static const ChainRunner<SteadyHookClock> steady;
    static const ChainRunner<NoHookClock> none;
    if (timed) return steady;
    return none;
}

Pipeline::Pipeline() : runner_(&runner_for(true)) {}

Pipeline::Pipeline(std::vector<std::unique_ptr<const Middleware>> chain, bool timed)
    : chain_(std::move(chain)), runner_(&runner_for(timed)) {
    if (chain_.size() > kMaxMiddleware)
        throw std::invalid_argument("at most " + std::to_string(kMaxMiddleware) + " middlewares in a chain");
    for (const auto& m : chain_) {
        names_.emplace_back(m->name());
        reads_request_in_response_ = reads_request_in_response_ || m->reads_request_in_response();
        needs_request_body_ = needs_request_body_ || m->needs_request_body();
    }
}

}  // namespace gantry
