#pragma once
// Turns an application's ResponseHead into the bytes of an HTTP/1.1 status line and header block,
// deciding how the body is framed (Content-Length, chunked, or until close) and whether the
// connection stays open. Pure: no sockets, unit-tested on strings.
#include <cstdint>
#include <optional>
#include <string>

#include "http/response_sink.hpp"

namespace gantry {

enum class BodyFraming {
    none,            // HEAD, 1xx, 204, 304: no body bytes are sent
    content_length,  // exactly `content_length` bytes follow
    chunked,         // HTTP/1.1 chunked transfer coding
    until_close,     // HTTP/1.0 stream of unknown length: the close ends it
};

struct RequestFacts {
    unsigned version = 11;      // 10 or 11
    bool is_head = false;
    bool keep_alive = true;     // what the client asked for
    bool must_close = false;    // the server wants to close (draining, error)
};

struct RenderedHead {
    std::string bytes;
    BodyFraming framing = BodyFraming::none;
    std::uint64_t content_length = 0;  // with content_length framing: the bytes to send
    bool keep_alive = true;
};

// `whole_body_size`: the size of the complete body when the whole response is known (send_whole);
// nullopt for a stream.
RenderedHead render_head(const ResponseHead& head, const RequestFacts& request,
                         std::optional<std::uint64_t> whole_body_size);

// A small complete response the server makes itself (400, 408, 413, 414, 431, 500, ...).
// `with_body` false for HEAD: the Content-Length still says what a GET would get.
std::string render_error_response(int status, const char* reason, bool keep_alive, bool with_body = true);

// The reason phrase for a status code ("Not Found"); "Unknown" for codes without one.
const char* reason_phrase(int status);

// "Thu, 26 Nov 2026 21:39:39 GMT", recomputed at most once a second per thread.
const std::string& http_date_now();

}  // namespace gantry
