#pragma once
// The chain of native middleware and the runner that times every hook. The runner, not each
// middleware, does the timing, so no middleware can forget it and it costs one clock read per hook.
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
    Pipeline() = default;
    // `timed` false (--timing off): no clock is read and every duration stays 0.
    explicit Pipeline(std::vector<std::unique_ptr<const Middleware>> chain, bool timed = true);

    // on_request top to bottom until one answers (or throws: then a 500 is the answer and the
    // error is logged). Returns how many middlewares were entered: their on_response hooks, and
    // only theirs, run afterwards.
    // A middleware returning Flow::wait stops the run: ctx.waiting_at() names it, and the
    // connection calls run_request(ctx, ctx.waiting_at()) again once it has waited.
    std::size_t run_request(RequestContext& ctx, std::size_t from = 0) const;
    // on_response bottom to top over the first `entered` middlewares. A throwing hook is logged and
    // turns a whole response into a 500.
    void run_response(RequestContext& ctx, ResponseHead& head, std::string* whole_body, std::size_t entered) const;
    void run_chunk(RequestContext& ctx, std::string& chunk, std::size_t entered) const;
    // on_stream_end bottom to top; `tail` (empty on entry) is then the last data to send.
    void run_stream_end(RequestContext& ctx, std::string& tail, std::size_t entered) const;

    bool empty() const { return chain_.empty(); }
    // Whether some middleware reads the request in its response hooks (see Middleware).
    bool reads_request_in_response() const { return reads_request_in_response_; }
    std::size_t size() const { return chain_.size(); }
    const std::vector<std::string>& names() const { return names_; }

private:
    std::vector<std::unique_ptr<const Middleware>> chain_;
    std::vector<std::string> names_;
    bool timed_ = true;
    bool reads_request_in_response_ = false;
};

}  // namespace gantry
