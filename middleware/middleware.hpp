#pragma once
// A native middleware: C++ that runs on the I/O thread around the app, never touching Python.
// Request hooks run top to bottom, response hooks bottom to top; a middleware may answer a request
// itself (a static file, a cache hit) and the app is then never called.
#include <array>
#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/types.h>
#include <unistd.h>

#include "http/request_timings.hpp"
#include "http/request.hpp"
#include "http/response_sink.hpp"

namespace gantry {

// What on_request tells the pipeline.
enum class Flow {
    next,     // go on down the chain, and to the app after the last middleware
    respond,  // this middleware called RequestContext::respond(): the app is not called; the
              // on_response hooks of this middleware and those above it still run, in reverse
    wait,     // this middleware cannot decide yet (another request is fetching the same page; a
              // lookup runs off the I/O thread). The connection waits, without blocking its
              // thread, until ctx.wake() is called or ctx.wait_until()'s deadline passes, then
              // calls this middleware's on_request again (its state slot is kept).
};

// One `Server-Timing` entry a middleware wants the client to see (W3C syntax:
// name;dur=1.2;desc="..."), e.g. {"cache", -1, "miss"}.
struct ServerTimingMetric {
    std::string name;
    double duration_ms = -1;  // < 0: no dur
    std::string description;
};

// What a middleware keeps for one request between its hooks (e.g. the coding compression chose in
// on_request and its stream compressor): derive from it, store it in RequestContext::state().
class MiddlewareState {
public:
    virtual ~MiddlewareState() = default;
};

// A body a middleware answers with without copying it per request: bytes it keeps alive (shared
// with the write), or a range of an open file sent with sendfile(2).
struct AnswerBody {
    enum class Kind { owned, shared, file } kind = Kind::owned;
    std::shared_ptr<const std::string> shared;  // shared: [offset, offset + count) of these bytes
    int fd = -1;                                // file: owned until taken by the connection
    std::uint64_t offset = 0;
    std::uint64_t count = 0;
};

// Per-request state, owned by the connection for the duration of one request (and destroyed on
// the I/O thread that served it).
class RequestContext {
public:
    explicit RequestContext(HttpRequest& request) : request_(&request), client_addr_(request.remote_addr) {}
    // The context of a background refresh of `answered` (see request_background_refresh()), for
    // `request`, its copy: marked as a refresh, and holding the state slot of the middleware that
    // asked for it (the cache's lock on the page goes with it), taken from `answered`.
    RequestContext(HttpRequest& request, RequestContext& answered)
        : request_(&request), client_addr_(answered.client_addr_), background_refresh_(true) {
        if (answered.background_refresh_requested())
            states_[answered.refresh_asked_by_] = std::move(answered.states_[answered.refresh_asked_by_]);
    }
    ~RequestContext() {
        if (answer_.fd >= 0) ::close(answer_.fd);
    }
    RequestContext(const RequestContext&) = delete;
    RequestContext& operator=(const RequestContext&) = delete;

    HttpRequest& request() { return *request_; }
    const HttpRequest& request() const { return *request_; }
    // The connection keeps its own copy once the request has gone to Python, if a middleware
    // reads the request in its response hooks: they see that copy.
    void rebind(HttpRequest& request) { request_ = &request; }
    // The client's address (after X-Forwarded-For from trusted proxies), valid in every hook.
    const std::string& client_addr() const { return client_addr_; }

    // Answer the request here (from on_request, then return Flow::respond).
    void respond(ResponseHead head, std::string body) {
        answered_ = true;
        head_ = std::move(head);
        body_ = std::move(body);
        if (answer_.fd >= 0) ::close(answer_.fd);
        answer_ = AnswerBody{};
    }
    // Answer with bytes the middleware keeps (e.g. a static file held in memory): the head must
    // carry the Content-Length (`count`), the bytes are written from `bytes` itself.
    void respond_shared(ResponseHead head, std::shared_ptr<const std::string> bytes, std::uint64_t offset,
                        std::uint64_t count) {
        respond(std::move(head), {});
        answer_.kind = AnswerBody::Kind::shared;
        answer_.shared = std::move(bytes);
        answer_.offset = offset;
        answer_.count = count;
    }
    // Answer with [offset, offset + count) of an open file, sent with sendfile(2); takes `fd`
    // (closed by the context if the connection never takes it). The head carries Content-Length.
    void respond_file(ResponseHead head, int fd, std::uint64_t offset, std::uint64_t count) {
        respond(std::move(head), {});
        answer_.kind = AnswerBody::Kind::file;
        answer_.fd = fd;
        answer_.offset = offset;
        answer_.count = count;
    }
    bool answered() const { return answered_; }
    ResponseHead& answer_head() { return head_; }
    std::string& answer_body() { return body_; }
    // The shared or file body of an answer (kind owned: the body is answer_body()).
    AnswerBody& answer_extra() { return answer_; }

    // From on_request, with an answer (Flow::respond, the cache's stale copy): the app is still to be
    // called for this request, in the background, once the answer is on its way; no client waits
    // for that call. Its response runs through the response hooks, which may store it, and is
    // then dropped. The asking middleware's state slot goes to the refresh's context.
    void request_background_refresh() { refresh_asked_by_ = current_; }
    bool background_refresh_requested() const { return refresh_asked_by_ != kNone; }
    // The context a background refresh runs in: a middleware answers nothing and waits for nothing
    // here (nothing would see it), it lets the request go on to the app.
    bool is_background_refresh() const { return background_refresh_; }

    // A WebSocket handshake the app will take over (marked by the connection before the chain
    // runs): a middleware may refuse it (respond), but one that serves or rewrites HTTP responses
    // (static, cache, compress) leaves it alone. Its response hooks see the 101's head only.
    void mark_websocket_handshake() { websocket_handshake_ = true; }
    bool is_websocket_handshake() const { return websocket_handshake_; }

    std::vector<ServerTimingMetric>& server_timing() { return server_timing_; }

    // This request's stage durations so far (a middleware reporting them reads them here).
    const RequestTimings& timings() const { return timings_; }
    RequestTimings& mutable_timings() { return timings_; }

    // The running middleware's own slot (the pipeline runner says whose turn it is): empty until
    // the middleware fills it, destroyed with the request. Middlewares stay const and stateless.
    std::unique_ptr<MiddlewareState>& state() { return states_[current_]; }
    void set_current(std::size_t index) { current_ = index; }

    // Flow::wait: when to call on_request again at the latest. A wake-up (wake_handle()) comes
    // sooner; either may come early (then on_request just waits again).
    using WaitClock = std::chrono::steady_clock;
    void wait_until(WaitClock::time_point deadline) { wait_deadline_ = deadline; }
    WaitClock::time_point wait_deadline() const { return wait_deadline_; }
    // A thread-safe wake-up for this request while it waits (given by the connection; empty
    // outside one). Calling it after the request has moved on does nothing.
    void set_wake_handle(const std::function<void()>* wake) { wake_ = wake; }
    std::function<void()> wake_handle() const { return wake_ ? *wake_ : std::function<void()>{}; }
    // Which middleware waits (set by the pipeline runner); npos when none.
    std::size_t waiting_at() const { return waiting_at_; }
    void set_waiting_at(std::size_t index) { waiting_at_ = index; }

    // Set by a middleware that rewrites a streamed body (compression): the connection then passes
    // every body byte through the chunk hooks, file bodies too (read in pieces, not sendfile'd).
    void mark_stream_rewritten() { stream_rewritten_ = true; }
    bool stream_rewritten() const { return stream_rewritten_; }

    // From on_chunk/on_stream_end: the stream cannot go on correctly (a compressor failed mid-
    // stream). The hooks above are skipped, nothing more of the body is sent and the connection
    // is closed without the stream's end, so the client sees a cut-short response, never a
    // corrupt one. A throwing chunk hook has the same effect.
    void abort_response() { response_aborted_ = true; }
    bool response_aborted() const { return response_aborted_; }

private:
    static constexpr std::size_t kNone = static_cast<std::size_t>(-1);

    HttpRequest* request_;
    std::string client_addr_;
    RequestTimings timings_;
    bool answered_ = false;
    ResponseHead head_;
    std::string body_;
    AnswerBody answer_;
    std::vector<ServerTimingMetric> server_timing_;
    std::array<std::unique_ptr<MiddlewareState>, kMaxMiddleware> states_;
    std::size_t current_ = 0;
    bool stream_rewritten_ = false;
    bool response_aborted_ = false;
    WaitClock::time_point wait_deadline_{};
    const std::function<void()>* wake_ = nullptr;  // the connection's, which outlives the request
    std::size_t waiting_at_ = static_cast<std::size_t>(-1);
    std::size_t refresh_asked_by_ = kNone;  // the middleware that asked for a background refresh
    bool background_refresh_ = false;
    bool websocket_handshake_ = false;
};

class Middleware {
public:
    virtual ~Middleware() = default;
    virtual std::string_view name() const = 0;

    virtual Flow on_request(RequestContext&) const { return Flow::next; }
    // `whole_body` is the complete body when the response is sent whole, nullptr for a stream
    // (whose chunks then pass through on_chunk). The head may be rewritten.
    virtual void on_response(RequestContext&, ResponseHead&, std::string* whole_body) const {}
    virtual void on_chunk(RequestContext&, std::string& chunk) const {}
    // A chunk hook that cannot rewrite the chunk throws or calls ctx.abort_response().
    // The end of a stream (not called for whole bodies, nor when the app fails mid-stream).
    // `tail` holds what the middlewares below emitted at their end: treat it like a last chunk,
    // then append this middleware's own final bytes (a compressor's end of stream). Whatever
    // `tail` holds after the outermost middleware is sent before the stream's end.
    virtual void on_stream_end(RequestContext&, std::string& tail) const {}

    // Whether on_response/on_chunk read ctx.request(). Only then does the connection keep a copy
    // of the request once it has gone to Python (a cache needs it; timing needs only the address).
    virtual bool reads_request_in_response() const { return true; }
    // Whether on_request needs the whole request body in ctx.request().body. Only then is a body
    // read whole before the chain runs for an app that would take it as it arrives (ASGI);
    // otherwise on_request sees the head, and the body may still be on its way.
    virtual bool needs_request_body() const { return false; }
};

}  // namespace gantry
