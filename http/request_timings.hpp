#pragma once
// Where one request's time went, in nanoseconds, filled by the pipeline runner and the session.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "http/app_breakdown.hpp"

namespace gantry {

inline constexpr std::size_t kMaxMiddleware = 16;

struct RequestTimings {
    std::array<std::int64_t, kMaxMiddleware> on_request_ns{};   // per middleware, chain order
    std::array<std::int64_t, kMaxMiddleware> on_response_ns{};  // on_response plus on_chunk
    std::size_t middleware_count = 0;  // how many entries above are meaningful
    std::int64_t python_wait_ns = -1;  // queued until a Python thread took the call; -1: no app
    std::int64_t app_ns = -1;          // the app call, until its last byte was handed over
    std::int64_t write_ns = -1;        // the app's last byte handed over -> response written
    std::int64_t total_ns = 0;         // request complete -> response written
    std::shared_ptr<const AppBreakdown> app_breakdown;  // --timing full, when the app reported one
};

}  // namespace gantry
