#pragma once
// The answers a worker gives itself, without the middleware chain or Python: liveness and
// readiness (--health-path), /metrics on the metrics address, and the overload refusal
// (--max-queue). Pure: a request in, a head and body out; the session sends them like any answer.
#include <optional>
#include <string>
#include <string_view>

#include "http/request.hpp"
#include "http/response_head.hpp"

namespace gantry {

class LoadBoard;
class MetricsStore;

struct NativeAnswer {
    ResponseHead head;
    std::string body;
};

// --health-path: liveness at the path (this worker runs: 200) and readiness at path + "/ready"
// (200, or 503 while the worker drains). The query string is ignored.
class HealthEndpoint {
public:
    HealthEndpoint() = default;  // no health path: answers nothing
    explicit HealthEndpoint(std::string path) : path_(std::move(path)) {}

    bool enabled() const { return !path_.empty(); }
    // The answer when the request's path is one of the two; nullopt for every other request.
    std::optional<NativeAnswer> answer(const HttpRequest& request, bool draining) const;

private:
    std::string path_;
};

// The metrics address answers only /metrics (any query ignored): the store rendered in the
// Prometheus text format, then each worker's load (`board`, when given), 503 without a store,
// 404 for every other target.
NativeAnswer metrics_answer(const HttpRequest& request, const MetricsStore* store, const LoadBoard* board = nullptr);

// More requests already wait for a Python thread than --max-queue allows: a quick 503 now beats
// an answer after an unbounded wait (and a client's retry can go elsewhere).
NativeAnswer overloaded_answer();

}  // namespace gantry
