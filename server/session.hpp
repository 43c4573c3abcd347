#pragma once
// Private to the server's Asio translation units (http_server.cpp, session.cpp,
// response_writer.cpp, websocket_session.cpp): one connection's session, and what every session of a server shares.
// Includes Asio and Beast: keep it out of every other file.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include <sys/socket.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "server/exchange_report.hpp"
#include "server/http_server.hpp"
#include "server/load_board.hpp"
#include "server/native_endpoints.hpp"
#include "server/request_parser.hpp"

namespace gantry {

namespace asio = boost::asio;
using Protocol = asio::generic::stream_protocol;
using Socket = Protocol::socket;

class SessionSink;
class WebSocketSession;

// A worker sends at most one connection away per this interval: long enough for the client to
// reconnect and the board to show where it went before the next decision.
inline constexpr auto kSendAwayInterval = std::chrono::milliseconds(200);

// How long a draining server still waits on an idle keep-alive connection for a request: long
// enough for a request its client sent just before the drain to arrive, short enough for a deploy.
inline constexpr auto kDrainLinger = std::chrono::milliseconds(500);

// One listening socket as its sessions see it.
struct ListenerInfo {
    std::string server_name;
    std::uint16_t server_port = 0;
    int family = AF_INET;     // or AF_INET6, AF_UNIX
    int fd = -1;
    bool metrics = false;     // the metrics address: /metrics only, no chain, no app
};

// What every session of one server shares.
struct ServerShared {
    HttpServerSettings settings;
    HealthEndpoint health;    // from settings.health_path
    AppDispatcher* dispatcher = nullptr;
    std::atomic<std::size_t> connections{0};
    std::atomic<bool> draining{false};  // readiness: a draining worker is not ready
    // Accept loops still running: one whose accept completed as its acceptor closed has a
    // connection it has not made a session of yet. A drained server is idle only once none runs.
    std::atomic<std::size_t> accept_loops{0};
    std::atomic<bool> cap_reached_logged{false};  // the --worker-connections warning, once
    LoadBoard* board = nullptr;          // settings.board: balancing across workers (null: none)
    LoadBoard::Slot* load = nullptr;     // this worker's slot on it
    std::atomic<std::int64_t> last_send_away_ns{0};  // steady clock, for kSendAwayInterval
};

// One connection: reads and parses requests, runs each through the native endpoints, the
// middleware chain and the app, has the ResponseWriter write the answer, keeps the connection
// alive (or lingers and closes), and enforces the header, idle and I/O deadlines. Lives on one
// I/O thread; registers itself in that thread's session set.
class Session : public std::enable_shared_from_this<Session> {
public:
    using Clock = std::chrono::steady_clock;

    Session(Socket socket, asio::io_context& context, std::unordered_set<Session*>& registry, ServerShared& shared,
            const ListenerInfo& listener);
    ~Session();

    // The session lives as long as this coroutine: it holds the owning pointer in its frame.
    static asio::awaitable<void> run(std::shared_ptr<Session> self);
    // Asked for by `sink` (an ASGI app waits in receive() for http.disconnect): the socket is
    // watched while that exchange runs. An EOF from the peer is told to the current sink, a reset
    // closes the connection; bytes of a next request end the watch. Only on demand: a watch per
    // request costs an epoll change and a wake-up each (measured: ~20% of a hello's CPU).
    void start_watching_peer(const SessionSink* sink);

    // Stop after the current response. An idle keep-alive connection closes after a short
    // linger (a request its client sent just now is still served, with Connection: close); a
    // connection accepted but not yet spoken on gets its first request served: its client has
    // sent it or is about to, and a close now would fail a request no one refused.
    void drain();
    // Close now: in-flight writes fail, a blocked app sees client_gone().
    void close();
    // At --worker-connections with a client waiting: a keep-alive connection between requests
    // closes now, as at its keep-alive timeout (nginx reclaims its reusable connections alike).
    // False if this one is busy or has not been served yet.
    bool reclaim_if_idle();
    // The sink queued events (posted to this thread by wake_session).
    void on_sink_ready();
    static asio::awaitable<void> watch_peer(std::shared_ptr<Session> self);
    asio::io_context::executor_type executor() { return context_.get_executor(); }

    // What the response writer uses, for the one response it writes.
    const HttpServerSettings& settings() const { return shared_.settings; }
    const ListenerInfo& listener() const { return listener_; }
    Socket& socket() { return socket_; }
    bool closed() const { return closed_; }
    bool draining() const { return draining_; }
    // Whether the response being written is this connection's last: the server drains, the
    // connection is being sent to another worker and no request already read waits behind it, or
    // the request's streamed body may be left unread (see BodyPump::keeps_alive).
    bool closes_after_response() const;
    // What the response writer is told of a request body streamed to the app (none: 0 and false).
    // The app asked for the body of a request that expects 100-continue: true once, and the
    // writer sends "100 Continue" if no head has gone out yet.
    bool take_continue_due();
    // The body was refused while the app ran (malformed, too large, too slow): its status
    // (reason set), or 0. The writer answers it if the app's head has not gone out, else closes.
    int body_refusal(const char*& reason) const;
    // The app's response is complete (its end or failure was taken): the rest of the body is no
    // longer the app's, and is read and dropped while the response is written.
    void response_complete();
    // Writes the buffers (then clears them) under the I/O deadline; on failure the connection
    // is closed and false returned.
    asio::awaitable<bool> write_all(std::vector<asio::const_buffer>& buffers);
    // Until on_sink_ready() or close() (either cancels the wait: its error is not looked at).
    asio::awaitable<void> wait_for_sink() {
        return wake_.async_wait(asio::redirect_error(asio::use_awaitable, sink_wait_error_));
    }
    // The next socket operation must progress within --timeout.
    void arm_io_deadline() { arm(Clock::now() + shared_.settings.io_timeout); }
    // TCP_CORK: hold partial segments while a head and a file's first bytes are written.
    void set_cork(bool on);

    // The WebSocket this connection was upgraded to, while it runs (null: none): it is woken
    // with the session (on_sink_ready) and told of a drain.
    void attach_websocket(WebSocketSession* websocket) { websocket_ = websocket; }
    // Upgraded: the HTTP read buffer is freed (a WebSocket reads into Beast's own buffer).
    void release_read_buffer() { buffer_ = boost::beast::flat_buffer(); }
    // The WebSocket has ended: the report its one access-log line goes to, and the count of
    // exchanges on this connection it adds one to.
    const ExchangeReport& report() const { return report_; }
    void count_websocket_session();

private:
    std::size_t header_budget() const;
    void arm(Clock::time_point deadline);
    void disarm();
    RequestParser::State feed(RequestParser& parser);
    // Reads at most `step` bytes more into the buffer. The default: a typical request arrives in
    // one read, and no connection holds more buffer than its requests need.
    asio::awaitable<std::size_t> read_some(boost::system::error_code& ec, std::size_t step = 16 * 1024);
    asio::awaitable<void> send_error(int status, const char* reason, bool keep_alive, bool is_head);
    asio::awaitable<void> refuse(const RequestParser& parser);
    asio::awaitable<void> linger_close();

    asio::awaitable<void> serve();
    // A call just went to a Python queue that already had one waiting: if another worker is idle
    // with fewer connections, the busiest connection of this thread closes after its next
    // response, and its client reconnects to the less loaded worker (see LoadBoard).
    void consider_sending_away();
    bool counted() const { return shared_.load && !listener_.metrics; }
    // One request from its parse to its report (session.cpp), held in serve()'s frame.
    class Exchange;
    // Reads a request body streamed to the app while the response is written (body_pump.hpp).
    class BodyPump;
    // Whether a body still to come is streamed to the app rather than read whole first.
    bool streams_request_body() const;
    // Whether `request` becomes a WebSocket: it asks for one, and the server speaks it (--ws, an
    // app side that takes_websockets(), not the metrics address). Otherwise it is a request as any.
    bool takes_websocket(const HttpRequest& request) const;

    Socket socket_;
    asio::io_context& context_;
    std::unordered_set<Session*>& registry_;
    ServerShared& shared_;
    const ListenerInfo& listener_;
    const ExchangeReport report_;
    asio::steady_timer watchdog_;
    asio::steady_timer wake_;
    boost::system::error_code sink_wait_error_;   // operation_aborted: the wake-up from on_sink_ready()
    asio::steady_timer middleware_wait_;          // a request whose middleware returned Flow::wait
    std::function<void()> middleware_wake_;       // cancels middleware_wait_ from any thread
    boost::beast::flat_buffer buffer_;
    std::shared_ptr<SessionSink> sink_;
    std::shared_ptr<BodyPump> pump_;   // the current request's, while its response is written
    std::string peer_addr_;
    std::uint16_t peer_port_ = 0;
    Clock::time_point deadline_{};
    std::uint64_t timer_generation_ = 0;
    bool armed_ = false;
    bool timed_out_ = false;
    bool idle_ = true;
    bool served_ = false;   // a request was answered on this connection
    bool reclaimed_ = false;  // reclaim_if_idle() armed its close
    bool draining_ = false;
    bool closed_ = false;
    bool watching_peer_ = false;   // a watch_peer coroutine is pending
    bool keep_alive_ = true;
    bool sent_away_ = false;        // close after the next response (rebalancing)
    std::uint64_t requests_ = 0;    // answered on this connection: which one is the busiest
    WebSocketSession* websocket_ = nullptr;  // the upgraded connection's, while it runs
};

}  // namespace gantry
