#pragma once
// What one finished exchange (a request and its response) reports, in one place: the stage
// timings it completes, the Prometheus observations, and the access-log record. Pure: the
// session hands it what it saw, on its I/O thread, after the response's last byte.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "http/app_breakdown.hpp"
#include "http/request.hpp"
#include "http/request_timings.hpp"
#include "server/access_log.hpp"

namespace gantry {

class MetricsStore;

// The metrics store and the stage indices the session observes into (looked up once).
struct MetricsStages {
    MetricsStore* store = nullptr;
    std::vector<std::size_t> middleware_request;   // per middleware, chain order
    std::vector<std::size_t> middleware_response;
    std::size_t python_wait = 0, app = 0, write = 0, total = 0;
};

// What the access log needs about one answered request.
struct CompletedExchange {
    const RequestTimings* timings = nullptr;        // every stage, for %(timing)s and the JSON log
    const HttpRequest* request = nullptr;          // method, target, version, headers, remote_addr
    const std::vector<HttpHeader>* response_headers = nullptr;
    int status = 0;
    std::uint64_t body_bytes = 0;                   // response body bytes written
    std::chrono::system_clock::time_point started;  // wall clock, for %(t)s
    std::chrono::steady_clock::duration duration{}; // header complete -> last byte written
    const WebSocketTotals* websocket = nullptr;     // a WebSocket session (status 101; duration: until its close)
};

using ExchangeLog = std::function<void(const CompletedExchange&)>;

// When the app side took the call and when it handed over its last byte (set by a Python thread,
// read by the session under the sink's lock).
struct AppTimes {
    using Clock = std::chrono::steady_clock;
    Clock::time_point app_started{};
    Clock::time_point app_finished{};
    std::shared_ptr<const AppBreakdown> breakdown;
    // The python-wait and app stages; nothing when no app was called (a middleware answered).
    void fill(RequestTimings& t, Clock::time_point queued_at) const;
};

// One exchange as the session saw it once its response was written (or abandoned).
struct FinishedExchange {
    using Clock = std::chrono::steady_clock;
    const HttpRequest* request = nullptr;  // the session's copy; null when it kept none
    const std::vector<HttpHeader>* response_headers = nullptr;
    int status = 0;                        // 0: no response head was written
    std::uint64_t body_bytes = 0;
    AppTimes app;
    Clock::time_point queued_at{};         // handed to the app side (or answered natively)
    Clock::time_point started{};           // the request's first byte
    Clock::time_point finished{};          // the response's last byte
    std::chrono::system_clock::time_point wall_started{};
    const WebSocketTotals* websocket = nullptr;  // a WebSocket session: `finished` is its end
};

// Where a listener's exchanges are reported: the metrics store (null: none) and the access log
// (null or empty: none). The metrics address gives neither: its scrapes would only be noise.
class ExchangeReport {
public:
    ExchangeReport(MetricsStore* metrics, const MetricsStages* stages, const ExchangeLog* log)
        : metrics_(metrics), stages_(stages), log_(log && *log ? log : nullptr) {}

    MetricsStore* metrics() const { return metrics_; }
    // The access log reads the request after it has gone to the app: the session keeps a copy.
    bool needs_request() const { return log_ != nullptr; }

    // Completes `timings` (python wait, app, write, total), observes them and the response class
    // into the store, and gives the access log its record when a response was written.
    void report(const FinishedExchange& exchange, RequestTimings& timings) const;

private:
    MetricsStore* metrics_;
    const MetricsStages* stages_;
    const ExchangeLog* log_;
};

}  // namespace gantry
