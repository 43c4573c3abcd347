#pragma once
// One accepted WebSocket on a session's connection (private to the server's Asio translation
// units, like session.hpp; Beast's websocket headers stay inside websocket_session.cpp): the 101,
// then a read loop that pushes whole messages to the app's channel (and stops reading while the
// channel's inbox is full), a write loop that sends what the app queued (telling the channel what
// was written: the app's send() waits on that), the server's pings, and the close, whoever starts
// it. Lives on the session's I/O thread.
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "http/websocket_channel.hpp"
#include "server/access_log.hpp"
#include "server/session.hpp"

namespace gantry {

class MetricsStore;

class WebSocketSession : public std::enable_shared_from_this<WebSocketSession> {
public:
    using Clock = std::chrono::steady_clock;
    using Outgoing = WebSocketChannel::Outgoing;

    // `metrics` null: none counted.
    WebSocketSession(std::shared_ptr<Session> session, std::shared_ptr<WebSocketChannel> channel, MetricsStore* metrics);
    ~WebSocketSession();
    WebSocketSession(const WebSocketSession&) = delete;
    WebSocketSession& operator=(const WebSocketSession&) = delete;

    // Answers `request` (the handshake, as the session kept it) with the 101, carrying the app's
    // `subprotocol` and `headers` (the app's and the middleware chain's), then runs the WebSocket
    // until it is closed and the app told; `events`: what the app queued after its accept. The
    // totals are the session's access-log line. The socket is the session's and stays open: the
    // session closes it.
    static asio::awaitable<WebSocketTotals> run(std::shared_ptr<WebSocketSession> self, const HttpRequest& request,
                                                std::string subprotocol, std::vector<HttpHeader> headers,
                                                std::deque<Outgoing> events);

    // The channel has news (a message or a close from the app, or room in the inbox).
    void on_wake();
    // The server drains: close with 1001 after the settings' drain_close_after.
    void drain();

private:
    struct Stream;  // Beast's websocket stream over the session's socket (websocket_session.cpp)

    static asio::awaitable<void> read_loop(std::shared_ptr<WebSocketSession> self);
    static asio::awaitable<void> ping_loop(std::shared_ptr<WebSocketSession> self);
    asio::awaitable<void> write_loop(std::deque<Outgoing> events);
    // The server closes (the app's close or failure, a peer silent after a ping, a drain): the
    // write loop sends the close frame; if the close handshake has not ended within the
    // settings' close_timeout, the connection is dropped.
    void request_close(int code, std::string reason);
    // The WebSocket is over: the app is told `code` (once), the loops stop.
    void end(int code, std::string reason);

    std::shared_ptr<Session> session_;
    std::shared_ptr<WebSocketChannel> channel_;
    MetricsStore* metrics_;
    const WebSocketSettings& settings_;
    std::unique_ptr<Stream> stream_;
    asio::steady_timer outgoing_wait_;   // the write loop, until the app queues something
    asio::steady_timer room_wait_;       // the read loop, until the app has taken messages
    asio::steady_timer ping_wait_;       // the ping loop, between pings
    asio::steady_timer close_deadline_;  // a close handshake that takes too long: drop
    asio::steady_timer drain_wait_;      // a drain's close
    asio::steady_timer reader_done_;     // run() waits on it for the read loop's end
    Clock::time_point last_heard_{};     // the peer's last frame (a message, a ping or a pong)
    bool reading_ = false;
    bool awaiting_pong_ = false;  // the ping loop waits for the answer to its ping
    bool closing_ = false;       // request_close() was called
    bool close_sent_ = false;    // the write loop has started the close handshake
    int close_code_ = kWsCloseNormal;
    std::string close_reason_;
    bool ended_ = false;
    bool counted_open_ = false;  // in the metrics' open-connections gauge
    WebSocketTotals totals_;
};

}  // namespace gantry
