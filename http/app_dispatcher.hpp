#pragma once
// The boundary the I/O threads cross to reach Python. An I/O thread builds an AppCall and hands
// it to dispatch(), which never blocks and never takes the GIL; the application side answers
// through call->response, exactly once, from its own thread.
#include <chrono>
#include <cstddef>
#include <memory>

#include "http/request.hpp"
#include "http/response_handle.hpp"
#include "http/websocket_channel.hpp"

namespace gantry {

struct AppCall {
    HttpRequest request;
    ResponseHandle response;  // a call dropped unanswered fails its request
    // Set for a WebSocket handshake (only to a dispatcher that takes_websockets()): the app
    // answers through it alone - accept, deny, messages, close - and `response` is empty.
    std::shared_ptr<WebSocketChannel> websocket;
    std::chrono::steady_clock::time_point queued_at;  // for the wait-for-a-Python-thread timing
};

class AppDispatcher {
public:
    virtual ~AppDispatcher() = default;
    virtual void dispatch(std::unique_ptr<AppCall> call) = 0;
    // Calls dispatched and not yet taken by a Python thread (cheap, approximate): the session
    // refuses new work with 503 above --max-queue.
    virtual std::size_t waiting() const { return 0; }
    // Calls dispatched and not yet finished: waiting plus running (--limit-concurrency).
    virtual std::size_t in_flight() const { return waiting(); }
    // Whether the app side takes a request body as it arrives (ASGI: receive() gives it piece by
    // piece) rather than read whole before dispatch() (WSGI: wsgi.input is read from a Python
    // thread, which must never wait for the socket). When true, a body that has not all arrived
    // with the head comes in request.body_stream.
    virtual bool streams_request_body() const { return false; }
    // Whether the app side speaks WebSocket (ASGI's websocket scope). When false, an upgrade
    // request is an ordinary HTTP request to the app (as gunicorn passes it to a WSGI app).
    virtual bool takes_websockets() const { return false; }
};

}  // namespace gantry
