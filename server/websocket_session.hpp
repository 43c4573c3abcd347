#pragma once
// One accepted WebSocket on a session's connection (private to the server's Asio translation
// units, like session.hpp; Beast's websocket headers stay inside websocket_session.cpp): the 101,
// then a read loop that pushes whole messages to the app's channel (and stops reading while the
// channel's inbox is full), a write loop that sends what the app queued (telling the channel what
// was written: the app's send() waits on that), the server's pings, and the close, whoever starts
// it. Lives on the session's I/O thread.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http/websocket_channel.hpp"
#include "server/access_log.hpp"
#include "server/session.hpp"

namespace gantry {

class MetricsStore;

// The accepted handshake, moved out of the request's exchange (whose frame ends at the upgrade:
// an idle WebSocket holds no HTTP parser or middleware state): what Beast's accept and the
// session's one access-log line need.
struct AcceptedHandshake {
    using Clock = std::chrono::steady_clock;
    HttpRequest request;                  // as the session kept it (no body)
    std::string subprotocol;              // the app's choice ("" : none)
    std::vector<HttpHeader> headers;      // the 101's: the app's, then the chain's response hooks'
    RequestTimings timings;               // the chain's request and response hooks
    Clock::time_point started{};          // the request's first byte
    Clock::time_point queued_at{};        // handed to the app
    std::chrono::system_clock::time_point wall_started{};
};

class WebSocketSession : public std::enable_shared_from_this<WebSocketSession> {
public:
    using Clock = std::chrono::steady_clock;
    using Outgoing = WebSocketChannel::Outgoing;

    WebSocketSession(std::shared_ptr<Session> session, std::shared_ptr<WebSocketChannel> channel,
                     AcceptedHandshake handshake);
    ~WebSocketSession();
    WebSocketSession(const WebSocketSession&) = delete;
    WebSocketSession& operator=(const WebSocketSession&) = delete;

    // Answers the handshake with the 101, then runs the WebSocket until it is closed and the app
    // told (`events`: what the app queued after its accept), reports it (one access-log line for
    // the whole session) and closes the session's connection. A coroutine of its own: the
    // session's request loop has ended.
    static asio::awaitable<void> run(std::shared_ptr<WebSocketSession> self, std::vector<Outgoing> events);

    // The channel has news (a message or a close from the app, or room in the inbox).
    void on_wake();
    // The server drains: close with 1001 after the settings' drain_close_after.
    void drain();

private:
    struct Stream;  // Beast's websocket stream over the session's socket (websocket_session.cpp)

    // Reads messages into the channel until the WebSocket ends (run's own loop).
    asio::awaitable<void> read_loop();
    // Writes what the app queued, in order, and starts the close handshake (a coroutine of its own).
    static asio::awaitable<void> write_loop(std::shared_ptr<WebSocketSession> self);
    // The channel's events into events_ (a deque only for the moment it takes).
    void take_events();
    // The server's pings: a timer, a ping, a timer for its answer (callbacks: no frame of their own).
    void schedule_ping();
    void ping();
    // The server closes (the app's close or failure, a peer silent after a ping, a drain): the
    // write loop sends the close frame; if the close handshake has not ended within the
    // settings' close_timeout, the connection is dropped.
    void request_close(int code, std::string reason);
    // The WebSocket is over: the app is told `code` (once), the loops stop.
    void end(int code, std::string reason);

    // The session's access-log line and metrics, at the end.
    void report();

    std::shared_ptr<Session> session_;
    std::shared_ptr<WebSocketChannel> channel_;
    AcceptedHandshake handshake_;
    MetricsStore* metrics_;
    const WebSocketSettings& settings_;
    std::unique_ptr<Stream> stream_;
    asio::steady_timer outgoing_wait_;   // the write loop, until the app queues something
    asio::steady_timer room_wait_;       // the read loop, until the app has taken messages
    asio::steady_timer ping_wait_;       // between pings, then for a ping's answer
    asio::steady_timer close_deadline_;  // a close handshake that takes too long: drop
    asio::steady_timer drain_wait_;      // a drain's close
    std::vector<Outgoing> events_;       // taken from the channel, not yet written: [next_event_, end)
    std::size_t next_event_ = 0;
    Clock::time_point last_heard_{};     // the peer's last frame (a message, a ping or a pong)
    Clock::time_point ping_sent_{};
    bool ping_pending_ = false;   // Beast takes one ping at a time: one behind a slow write is not doubled
    bool awaiting_pong_ = false;  // a pong ends the wait for it early
    bool closing_ = false;       // request_close() was called
    int close_code_ = kWsCloseNormal;
    std::string close_reason_;
    bool ended_ = false;
    bool counted_open_ = false;  // in the metrics' open-connections gauge
    WebSocketTotals totals_;
};

}  // namespace gantry
