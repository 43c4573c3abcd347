#include "server/background_refresh.hpp"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

#include "http/text.hpp"
#include "middleware/pipeline.hpp"

namespace gantry {

namespace {

// Request fields a refresh does not copy: a body's framing, and what would make the app answer
// less than the whole page.
constexpr std::string_view kDropped[] = {"Content-Length", "Transfer-Encoding", "Expect", "If-None-Match",
                                         "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range",
                                         "Range"};

}  // namespace

HttpRequest BackgroundRefresh::refresh_request(const HttpRequest& request) {
    HttpRequest copy;
    copy.method = "GET";
    copy.target = request.target;
    copy.version = request.version;
    for (const auto& h : request.headers)
        if (std::none_of(std::begin(kDropped), std::end(kDropped), [&](std::string_view d) { return iequals(h.name, d); }))
            copy.headers.push_back(h);
    copy.remote_addr = request.remote_addr;
    copy.remote_port = request.remote_port;
    copy.server_name = request.server_name;
    copy.server_port = request.server_port;
    copy.url_scheme = request.url_scheme;
    copy.keep_alive = request.keep_alive;
    return copy;
}

BackgroundRefresh::BackgroundRefresh(const Pipeline& pipeline, RequestContext& answered)
    : pipeline_(pipeline), request_(refresh_request(answered.request())), ctx_(request_, answered) {}

bool BackgroundRefresh::start() {
    entered_ = pipeline_.run_request(ctx_);
    if (ctx_.answered() || ctx_.waiting_at() != static_cast<std::size_t>(-1)) {
        spdlog::debug("background refresh of {}: a middleware {} it; not refreshed", request_.target,
                      ctx_.answered() ? "answered" : "would wait for");
        return false;
    }
    return true;
}

HttpRequest BackgroundRefresh::app_request() const { return refresh_request(request_); }

void BackgroundRefresh::complete(RefreshAnswer answer) {
    using Kind = RefreshAnswer::Kind;
    if (answer.kind != Kind::whole || answer.head.status < 200 || answer.head.status >= 500) {
        std::string why = answer.kind == Kind::streamed ? "a streamed answer (not stored)"
                          : answer.kind == Kind::failed ? "the app failed"
                                                        : "status " + std::to_string(answer.head.status);
        spdlog::debug("background refresh of {}: {}; the stale copy stays", request_.target, why);
        return;
    }
    pipeline_.run_response(ctx_, answer.head, &answer.body, entered_);
    spdlog::debug("background refresh of {}: status {}", request_.target, answer.head.status);
}

}  // namespace gantry
