#pragma once
// Internal to embed/asgi: calling the app - the HTTP and WebSocket scopes from interned keys, one
// task per request on the loop, receive() and send() turned into the request's response (a
// WebSocket's: websocket_exchange.hpp), and the lifespan protocol. Everything here runs on the loop thread with the GIL held, except expire_overdue()
// (the --timeout watchdog's thread, under the registry's lock: it posts the cancel to the loop).
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "embed/asgi/io.hpp"
#include "embed/asgi/messages.hpp"
#include "embed/runtime/django_timing.hpp"
#include "embed/runtime/gil.hpp"
#include "embed/runtime/py_util.hpp"
#include "embed/runtime/python_runtime.hpp"
#include "http/app_dispatcher.hpp"

namespace gantry::asgi {

// The way back onto the loop thread from any thread (the executor's queue and wake-up fd): the
// function runs there, with the GIL, in the next batch.
using PostToLoop = std::function<void(std::function<void(GilHeld&)>)>;

class HttpExchange;
class Lifespan;
class WebSocketExchange;

class AsgiApp {
public:
    // `loop`: the running loop's object. `on_finished` runs (on the loop thread) after each
    // request's task ended. Throws AppLoadError.
    AsgiApp(GilHeld& gil, PyObject* app, PyObject* loop, const ExecutorSettings& settings, PostToLoop post,
            std::function<void(GilHeld&)> on_finished);
    ~AsgiApp();

    // Starts the app's task for one request: its scope, receive and send.
    void start_http(GilHeld& gil, std::unique_ptr<AppCall> call);
    // Starts the app's task for one WebSocket handshake (call->websocket set): the websocket
    // scope. Counted in active() like a request, but not under --timeout: it lives while open.
    void start_websocket(GilHeld& gil, std::unique_ptr<AppCall> call);
    std::size_t active() const { return active_; }

    // Lifespan (per settings.lifespan): `started(ok, message)` once startup completed, failed, or
    // turned out unsupported (ok, for "auto"); `stopped()` once shutdown ended. Without a
    // lifespan task both are called at once.
    void start_lifespan(GilHeld& gil, std::function<void(bool, std::string)> started);
    void shutdown_lifespan(GilHeld& gil, std::function<void()> stopped);
    // The server has stopped: the requests' tasks still running are cancelled (their clients are
    // gone); the lifespan task is left to its shutdown.
    void cancel_requests(GilHeld& gil);
    bool cancelling() const { return cancelling_; }

    // A request over --timeout, as expire_overdue found it.
    struct Expired {
        std::string request_line;
        double seconds;  // how long it had run
    };
    // The requests running longer than `limit`: each is failed at once (a 504, or the connection
    // closed if its head went out), its task is cancelled on the loop (its coroutine stack logged
    // first), and it is returned. Each is expired once. Any thread.
    std::vector<Expired> expire_overdue(std::chrono::milliseconds limit);
    // Where a task waits (gantry._asgi.task_stack): traceback lines, most recent call last.
    std::string task_stack(GilHeld& gil, PyObject* task);

    // For the exchanges and the lifespan.
    const AsgiTypes& types() const { return types_; }
    const MessageKeys& keys() const { return keys_; }
    PyObject* loop() const { return loop_.get(); }
    const PostToLoop& post() const { return post_; }
    PyObject* client_disconnected() const { return client_disconnected_.get(); }
    PyObject* state() const { return state_.get(); }
    // --timing full: Django's record of the request whose task is running (its context's).
    const DjangoTiming* timing() const { return timing_ ? &*timing_ : nullptr; }
    void finished(GilHeld& gil, HttpExchange& exchange);
    void finished(GilHeld& gil, WebSocketExchange& exchange);

    // What a request's task is registered as, for the watchdog.
    struct Running {
        std::string request_line;
        std::chrono::steady_clock::time_point started;
        std::shared_ptr<ResponseSink> sink;
        std::weak_ptr<HttpExchange> exchange;  // for the cancel, on the loop
        bool expired = false;
    };

private:
    enum class ScopeType { http, websocket };
    PyObject* build_scope(GilHeld& gil, const HttpRequest& request, ScopeType type);
    // What follows a task's end, a request's or a WebSocket's.
    void ended(GilHeld& gil);
    PyObject* run_task(GilHeld& gil, PyObject* coroutine, PyObject* channel);

    AsgiTypes types_;
    MessageKeys keys_;
    py::Ref app_;
    py::Ref loop_;
    py::Ref create_task_;           // loop.create_task
    py::Ref client_disconnected_;   // gantry._asgi.ClientDisconnected
    py::Ref unsupported_message_;   // gantry._asgi.unsupported_lifespan_message
    py::Ref task_stack_;            // gantry._asgi.task_stack
    py::Ref state_;                 // the lifespan state dict, copied into each scope
    py::Ref asgi_version_;          // {"version": "3.0", "spec_version": "2.4"}
    py::Ref extensions_;            // what scope["extensions"] advertises (copied per request)
    py::Ref ws_extensions_;         // the same for a websocket scope
    py::Ref scope_template_;        // each scope starts as a copy of this
    py::Ref ws_scope_template_;     // each websocket scope starts as a copy of this
    py::Ref k_type_, k_asgi_, k_http_version_, k_method_, k_scheme_, k_path_, k_raw_path_, k_query_string_,
        k_root_path_, k_headers_, k_client_, k_server_, k_subprotocols_, k_state_, k_extensions_;
    py::Ref s_http_, s_https_, s_ws_, s_wss_, s_websocket_, s_10_, s_11_;
    std::unordered_map<std::string, py::Ref> methods_;
    std::unordered_map<std::string, py::Ref> header_names_;  // as received -> lower-cased bytes
    std::string server_name_;                                // the last scope's "server", kept
    std::uint16_t server_port_ = 0;
    py::Ref server_;
    std::string root_path_;
    std::string lifespan_mode_;
    PostToLoop post_;
    std::function<void(GilHeld&)> on_finished_;
    std::size_t active_ = 0;
    std::optional<DjangoTiming> timing_;
    std::shared_ptr<Lifespan> lifespan_;
    py::Ref lifespan_task_;
    bool cancelling_ = false;

    std::mutex running_mutex_;
    std::list<Running> running_;
    friend class HttpExchange;
};

}  // namespace gantry::asgi
