#pragma once
// A native middleware: C++ that runs on the I/O thread around the app, never touching Python.
// Request hooks run top to bottom, response hooks bottom to top; a middleware may answer a request
// itself (a static file, a cache hit) and the app is then never called.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/types.h>
#include <unistd.h>

#include "middleware/request_timings.hpp"
#include "server/http_request.hpp"
#include "server/response_sink.hpp"

namespace gantry {

// What on_request tells the pipeline.
enum class Flow {
    next,     // go on down the chain, and to the app after the last middleware
    respond,  // this middleware called RequestContext::respond(): the app is not called; the
              // on_response hooks of this middleware and those above it still run, in reverse
};

// One `Server-Timing` entry a middleware wants the client to see (W3C syntax:
// name;dur=1.2;desc="..."), e.g. {"cache", -1, "miss"}.
struct ServerTimingMetric {
    std::string name;
    double duration_ms = -1;  // < 0: no dur
    std::string description;
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

// Per-request state, owned by the connection for the duration of one request.
class RequestContext {
public:
    explicit RequestContext(HttpRequest& request) : request_(&request), client_addr_(request.remote_addr) {}
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

    std::vector<ServerTimingMetric>& server_timing() { return server_timing_; }

    // This request's stage durations so far (a middleware reporting them reads them here).
    const RequestTimings& timings() const { return timings_; }
    RequestTimings& mutable_timings() { return timings_; }

private:
    HttpRequest* request_;
    std::string client_addr_;
    RequestTimings timings_;
    bool answered_ = false;
    ResponseHead head_;
    std::string body_;
    AnswerBody answer_;
    std::vector<ServerTimingMetric> server_timing_;
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

    // Whether on_response/on_chunk read ctx.request(). Only then does the connection keep a copy
    // of the request once it has gone to Python (a cache needs it; timing needs only the address).
    virtual bool reads_request_in_response() const { return true; }
};

}  // namespace gantry
