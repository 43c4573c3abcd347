// libFuzzer target: fuzzer-chosen ASGI message sequences -> gantry's receive()/send() (embed/asgi's
// AsgiApp and HttpExchange, the real code) -> a checking ResponseSink. The interpreter is embedded
// (PYTHONMALLOC=malloc: ASan sees every Python object) and runs fuzz/asgi_messages.py, whose app
// decodes the input into sends of malformed, wrong-typed, huge or out-of-order messages, receives,
// exceptions and early returns, on an asyncio loop this driver steps by hand.
//
// The first byte picks how the fake connection behaves (its buffer full after some writes, the
// client gone or its side closed after some calls, TE: trailers, a request body spilled to a file,
// a WebSocket handshake instead of a request); the rest is the app's plan. Checked for every
// input (a broken check is a crash):
//   - the request's task ends (once the client is gone at the latest) and the sink then holds
//     exactly one final call: a whole response, a stream that was finished, or a failure;
//   - nothing reaches the sink after that, nor a body before a head;
//   - every status has 3 digits, every header name is a token and every value a field value.
// For a WebSocket (embed/asgi's WebSocketExchange over a real WebSocketChannel, whose connection
// side FuzzConnection plays: it takes what the app queued, writes it, sends messages, leaves):
//   - the app's task ends, and unless the client left first the channel got one decision on the
//     handshake (accept, deny or fail) and, once accepted, one end (close or fail);
//   - messages only between accept and the end, nothing after the end;
//   - text messages are UTF-8, subprotocols tokens, close codes ones an endpoint may send with
//     reasons that fit a close frame, denial statuses final.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "embed/asgi/callbacks.hpp"
#include "embed/runtime/gil.hpp"
#include "http/text.hpp"
#include "http/websocket_channel.hpp"

#ifndef GANTRY_FUZZ_DIR
#error "GANTRY_FUZZ_DIR: the folder of asgi_messages.py"
#endif

namespace {

using gantry::py::Ref;

void check(bool ok) {
    if (!ok) __builtin_trap();
}

void check_head(const gantry::ResponseHead& head) {
    check(head.status >= 100 && head.status <= 999);
    for (const auto& h : head.headers) check(gantry::is_token(h.name) && gantry::is_field_value(h.value));
}

// The connection, as the HTTP session would be, with the behaviour the input's first byte picks.
class FuzzSink final : public gantry::ResponseSink {
public:
    explicit FuzzSink(std::uint8_t mode) : mode_(mode) {}

    bool client_gone() const override { return gone_; }
    bool peer_closed() const override { return gone_ || peer_closed_; }
    void on_peer_closed(std::function<void()> notify) override {
        if (peer_closed()) notify();
        else peer_notify_ = std::move(notify);
    }
    void app_breakdown(gantry::AppBreakdown) override {}

    // One step of the connection: count it, and maybe the client closes its side or leaves.
    void step() {
        ++steps_;
        if ((mode_ & 0x03) == 1 && steps_ == 3) close_peer();
        if ((mode_ & 0x03) == 2 && steps_ == 5) leave();
        // The socket drained: room again.
        if (auto space = std::move(on_space_)) space();
    }
    void leave() {
        gone_ = true;
        close_peer();
        if (auto space = std::move(on_space_)) space();
    }
    int finals() const { return finals_; }

protected:
    void send_whole(gantry::ResponseHead head, std::string) override {
        check(!started_);
        check_head(head);
        final_call();
    }
    void start_stream(gantry::ResponseHead head) override {
        check(!started_ && finals_ == 0);
        check_head(head);
        started_ = true;
    }
    bool write_chunk(std::string) override {
        check(started_ && finals_ == 0);
        return !gone_;
    }
    bool write_chunk_nowait(std::string data, std::function<void()> on_space) override {
        check(started_ && finals_ == 0);
        buffered_ += data.size();
        return room(std::move(on_space));
    }
    bool send_file_nowait(int fd, off_t, std::size_t count, std::function<void()> on_space) override {
        ::close(fd);
        check(started_ && finals_ == 0);
        buffered_ += count;
        return room(std::move(on_space));
    }
    bool send_file(int fd, off_t, std::size_t) override {
        ::close(fd);
        check(started_ && finals_ == 0);
        return !gone_;
    }
    void finish_stream() override {
        check(started_);
        final_call();
    }
    void finish_stream_with_trailers(std::vector<gantry::HttpHeader> trailers) override {
        check(started_);
        for (const auto& h : trailers) check(gantry::is_token(h.name) && gantry::is_field_value(h.value));
        final_call();
    }
    void fail() override { final_call(); }

private:
    void final_call() {
        check(finals_ == 0);
        ++finals_;
    }
    bool room(std::function<void()> on_space) {
        if (gone_) return false;
        // mode bit 2: a small buffer (full from the second write on), as a slow client makes it.
        if ((mode_ & 0x04) && ++writes_ > 1) {
            on_space_ = std::move(on_space);
            return false;
        }
        return true;
    }
    void close_peer() {
        peer_closed_ = true;
        if (auto notify = std::move(peer_notify_)) notify();
    }

    std::uint8_t mode_;
    bool gone_ = false, peer_closed_ = false, started_ = false;
    int finals_ = 0, steps_ = 0, writes_ = 0;
    std::size_t buffered_ = 0;
    std::function<void()> on_space_, peer_notify_;
};

// A WebSocket's connection, as the server's would be, with the behaviour the input's first byte
// picks (the same bits as FuzzSink: the peer closes, or the connection drops, after some steps; a
// small outbox).
class FuzzConnection {
public:
    explicit FuzzConnection(std::uint8_t mode)
        : mode_(mode), channel_(std::make_shared<gantry::WebSocketChannel>([] {}, (mode & 0x04) ? 16 : 1 << 20)) {}

    const std::shared_ptr<gantry::WebSocketChannel>& channel() const { return channel_; }

    // One step: what the app queued is checked and written; the peer sends, maybe closes or leaves.
    void step() {
        ++steps_;
        take();
        if (accepted_ && !ended_ && !gone_ && steps_ <= 4) channel_->push({steps_ % 2 == 0, "m\xc3\xa9"});
        if ((mode_ & 0x03) == 1 && steps_ == 3) leave(gantry::kWsCloseNormal);
        if ((mode_ & 0x03) == 2 && steps_ == 5) leave(gantry::kWsCloseAbnormal);
    }
    void leave(int code) {
        take();
        gone_ = true;
        channel_->disconnected(code);
    }
    // After the app's task: it decided, unless its client left first.
    void check_end() {
        take();
        check(gone_ || ended_);
    }

private:
    void take() {
        std::deque<gantry::WebSocketChannel::Outgoing> out;
        channel_->take_outgoing(out);
        std::size_t bytes = 0;
        using Kind = gantry::WebSocketChannel::Outgoing::Kind;
        for (const auto& e : out) {
            check(!ended_);
            switch (e.kind) {
                case Kind::accept:
                    check(!accepted_);
                    check(e.subprotocol.empty() || gantry::is_token(e.subprotocol));
                    for (const auto& h : e.headers) check(gantry::is_token(h.name) && gantry::is_field_value(h.value));
                    accepted_ = true;
                    break;
                case Kind::deny:
                    check(!accepted_);
                    check_head(e.head);
                    check(e.head.status >= 200);
                    ended_ = true;
                    break;
                case Kind::message:
                    check(accepted_);
                    check(!e.message.text || gantry::is_strict_utf8(e.message.data));
                    bytes += e.message.data.size();
                    break;
                case Kind::close:
                    check(accepted_);
                    check((e.code >= 1000 && e.code <= 1003) || (e.code >= 1007 && e.code <= 1014) ||
                          (e.code >= 3000 && e.code <= 4999));
                    check(e.reason.size() <= 123 && gantry::is_strict_utf8(e.reason));
                    ended_ = true;
                    break;
                case Kind::fail:
                    ended_ = true;
                    break;
            }
        }
        if (bytes) channel_->written(bytes);  // the socket took it all: room again
    }

    std::uint8_t mode_;
    std::shared_ptr<gantry::WebSocketChannel> channel_;
    bool accepted_ = false, ended_ = false, gone_ = false;
    int steps_ = 0;
};

struct Driver {
    Ref loop, stop, plan;
    std::unique_ptr<gantry::asgi::AsgiApp> app;
    std::vector<std::function<void(gantry::GilHeld&)>> posted;
    bool finished = false;

    // One turn of the loop (what is ready runs), then what the "I/O threads" posted.
    void turn(gantry::GilHeld& gil) {
        Ref handle(PyObject_CallMethod(loop.get(), "call_soon", "O", stop.get()));
        Ref ran(handle ? PyObject_CallMethod(loop.get(), "run_forever", nullptr) : nullptr);
        check(static_cast<bool>(ran));  // the loop itself never fails
        auto batch = std::move(posted);
        posted.clear();
        for (auto& f : batch) f(gil);
    }
};

Driver* driver = nullptr;

void fail_setup(const char* what) {
    PyErr_Print();
    std::fprintf(stderr, "asgi_message_fuzz: %s\n", what);
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    spdlog::set_level(spdlog::level::off);  // every invalid message logs an error line: not here
    PyPreConfig pre;
    PyPreConfig_InitPythonConfig(&pre);
    pre.allocator = PYMEM_ALLOCATOR_MALLOC;  // plain malloc: ASan checks Python objects too
    if (PyStatus_Exception(Py_PreInitialize(&pre))) fail_setup("pre-initialise");
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.install_signal_handlers = 0;
    if (PyStatus_Exception(Py_InitializeFromConfig(&config))) fail_setup("initialise");
    PyConfig_Clear(&config);

    static gantry::GilEnsured gil;  // this thread keeps the GIL for the whole run
    static Driver d;
    Ref sys_path(PySys_GetObject("path") ? Ref::borrow(PySys_GetObject("path")) : Ref());
    for (const char* dir : {GANTRY_FUZZ_DIR, GANTRY_SOURCE_PYTHON_DIR}) {
        Ref s(PyUnicode_FromString(dir));
        if (!sys_path || !s || PyList_Insert(sys_path.get(), 0, s.get()) < 0) fail_setup("sys.path");
    }
    Ref module(PyImport_ImportModule("asgi_messages"));
    Ref asyncio(PyImport_ImportModule("asyncio"));
    Ref app(module ? PyObject_GetAttrString(module.get(), "app") : nullptr);
    d.plan = Ref(module ? PyObject_GetAttrString(module.get(), "PLAN") : nullptr);
    d.loop = Ref(asyncio ? PyObject_CallMethod(asyncio.get(), "new_event_loop", nullptr) : nullptr);
    d.stop = Ref(d.loop ? PyObject_GetAttrString(d.loop.get(), "stop") : nullptr);
    Ref set(d.loop ? PyObject_CallMethod(asyncio.get(), "set_event_loop", "O", d.loop.get()) : nullptr);
    if (!app || !d.plan || !d.stop || !set) fail_setup("asgi_messages / the loop");
    gantry::ExecutorSettings settings;
    settings.lifespan = "off";
    d.app = std::make_unique<gantry::asgi::AsgiApp>(
        gil, app.get(), d.loop.get(), settings,
        [](std::function<void(gantry::GilHeld&)> f) { driver->posted.push_back(std::move(f)); },
        [](gantry::GilHeld&) { driver->finished = true; });
    driver = &d;
    return 0;
}

namespace {

// mode bit 5: a WebSocket handshake, its app's messages checked on the channel.
void run_websocket(gantry::GilHeld& gil, std::uint8_t mode) {
    FuzzConnection connection(mode);
    auto call = std::make_unique<gantry::AppCall>();
    call->request.method = "GET";
    call->request.target = "/ws?q=1";
    call->request.headers = {{"Upgrade", "websocket"}, {"Sec-WebSocket-Protocol", "chat, v2"}};
    call->request.remote_addr = "127.0.0.1";
    call->request.server_name = "127.0.0.1";
    call->request.server_port = 8000;
    call->websocket = connection.channel();

    driver->finished = false;
    driver->app->start_websocket(gil, std::move(call));
    for (int i = 0; i < 16 && !driver->finished; ++i) {
        driver->turn(gil);
        connection.step();
    }
    if (!driver->finished) {
        // Whatever the app waits for, a client that leaves ends it.
        connection.leave(gantry::kWsCloseAbnormal);
        for (int i = 0; i < 200 && !driver->finished; ++i) driver->turn(gil);
    }
    check(driver->finished);
    connection.check_end();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    gantry::GilEnsured gil;
    const std::uint8_t mode = data[0];
    Ref plan(PyBytes_FromStringAndSize(reinterpret_cast<const char*>(data + 1), static_cast<Py_ssize_t>(size - 1)));
    check(plan && PyList_SetItem(driver->plan.get(), 0, plan.release()) == 0);
    if (mode & 0x20) {
        run_websocket(gil, mode);
        check(!PyErr_Occurred());
        return 0;
    }

    auto sink = std::make_shared<FuzzSink>(mode);
    auto call = std::make_unique<gantry::AppCall>();
    call->request.method = "POST";
    call->request.target = "/fuzz?q=1";
    call->request.remote_addr = "127.0.0.1";
    call->request.server_name = "127.0.0.1";
    call->request.server_port = 8000;
    if (mode & 0x08) call->request.headers.push_back({"TE", "trailers"});
    // mode bit 4: a body over its memory limit, read from a file in 64 KB pieces.
    call->request.body = gantry::RequestBody((mode & 0x10) ? 16 : 1 << 20);
    call->request.body.append(std::string((mode & 0x10) ? 70000 : 11, 'b'));
    call->response = gantry::ResponseHandle(sink);

    driver->finished = false;
    driver->app->start_http(gil, std::move(call));
    for (int i = 0; i < 16 && !driver->finished; ++i) {
        driver->turn(gil);
        sink->step();
    }
    if (!driver->finished) {
        // Whatever the app waits for, a client that leaves ends it.
        sink->leave();
        for (int i = 0; i < 200 && !driver->finished; ++i) driver->turn(gil);
    }
    check(driver->finished);
    check(sink->finals() == 1);
    check(!PyErr_Occurred());
    return 0;
}
