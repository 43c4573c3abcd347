#pragma once
// The HTTP side of one worker process: Asio I/O threads, the acceptors on the shared listen
// sockets, and one session per connection. Requests that need Python go to the AppDispatcher;
// no I/O thread ever waits for the GIL. Asio and Beast stay inside http_server.cpp, session.cpp,
// response_writer.cpp and websocket_session.cpp (with their private headers session.hpp and
// websocket_session.hpp; Beast's websocket headers in websocket_session.cpp alone).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/app_dispatcher.hpp"
#include "server/exchange_report.hpp"
#include "server/listen_socket.hpp"
#include "server/request_parser.hpp"

namespace gantry {

class LoadBoard;
class Pipeline;

// Defaults of the settings below, the same as the command line's (config.hpp); the worker sets
// each from its configuration.
inline constexpr std::chrono::milliseconds kDefaultHeaderTimeout{10'000};  // --header-timeout
inline constexpr std::chrono::milliseconds kDefaultKeepAlive{2'000};       // --keep-alive
inline constexpr std::chrono::milliseconds kDefaultIoTimeout{30'000};      // --timeout
// A streamed response queues this much before the app waits for the socket: enough to keep a
// fast client's socket busy between two GIL hand-offs, small enough per connection.
inline constexpr std::size_t kDefaultStreamBufferBytes = 256 * 1024;

// WebSocket (uvicorn's --ws* options), for a dispatcher that takes_websockets().
struct WebSocketSettings {
    bool enabled = true;                               // --ws auto; none: an upgrade is an ordinary request
    std::size_t max_size = 16u << 20;                  // --ws-max-size: a larger message closes with 1009
    std::chrono::milliseconds ping_interval{20'000};   // --ws-ping-interval (0: no pings)
    std::chrono::milliseconds ping_timeout{20'000};    // --ws-ping-timeout: silent this long after a ping: 1011 (0: none)
    bool per_message_deflate = true;                   // --ws-per-message-deflate
    // A draining server closes its WebSockets with 1001 this long after the drain began (the
    // worker sets it a margin short of --graceful-timeout, so the close handshake and the app's
    // disconnect handling end before the worker is stopped).
    std::chrono::milliseconds drain_close_after{0};
    // How long the close handshake may take before the connection is dropped (a silent peer).
    std::chrono::milliseconds close_timeout{5'000};
};

struct HttpServerSettings {
    ParserLimits limits;
    std::chrono::milliseconds header_timeout = kDefaultHeaderTimeout;  // first byte -> whole header (408)
    std::chrono::milliseconds keep_alive = kDefaultKeepAlive;          // idle between requests (silent close)
    std::chrono::milliseconds io_timeout = kDefaultIoTimeout;          // each body read / response write stall
    std::vector<std::string> forwarded_allow_ips;      // "*" trusts every peer
    int io_threads = 1;
    std::size_t stream_buffer_bytes = kDefaultStreamBufferBytes;  // streamed response bytes queued before the app waits
    ExchangeLog on_complete;                            // access log; runs on an I/O thread
    const Pipeline* pipeline = nullptr;                 // the native middleware chain (may be empty)
    MetricsStages metrics;                              // store null: no metrics
    std::size_t max_queue = 0;                          // requests waiting for Python above this: 503 (0: no limit)
    std::size_t worker_connections = 0;                 // sessions held at most; accepting pauses there (0: no limit)
    std::size_t limit_concurrency = 0;                  // requests in the app at once above this: 503 (0: no limit)
    std::string health_path;                            // answered natively; +"/ready" for readiness ("" : none)
    WebSocketSettings websocket;
    bool sendfile = true;                               // --no-sendfile: file bodies are read and written instead
    // The server's load board and this worker's slot on it: accepting waits while another
    // worker is less loaded, and a backed-up worker sends a connection to an idle one. Null: no
    // balancing (a lone server, the tests).
    LoadBoard* board = nullptr;
    int board_slot = 0;
};

class HttpServer {
public:
    HttpServer(HttpServerSettings settings, const std::vector<ListenSocket>& sockets, AppDispatcher& dispatcher);
    ~HttpServer();

    // Starts the I/O threads and accepting.
    void start();
    // Stops accepting; idle keep-alive connections close now, busy ones after their response.
    void drain();
    // Waits until every connection is closed or the deadline passes; true if all closed.
    bool wait_idle(std::chrono::steady_clock::time_point deadline);
    // Closes every connection (a blocked app sees client_gone) and joins the I/O threads.
    void stop();

    std::size_t open_connections() const;

    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace gantry
