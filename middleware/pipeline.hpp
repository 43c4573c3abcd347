#pragma once
// The chain of native middleware and the runner that times every hook. The runner, not each
// middleware, does the timing, so no middleware can forget it and it costs one clock read per hook
// (none with --timing off).
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "middleware/middleware.hpp"
#include "http/request_timings.hpp"

namespace gantry {

class Pipeline {
public:
    Pipeline();
    // `timed` false (--timing off): no clock is read and every duration stays 0.
    explicit Pipeline(std::vector<std::unique_ptr<const Middleware>> chain, bool timed = true);

    // on_request top to bottom until one answers (or throws: then a 500 is the answer and the
    // error is logged). Returns how many middlewares were entered: their on_response hooks, and
    // only theirs, run afterwards.
    // A middleware returning Flow::wait stops the run: ctx.waiting_at() names it, and the
    // connection calls run_request(ctx, ctx.waiting_at()) again once it has waited.
    std::size_t run_request(RequestContext& ctx, std::size_t from = 0) const {
        return runner_->run_request(*this, ctx, from);
    }
    // on_response bottom to top over the first `entered` middlewares. A throwing hook is logged and
    // turns a whole response into a 500.
    void run_response(RequestContext& ctx, ResponseHead& head, std::string* whole_body, std::size_t entered) const {
        runner_->run_response(*this, ctx, head, whole_body, entered);
    }
    // on_chunk bottom to top. A hook that throws or calls ctx.abort_response() stops the run with
    // `chunk` empty and ctx.response_aborted() set: the connection must close without the end.
    void run_chunk(RequestContext& ctx, std::string& chunk, std::size_t entered) const {
        runner_->run_chunk(*this, ctx, chunk, entered);
    }
    // on_stream_end bottom to top; `tail` (empty on entry) is then the last data to send.
    void run_stream_end(RequestContext& ctx, std::string& tail, std::size_t entered) const {
        runner_->run_stream_end(*this, ctx, tail, entered);
    }

    bool empty() const { return chain_.empty(); }
    // Whether some middleware reads the request in its response hooks (see Middleware).
    bool reads_request_in_response() const { return reads_request_in_response_; }
    // Whether some middleware needs the whole request body in on_request (see Middleware).
    bool needs_request_body() const { return needs_request_body_; }
    std::size_t size() const { return chain_.size(); }
    const std::vector<std::string>& names() const { return names_; }

private:
    // Runs the hooks and times them one way: chosen once, in the constructor, so no hook asks
    // whether to read the clock. Stateless: one of each serves every pipeline.
    class Runner {
    public:
        virtual std::size_t run_request(const Pipeline& p, RequestContext& ctx, std::size_t from) const = 0;
        virtual void run_response(const Pipeline& p, RequestContext& ctx, ResponseHead& head, std::string* whole_body,
                                  std::size_t entered) const = 0;
        virtual void run_chunk(const Pipeline& p, RequestContext& ctx, std::string& chunk, std::size_t entered) const = 0;
        virtual void run_stream_end(const Pipeline& p, RequestContext& ctx, std::string& tail,
                                    std::size_t entered) const = 0;

    protected:
        ~Runner() = default;
    };
    template <class HookClock>
    class ChainRunner;  // over a clock policy (pipeline.cpp): the steady clock, or none
    static const Runner& runner_for(bool timed);

    std::vector<std::unique_ptr<const Middleware>> chain_;
    std::vector<std::string> names_;
    const Runner* runner_;
    bool reads_request_in_response_ = false;
    bool needs_request_body_ = false;
};

}  // namespace gantry
