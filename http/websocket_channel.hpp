#pragma once
// One WebSocket between the connection that speaks the protocol (an I/O thread: Beast's websocket
// stream does the frames, masks, pings, deflate and close handshake) and the app (the ASGI loop).
// Only whole messages and the decisions cross. Bounded both ways: the connection stops reading
// the socket while the app has kWebSocketInboxBytes of messages untaken (a slow app slows its
// client down), and the app's send() waits once `outbox_limit` bytes are queued and not yet
// written (a slow client slows the app down). Thread-safe. No Asio and no Python: each side is
// woken through a function, called outside the lock, that gets it onto its own thread.
//
// The app's side, in order: exactly one decision on the handshake (accept, deny, close before
// accept, or fail), then - accepted - any number of send()s and one close() or fail(). The
// connection's side takes those as Outgoing events, in the order they were made.
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "http/request.hpp"
#include "http/response_head.hpp"

namespace gantry {

// Messages received and not yet taken by the app before the connection stops reading.
inline constexpr std::size_t kWebSocketInboxBytes = 256 * 1024;

// Close codes (RFC 6455 section 7.4.1) gantry itself uses.
inline constexpr int kWsCloseNormal = 1000;
inline constexpr int kWsCloseGoingAway = 1001;     // the worker drains
inline constexpr int kWsCloseAbnormal = 1006;      // never sent: the connection dropped without a close frame
inline constexpr int kWsCloseInternalError = 1011; // the app raised, or the peer stopped answering pings

struct WebSocketMessage {
    bool text = false;   // a text message (valid UTF-8), else binary
    std::string data;
};

class WebSocketChannel {
public:
    // `wake_connection` is called (from the app's thread) after the app queued something for the
    // connection (a decision, a message, a close) or took messages that had filled the inbox.
    // Once per batch: it is not called again until the connection has taken what is queued.
    WebSocketChannel(std::function<void()> wake_connection, std::size_t outbox_limit,
                     std::size_t inbox_limit = kWebSocketInboxBytes);
    WebSocketChannel(const WebSocketChannel&) = delete;
    WebSocketChannel& operator=(const WebSocketChannel&) = delete;

    // ---- the connection's side (its I/O thread)

    // What the app queued for the connection.
    struct Outgoing {
        enum class Kind {
            accept,   // the handshake's 101: `subprotocol` (empty: none) and extra `headers`
            deny,     // an HTTP answer instead of the handshake: `head` and `body` (close before
                      // accept is a deny with 403)
            message,  // accepted: send `message`
            close,    // accepted: close with `code` and `reason`
            fail,     // the app broke: before the handshake a 500, after it a close with 1011
        } kind = Kind::fail;
        std::string subprotocol;
        std::vector<HttpHeader> headers;
        ResponseHead head;
        std::string body;
        WebSocketMessage message;
        int code = kWsCloseNormal;
        std::string reason;
    };
    // Moves every queued event into `out` (appended). Re-arms wake_connection.
    void take_outgoing(std::deque<Outgoing>& out);
    // `bytes` of the messages taken were written to the socket: an app waiting in send() may go on.
    void written(std::size_t bytes);

    // A message from the peer, for the app. False once the inbox is at its limit: read no more
    // until wake_connection is called and inbox_has_room() says so.
    bool push(WebSocketMessage message);
    bool inbox_has_room() const;
    // The WebSocket is over (the peer's close frame with its code and reason, or kWsCloseAbnormal
    // for a connection lost, or the code the server closed with): the app gets the queued messages,
    // then the disconnect; its later sends are refused. Idempotent: the first code stays.
    void disconnected(int code, std::string reason = {});

    // ---- the app's side (one thread at a time: the loop's)

    struct Event {
        enum class Kind {
            message,       // `message`
            pending,       // nothing yet: when_ready() says when
            disconnected,  // `code`, `reason`: the end; every later take() says it again
        } kind = Kind::pending;
        WebSocketMessage message;
        int code = kWsCloseAbnormal;
        std::string reason;
    };
    Event take();
    // After take() said pending: `ready` is called once, from the connection's thread, when a
    // message or the disconnect is there. False if one already is (`ready` is dropped: take again).
    bool when_ready(std::function<void()> ready);

    // The decisions and messages. Each returns false once the WebSocket is over (gone()): nothing
    // is queued then. The channel does not check their order; the app side does.
    bool accept(std::string subprotocol, std::vector<HttpHeader> headers);
    bool deny(ResponseHead head, std::string body);
    // Never blocks: the message is queued whatever the outbox holds. True: there is room for more.
    // False: the outbox is full (or the WebSocket is over: gone() tells which); when full,
    // `on_space` is called once, from the connection's thread, as soon as there is room again
    // (with true) or the WebSocket is over first (with false). The answer is fixed when it is
    // called: the caller's thread may only act on it after the peer has gone, and a message that
    // was written must not be reported lost.
    using SpaceCallback = std::function<void(bool room)>;
    bool send(WebSocketMessage message, SpaceCallback on_space);
    bool close(int code, std::string reason);
    void fail();
    // True once disconnected() was called: the app's sends go nowhere.
    bool gone() const;

private:
    // Queues `event` and returns the connection's wake-up if one is due (call it unlocked).
    std::function<void()> queue(Outgoing event);

    const std::function<void()> wake_connection_;
    const std::size_t outbox_limit_;
    const std::size_t inbox_limit_;
    mutable std::mutex mutex_;
    // Vectors, not deques: an empty std::deque holds an allocation (libstdc++), and thousands of
    // idle WebSockets would each keep two.
    std::vector<Outgoing> outgoing_;
    bool wake_pending_ = false;      // wake_connection_ called, the connection has not taken yet
    std::size_t outbox_bytes_ = 0;   // messages queued or taken and not yet written
    SpaceCallback on_space_;
    std::vector<WebSocketMessage> inbox_;  // [inbox_head_, end) not yet taken
    std::size_t inbox_head_ = 0;
    std::size_t inbox_bytes_ = 0;
    bool connection_waits_ = false;  // push() said the inbox is full
    std::function<void()> ready_;    // the app's, after take() said pending
    bool gone_ = false;
    int code_ = kWsCloseAbnormal;
    std::string reason_;
};

}  // namespace gantry
