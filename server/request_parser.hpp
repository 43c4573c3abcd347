#pragma once
// Incremental HTTP/1.1 request parser: Beast's basic_parser (request line, headers, chunked and
// Content-Length framing, smuggling checks) feeding our HttpRequest, with gunicorn's limits.
// It never sees a socket: the session feeds it bytes, so it is unit-tested on strings.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/system/error_code.hpp>

#include "http/request.hpp"

namespace gantry {

struct ParserLimits {
    std::size_t request_line = 4094;    // 414 above (0 = unlimited)
    std::size_t fields = 100;           // 431 above (0 = unlimited)
    std::size_t field_size = 8190;      // 431 above (0 = unlimited)
    std::size_t body = 0;               // 413 above (0 = unlimited)
    std::size_t body_memory = 1 << 20;  // bodies larger than this spill to a temp file
};

class RequestParser {
public:
    enum class State {
        need_more,    // feed more bytes
        header_done,  // the header is complete; the body may follow (Expect: 100-continue point)
        complete,     // the whole request is here: take() it
        error,        // answer error_status() and close the connection
    };

    explicit RequestParser(const ParserLimits& limits);
    ~RequestParser();
    RequestParser(const RequestParser&) = delete;
    RequestParser& operator=(const RequestParser&) = delete;

    // Consumes a prefix of `bytes`; returns how many were used. Bytes after a complete request
    // (pipelining) are left unconsumed for the next parser.
    std::size_t feed(std::string_view bytes);
    // The peer closed: a message in progress is an error (400 if anything was received).
    void feed_eof();

    State state() const { return state_; }
    int error_status() const { return error_status_; }   // 400, 413, 414, 417, 431, 501, 505
    const char* error_reason() const { return error_reason_; }
    bool started() const;                 // any byte of this request seen
    bool expects_continue() const;        // header_done, "Expect: 100-continue", and a body to come
    bool keep_alive() const;

    // After header_done: the request so far (headers); after complete: the whole request.
    const HttpRequest& request() const;
    HttpRequest take();

    // From header_done on: the body's bytes are no longer kept in request().body but handed out
    // by take_body() as they are parsed (a body streamed to the app). What the body held so far
    // is the first of them. Throws std::system_error if it had spilled and cannot be read back.
    void stream_body();
    // Moves the body bytes parsed since the last call into `out` (replacing what it held).
    void take_body(std::string& out);
    // The Content-Length body's bytes not parsed yet; none for a chunked body (unknown).
    std::optional<std::uint64_t> body_remaining() const;

private:
    class Impl;
    // One Beast put() on `in` plus the checks that need the raw header bytes (versions, folding).
    std::size_t put_checked(std::string_view in, boost::system::error_code& ec);
    void fail(int status, const char* reason);

    std::unique_ptr<Impl> impl_;
    State state_ = State::need_more;
    int error_status_ = 0;
    const char* error_reason_ = "";
};

}  // namespace gantry
