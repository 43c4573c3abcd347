#pragma once
// A request body streamed to the app (the dispatcher takes bodies as they arrive: ASGI). Private
// to the server's Asio translation units (see session.hpp).
//
// While the app runs and the response writer writes, the pump reads the socket, feeds the request
// parser, and pushes the body's bytes into the RequestBodyStream the app takes them from. It
// stops reading while that queue is full (the app is behind: TCP flow control slows the client),
// and for a client that expects 100-continue until the app asks for the body. Once the app has
// given the body up (its response is complete) the rest is read and dropped, up to
// kDiscardedBodyMax, so that the connection's next request can be parsed; past that, or when the
// client may never send what it announced, the body is left unread and the connection closes
// after the response. The session waits for the pump to end before it parses the next request.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "http/request_body_stream.hpp"
#include "server/session.hpp"

namespace gantry {

// What is read and dropped of a body the app gave up, at most, before the connection is closed
// instead (as much as a lingering close reads).
inline constexpr std::uint64_t kDiscardedBodyMax = 4u << 20;

class Session::BodyPump : public std::enable_shared_from_this<BodyPump> {
public:
    // At the parser's header_done, with parser.stream_body() called. The parser stays the
    // session's (in serve()'s frame, which waits for the pump to end).
    static std::shared_ptr<BodyPump> make(Session& session, RequestParser& parser);
    BodyPump(Session& session, RequestParser& parser);

    // What request.body_stream is given.
    const std::shared_ptr<RequestBodyStream>& stream() const { return stream_; }

    // Reads until the body has ended (whole, refused, cut short) or the pump is stopped.
    static asio::awaitable<void> run(std::shared_ptr<BodyPump> self, std::shared_ptr<Session> session);
    // The response is written: the app no longer takes the body; `keep_alive` false stops the
    // pump at once (the connection closes anyway). Returns once the pump has ended.
    asio::awaitable<void> settle(bool keep_alive);

    bool running() const { return running_; }
    // The body was not read to its end: the connection cannot carry another request.
    bool left_unread() const { return left_unread_; }
    // Whether the connection can stay open after a response whose head goes out now: the rest of
    // the body will be read (or can be discarded within kDiscardedBodyMax).
    bool keeps_alive() const;
    bool take_continue_due();
    int refusal(const char*& reason) const {
        reason = refusal_reason_;
        return refusal_status_;
    }
    // The session closed: a parked pump ends.
    void on_close() { wake_.cancel(); }

private:
    asio::awaitable<void> pump();
    // The body bytes the parser has parsed: to the app, or counted and dropped once it gave up.
    void deliver();
    void refuse(int status, const char* reason);
    void arm_deadline();
    void disarm_deadline();

    Session& session_;
    RequestParser& parser_;
    std::shared_ptr<RequestBodyStream> stream_;
    const bool expects_continue_;
    asio::steady_timer wake_;       // a parked pump waits on it; cancel() wakes it
    asio::steady_timer done_;       // settle() waits on it for the end of run()
    asio::steady_timer deadline_;   // --timeout for each read of the body
    std::uint64_t deadline_generation_ = 0;
    std::string piece_;
    std::uint64_t discarded_ = 0;
    int refusal_status_ = 0;
    const char* refusal_reason_ = "";
    bool running_ = true;           // from make() until run() ends: serve() spawns it at once
    bool reading_ = false;
    bool stopped_ = false;
    bool timed_out_ = false;
    bool left_unread_ = false;
    bool continue_asked_ = false;   // the app asked: 100 Continue is due
    bool continue_sent_ = false;    // the writer took it (before any head)
};

}  // namespace gantry
