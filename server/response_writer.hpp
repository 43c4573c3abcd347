#pragma once
// Writes one response on a session's socket: takes the sink's events as the app side queues them,
// frames the body as render_head decided (Content-Length, chunked, until close, none for HEAD and
// bodiless statuses), runs the chain's response and chunk hooks on the way, and sends files with
// sendfile(2) (or through the chunk hooks when a middleware rewrites the stream). Private to the
// server's Asio translation units (see session.hpp).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "server/response_framing.hpp"
#include "server/session.hpp"
#include "server/session_sink.hpp"

namespace gantry {

class Pipeline;
class RequestContext;

// The chain's response side for this request; pipeline null: no hooks run.
struct ResponseHooks {
    const Pipeline* pipeline = nullptr;
    RequestContext* ctx = nullptr;
    std::size_t entered = 0;  // the middlewares whose response hooks run (Pipeline::run_request)
};

// What was written, for the session (keep the connection?) and the exchange report.
struct WrittenResponse {
    int status = 0;                     // 0: no head was written (the connection closed first)
    std::uint64_t body_bytes = 0;       // body bytes queued for the socket, framing excluded
    std::vector<HttpHeader> headers;    // the head's fields, as the hooks left them
    bool keep_alive = false;            // the response allows another request on the connection
    bool finished = false;              // the app side's last event (end or fail) was taken
};

// One response, from its first sink event to its last byte: made by the session for each request,
// it owns only that response's buffers. Reads the session's drain state as it writes (a drain
// that begins meanwhile closes the connection after this response).
class ResponseWriter {
public:
    using Clock = std::chrono::steady_clock;

    // `logged`: the session's copy of the request, for log lines (may be null).
    ResponseWriter(Session& session, SessionSink& sink, const ResponseHooks& hooks, const RequestFacts& facts,
                   Clock::time_point queued_at, const HttpRequest* logged)
        : session_(session), sink_(sink), hooks_(hooks), facts_(facts), queued_at_(queued_at), logged_(logged) {}

    asio::awaitable<WrittenResponse> write();

private:
    void on_head(std::size_t i);
    void on_fail(const SinkEvent& e);
    // The request's streamed body was refused while the app ran: its error answer if no head
    // has gone out, else a close.
    asio::awaitable<void> refuse_body(int status, const char* reason);
    // Queues body bytes with the response's framing; they must stay alive until written.
    void queue_body(std::string_view bytes);
    // A file body: sendfile(2), corked behind the head, or read through the chunk hooks.
    asio::awaitable<void> send_file(SinkEvent& e);
    asio::awaitable<void> send_file_through_hooks(SinkEvent& e);

    Session& session_;
    SessionSink& sink_;
    const ResponseHooks hooks_;
    RequestFacts facts_;
    const Clock::time_point queued_at_;
    const HttpRequest* logged_;

    WrittenResponse out_;
    RenderedHead rendered_;
    bool head_sent_ = false;
    bool truncated_ = false;
    std::string trailer_bytes_;  // "0\r\n" and the trailer fields, when the app sent some
    bool aborted_by_hooks_ = false;  // a chunk hook gave up mid-stream: send nothing more, close
    bool streaming_hooks_ = false;  // the chain's on_chunk hooks see a streamed body
    std::uint64_t remaining_ = 0;   // content_length framing: bytes still allowed
    std::deque<SinkEvent> events_;
    std::vector<asio::const_buffer> buffers_;
    std::deque<std::string> chunk_lines_;  // chunk-size lines, alive until written (a deque never moves them)
    std::string error_bytes_;
    std::string stream_tail_;       // what the chain's on_stream_end hooks send last (a compressor's end)
    std::string file_piece_;        // a file body read in pieces when the chain rewrites the stream
};

// "100 Continue" before the body of a request that expects it; false if the connection failed.
asio::awaitable<bool> write_continue(Session& session);

}  // namespace gantry
