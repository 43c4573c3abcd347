#pragma once
// The HTTP side of one worker process: Asio I/O threads, the acceptors on the shared listen
// sockets, and one session per connection. Requests that need Python go to the AppDispatcher;
// no I/O thread ever waits for the GIL. Asio and Beast stay inside http_server.cpp.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/app_dispatcher.hpp"
#include "server/listen_socket.hpp"
#include "server/request_parser.hpp"

namespace gantry {

// What the access log needs about one answered request.
class MetricsStore;
class Pipeline;
struct RequestTimings;

// The metrics store and the stage indices the session observes into (looked up once).
struct MetricsStages {
    MetricsStore* store = nullptr;
    std::vector<std::size_t> middleware_request;   // per middleware, chain order
    std::vector<std::size_t> middleware_response;
    std::size_t python_wait = 0, app = 0, write = 0, total = 0;
};

struct CompletedExchange {
    const RequestTimings* timings = nullptr;        // every stage, for %(timing)s and the JSON log
    const HttpRequest* request = nullptr;          // method, target, version, headers, remote_addr
    const std::vector<HttpHeader>* response_headers = nullptr;
    int status = 0;
    std::uint64_t body_bytes = 0;                   // response body bytes written
    std::chrono::system_clock::time_point started;  // wall clock, for %(t)s
    std::chrono::steady_clock::duration duration{}; // header complete -> last byte written
};

struct HttpServerSettings {
    ParserLimits limits;
    std::chrono::milliseconds header_timeout{10'000};  // first byte -> whole header (408)
    std::chrono::milliseconds keep_alive{2'000};       // idle between requests (silent close)
    std::chrono::milliseconds io_timeout{30'000};      // each body read / response write stall
    std::vector<std::string> forwarded_allow_ips;      // "*" trusts every peer
    int io_threads = 1;
    std::size_t stream_buffer_bytes = 256 * 1024;      // streamed response bytes queued before the app waits
    std::function<void(const CompletedExchange&)> on_complete;  // access log; runs on an I/O thread
    const Pipeline* pipeline = nullptr;                 // the native middleware chain (may be empty)
    MetricsStages metrics;                              // store null: no metrics
    std::size_t max_queue = 0;                          // requests waiting for Python above this: 503 (0: no limit)
    std::string health_path;                            // answered natively; +"/ready" for readiness ("" : none)
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
