#pragma once
// Internal to embed/asgi: one WebSocket's ASGI side. The app's receive() and send() turned into
// the calls of its http/WebSocketChannel (the connection speaks the protocol on its I/O thread):
// websocket.connect first, then the peer's messages and its disconnect; the app's handshake
// decision (accept, close before accept = 403, or a response of its own through the
// websocket.http.response extension), its messages with backpressure, and its close. The order
// of the app's messages is checked here (the channel does not): a message out of order raises
// RuntimeError as uvicorn words it. Runs on the loop thread with the GIL held; the channel's
// callbacks come from the connection's thread and are posted to the loop.
#include <memory>
#include <string>
#include <vector>

#include "embed/asgi/callbacks.hpp"
#include "embed/asgi/io.hpp"
#include "embed/runtime/gil.hpp"
#include "embed/runtime/py_util.hpp"
#include "http/app_dispatcher.hpp"
#include "http/response_head.hpp"
#include "http/websocket_channel.hpp"

namespace gantry::asgi {

class WebSocketExchange final : public Channel, public std::enable_shared_from_this<WebSocketExchange> {
public:
    WebSocketExchange(AsgiApp& app, std::unique_ptr<AppCall> call) : app_(app), call_(std::move(call)) {}

    PyObject* receive(GilHeld& gil) override;
    PyObject* send(GilHeld& gil, PyObject* message) override;
    // The app's end: whatever it left undecided is decided (no handshake: a 500; accepted and not
    // closed: closed 1000; an exception: logged, then a 500 or a close 1011).
    void task_done(GilHeld& gil, PyObject* task) override;

    // The app could not even start (the call raised, or gave no awaitable): the pending error is logged.
    void failed_to_start(GilHeld& gil);
    const HttpRequest& request() const { return call_->request; }

private:
    enum class Phase {
        connecting,  // no decision on the handshake yet
        responding,  // websocket.http.response.start sent: the denial's body is being gathered
        open,        // accepted: messages both ways
        closed,      // the app closed the WebSocket (or it failed after accept)
        refused,     // the handshake was denied (close before accept, a response, a failure)
    };

    WebSocketChannel& channel() const { return *call_->websocket; }
    PyObject* accept(GilHeld& gil, PyObject* m);
    PyObject* close(GilHeld& gil, PyObject* m);
    PyObject* send_message(GilHeld& gil, PyObject* m);
    PyObject* response_start(GilHeld& gil, PyObject* m);
    PyObject* response_body(GilHeld& gil, PyObject* m);
    // Raises ClientDisconnected (the WebSocket is over); returns null for `return`.
    PyObject* client_disconnected(GilHeld& gil);

    // The next of the channel's events as a message; null without an error set when there is none yet.
    PyObject* next_event(GilHeld& gil);
    PyObject* disconnect_message(GilHeld& gil, int code, const std::string& reason);
    // A receive() waiting: the channel has a message or the disconnect.
    void event_ready(GilHeld& gil);
    std::function<void()> ready_callback();
    // send()s waiting for room in the outbox: the connection wrote some (or the WebSocket is over).
    void space_available(GilHeld& gil, bool room);
    WebSocketChannel::SpaceCallback space_callback();

    // The app broke (`what`: its traceback or why): logged, and the WebSocket failed.
    void fail(GilHeld& gil, const std::string& what);
    // The app stopped without an error (the client left, or the worker stops): nothing is logged
    // but what is left undecided is ended.
    void end_quietly(GilHeld& gil, int close_code);

    AsgiApp& app_;
    std::unique_ptr<AppCall> call_;
    Phase phase_ = Phase::connecting;
    const char* ended_by_ = "after the WebSocket ended";  // for a message after the end, as uvicorn words it
    bool connect_given_ = false;   // receive() gave websocket.connect
    ResponseHead denial_head_;     // websocket.http.response.start's, while responding
    std::string denial_body_;
    py::Ref pending_receive_;      // the Future of a receive() waiting for an event
    // The Futures of the send()s waiting for room: one, unless the app sends from several tasks
    // at once (each one's message is queued; all go on when there is room).
    std::vector<py::Ref> pending_sends_;
};

}  // namespace gantry::asgi
