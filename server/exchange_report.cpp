#include "server/exchange_report.hpp"

#include <algorithm>

#include "server/metrics_store.hpp"

namespace gantry {

namespace {

std::int64_t ns(std::chrono::steady_clock::duration d) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

}  // namespace

void AppTimes::fill(RequestTimings& t, Clock::time_point queued_at) const {
    if (app_started == Clock::time_point{}) return;  // answered by a middleware: no app
    t.app_breakdown = breakdown;
    t.python_wait_ns = ns(app_started - queued_at);
    if (app_finished != Clock::time_point{}) t.app_ns = ns(app_finished - app_started);
}

void ExchangeReport::report(const FinishedExchange& exchange, RequestTimings& timings) const {
    exchange.app.fill(timings, exchange.queued_at);
    timings.total_ns = ns(exchange.finished - exchange.started);
    if (timings.app_ns >= 0 && exchange.app.app_finished != FinishedExchange::Clock::time_point{}) {
        // From the app's last byte to the socket, less the response hooks that ran meanwhile
        // (they are reported on their own): the stages never add up to more than the total.
        std::int64_t hooks = 0;
        for (std::size_t i = 0; i < timings.middleware_count; ++i) hooks += timings.on_response_ns[i];
        timings.write_ns = std::max<std::int64_t>(0, ns(exchange.finished - exchange.app.app_finished) - hooks);
    }
    if (metrics_ && exchange.websocket) {
        // A WebSocket's duration is its life, not a request's latency: no stage is observed.
        metrics_->count_response(exchange.status);
    } else if (metrics_) {
        const MetricsStages& m = *stages_;
        for (std::size_t i = 0; i < timings.middleware_count && i < m.middleware_request.size(); ++i) {
            metrics_->observe(m.middleware_request[i], std::chrono::nanoseconds(timings.on_request_ns[i]));
            metrics_->observe(m.middleware_response[i], std::chrono::nanoseconds(timings.on_response_ns[i]));
        }
        if (timings.python_wait_ns >= 0) metrics_->observe(m.python_wait, std::chrono::nanoseconds(timings.python_wait_ns));
        if (timings.app_ns >= 0) metrics_->observe(m.app, std::chrono::nanoseconds(timings.app_ns));
        if (timings.write_ns >= 0) metrics_->observe(m.write, std::chrono::nanoseconds(timings.write_ns));
        metrics_->observe(m.total, std::chrono::nanoseconds(timings.total_ns));
        if (exchange.status != 0) metrics_->count_response(exchange.status);
    }
    if (log_ && exchange.status != 0 && exchange.request) {
        CompletedExchange done;
        done.timings = &timings;
        done.request = exchange.request;
        done.response_headers = exchange.response_headers;
        done.status = exchange.status;
        done.body_bytes = exchange.body_bytes;
        done.started = exchange.wall_started;
        done.duration = exchange.finished - exchange.started;
        done.websocket = exchange.websocket;
        (*log_)(done);
    }
}

}  // namespace gantry
