#include "server/native_endpoints.hpp"

#include "server/load_board.hpp"
#include "server/metrics_store.hpp"
#include "server/response_framing.hpp"

namespace gantry {

std::optional<NativeAnswer> HealthEndpoint::answer(const HttpRequest& request, bool draining) const {
    if (path_.empty()) return std::nullopt;
    std::string_view path = std::string_view(request.target).substr(0, request.target.find('?'));
    constexpr std::string_view kReady = "/ready";
    int status = 0;
    if (path == path_)
        status = 200;
    else if (path.size() == path_.size() + kReady.size() && path.substr(0, path_.size()) == path_ &&
             path.substr(path_.size()) == kReady)
        status = draining ? 503 : 200;
    if (!status) return std::nullopt;
    return NativeAnswer{
        ResponseHead{status, reason_phrase(status), {{"Content-Type", "text/plain; charset=utf-8"}, {"Cache-Control", "no-store"}}},
        status == 200 ? "ok\n" : "draining\n"};
}

NativeAnswer metrics_answer(const HttpRequest& request, const MetricsStore* store, const LoadBoard* board) {
    NativeAnswer answer;
    if (request.target != "/metrics" && request.target.rfind("/metrics?", 0) != 0) {
        answer.head.status = 404;
        answer.head.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
        answer.body = "404 Not Found: metrics are at /metrics\n";
    } else if (!store) {
        answer.head.status = 503;
        answer.body = "metrics unavailable\n";
    } else {
        answer.head.headers.push_back({"Content-Type", std::string(MetricsStore::kContentType)});
        answer.body = store->render();
        if (board) answer.body += board->render();
    }
    return answer;
}

NativeAnswer overloaded_answer() {
    return NativeAnswer{
        ResponseHead{503, "Service Unavailable", {{"Content-Type", "text/plain; charset=utf-8"}, {"Retry-After", "1"}}},
        "503 Service Unavailable: the server is overloaded, retry shortly\n"};
}

}  // namespace gantry
