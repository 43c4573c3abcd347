#include "embed/asgi/websocket_exchange.hpp"
#include "embed/asgi/websocket_exchange.hpp"  // self-contained and guarded

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "support.hpp"

// The ASGI side of a WebSocket, driven with a real WebSocketChannel whose connection side the test
// plays (push, disconnected, written, take_outgoing) and a real asyncio loop the test steps by
// hand on its own thread: no timing, each step runs what is ready. The apps are
// tests/embed/apps/wsapp.py, one per path; what they observe comes back in wsapp.RESULTS.

namespace gantry::asgi {
namespace {

using py::Ref;
using Kind = WebSocketChannel::Outgoing::Kind;

class WebSocketExchangeTest : public ::testing::Test {
protected:
    void SetUp() override {
        gil_ = std::make_unique<GilEnsured>();
        Ref module(PyImport_ImportModule("wsapp"));
        Ref asyncio(PyImport_ImportModule("asyncio"));
        ASSERT_TRUE(module && asyncio) << py::take_exception_text(*gil_);
        module_ = std::move(module);
        Ref results(PyObject_GetAttrString(module_.get(), "RESULTS"));
        ASSERT_TRUE(results && PyList_SetSlice(results.get(), 0, PY_SSIZE_T_MAX, nullptr) == 0);
        Ref app(PyObject_GetAttrString(module_.get(), "app"));
        loop_ = Ref(PyObject_CallMethod(asyncio.get(), "new_event_loop", nullptr));
        ASSERT_TRUE(app && loop_);
        stop_ = Ref(PyObject_GetAttrString(loop_.get(), "stop"));
        ExecutorSettings settings;
        settings.lifespan = "off";
        app_ = std::make_unique<AsgiApp>(
            *gil_, app.get(), loop_.get(), settings,
            [this](std::function<void(GilHeld&)> f) { posted_.push_back(std::move(f)); },
            [this](GilHeld&) { ++finished_; });
        test::take_log();  // from here on: this test's lines only
    }

    void TearDown() override {
        app_.reset();
        if (loop_) {
            Ref closed(PyObject_CallMethod(loop_.get(), "close", nullptr));
            if (!closed) PyErr_Clear();
        }
        stop_.reset();
        loop_.reset();
        module_.reset();
        gil_.reset();
    }

    // The handshake of `target` reaches the app; the channel is the connection's end.
    std::shared_ptr<WebSocketChannel> start(const std::string& target, std::vector<HttpHeader> headers = {},
                                            std::size_t outbox_limit = 1 << 20, std::string url_scheme = "http") {
        auto channel = std::make_shared<WebSocketChannel>([this] { ++wakes_; }, outbox_limit);
        auto call = std::make_unique<AppCall>();
        call->request.method = "GET";
        call->request.target = target;
        call->request.headers = std::move(headers);
        call->request.url_scheme = std::move(url_scheme);
        call->request.remote_addr = "10.1.2.3";
        call->request.remote_port = 54321;
        call->request.server_name = "127.0.0.1";
        call->request.server_port = 8000;
        call->websocket = channel;
        app_->start_websocket(*gil_, std::move(call));
        return channel;
    }

    // One turn of the loop (what is ready runs), then what the "connection's thread" posted.
    void turn() {
        Ref handle(PyObject_CallMethod(loop_.get(), "call_soon", "O", stop_.get()));
        Ref ran(handle ? PyObject_CallMethod(loop_.get(), "run_forever", nullptr) : nullptr);
        ASSERT_TRUE(ran) << py::take_exception_text(*gil_);
        auto batch = std::move(posted_);
        posted_.clear();
        for (auto& f : batch) f(*gil_);
    }
    // Turns the loop until nothing more happens (a bounded number of turns, not a time).
    void settle() {
        for (int i = 0; i < 20; ++i) turn();
    }

    std::deque<WebSocketChannel::Outgoing> outgoing(WebSocketChannel& channel) {
        std::deque<WebSocketChannel::Outgoing> out;
        channel.take_outgoing(out);
        return out;
    }
    static std::vector<Kind> kinds(const std::deque<WebSocketChannel::Outgoing>& out) {
        std::vector<Kind> k;
        for (const auto& e : out) k.push_back(e.kind);
        return k;
    }

    std::vector<std::string> results() {
        std::vector<std::string> out;
        Ref list(PyObject_GetAttrString(module_.get(), "RESULTS"));
        for (Py_ssize_t i = 0; list && i < PyList_GET_SIZE(list.get()); ++i)
            out.emplace_back(PyUnicode_AsUTF8(PyList_GET_ITEM(list.get(), i)));
        return out;
    }

    // The error lines of the log, and whether any line holds `text`.
    static std::vector<std::string> errors(const std::vector<std::string>& log) {
        std::vector<std::string> out;
        for (const auto& line : log)
            if (line.rfind("error|", 0) == 0) out.push_back(line);
        return out;
    }
    static bool logged(const std::vector<std::string>& log, const std::string& text) {
        for (const auto& line : log)
            if (line.find(text) != std::string::npos) return true;
        return false;
    }

    std::unique_ptr<GilEnsured> gil_;
    Ref module_, loop_, stop_;
    std::unique_ptr<AsgiApp> app_;
    std::vector<std::function<void(GilHeld&)>> posted_;
    int finished_ = 0;
    int wakes_ = 0;
};

TEST_F(WebSocketExchangeTest, TheAppAcceptsAndEchoesTextAndBytes) {
    auto channel = start("/echo");
    settle();
    auto out = outgoing(*channel);
    ASSERT_EQ(kinds(out), std::vector<Kind>{Kind::accept});
    EXPECT_EQ(out[0].subprotocol, "");
    EXPECT_TRUE(out[0].headers.empty());
    EXPECT_GE(wakes_, 1);
    EXPECT_EQ(app_->active(), 1u);

    // The app already waits: a Future, resolved by the push.
    EXPECT_TRUE(channel->push({true, "h\xc3\xa9llo"}));
    settle();
    // The second one is there before the app asks again: a completed awaitable.
    EXPECT_TRUE(channel->push({false, std::string("\x00\xff", 2)}));
    EXPECT_TRUE(channel->push({true, "queued"}));
    settle();
    out = outgoing(*channel);
    ASSERT_EQ(kinds(out), (std::vector<Kind>{Kind::message, Kind::message, Kind::message}));
    EXPECT_TRUE(out[0].message.text);
    EXPECT_EQ(out[0].message.data, "h\xc3\xa9llo");
    EXPECT_FALSE(out[1].message.text);
    EXPECT_EQ(out[1].message.data, std::string("\x00\xff", 2));
    EXPECT_EQ(out[2].message.data, "queued");
    channel->disconnected(4000, "done \xc3\xa9");
    settle();

    // Each receive carries only its kind's key (as uvicorn's).
    EXPECT_EQ(results(), (std::vector<std::string>{"receive Future", "got ['text', 'type']", "receive Future",
                                                   "got ['bytes', 'type']", "receive Completed", "got ['text', 'type']",
                                                   "receive Future", "disconnect 4000 'done \xc3\xa9'"}));
    EXPECT_EQ(finished_, 1);
    EXPECT_EQ(app_->active(), 0u);
    EXPECT_TRUE(errors(test::take_log()).empty());
}

TEST_F(WebSocketExchangeTest, TheDisconnectComesAfterTheMessagesQueuedBeforeIt) {
    auto channel = start("/listen");
    settle();
    channel->push({true, "a"});
    channel->push({false, "b"});
    channel->disconnected(1000);
    settle();
    EXPECT_EQ(results(), (std::vector<std::string>{"Future websocket.receive a None", "Completed websocket.receive b'b' None",
                                                   "Completed websocket.disconnect None 1000"}));
    EXPECT_EQ(finished_, 1);
}

TEST_F(WebSocketExchangeTest, TheScopeIsAWebsocketScope) {
    auto channel = start("/scope/caf%C3%A9?a=1",
                         {{"Host", "example.com"}, {"Sec-WebSocket-Protocol", "chat, superchat"},
                          {"X-Mixed-Case", "V"}, {"sec-websocket-protocol", " v2 "}});
    settle();
    auto out = outgoing(*channel);
    ASSERT_EQ(kinds(out), (std::vector<Kind>{Kind::accept, Kind::message, Kind::close}));
    auto scope = nlohmann::json::parse(out[1].message.data);
    EXPECT_EQ(scope["type"], "websocket");
    EXPECT_EQ(scope["asgi"], (nlohmann::json{{"version", "3.0"}, {"spec_version", "2.4"}}));
    EXPECT_EQ(scope["http_version"], "1.1");
    EXPECT_EQ(scope["scheme"], "ws");
    EXPECT_EQ(scope["path"], "/scope/caf\xc3\xa9");
    EXPECT_EQ(scope["raw_path"], "/scope/caf%C3%A9");
    EXPECT_EQ(scope["query_string"], "a=1");
    EXPECT_EQ(scope["root_path"], "");
    // Lower-cased names, in order, values as received.
    using nlohmann::json;
    EXPECT_EQ(scope["headers"], json::array({json::array({"host", "example.com"}),
                                             json::array({"sec-websocket-protocol", "chat, superchat"}),
                                             json::array({"x-mixed-case", "V"}),
                                             json::array({"sec-websocket-protocol", " v2 "})}));
    EXPECT_EQ(scope["client"], (nlohmann::json{"10.1.2.3", 54321}));
    EXPECT_EQ(scope["server"], (nlohmann::json{"127.0.0.1", 8000}));
    EXPECT_EQ(scope["subprotocols"], (nlohmann::json{"chat", "superchat", "v2"}));
    EXPECT_EQ(scope["state"], nlohmann::json::object());
    EXPECT_EQ(scope["extensions"], (nlohmann::json{{"websocket.http.response", nlohmann::json::object()}}));
    EXPECT_FALSE(scope.contains("method"));
    EXPECT_EQ(out[2].code, 1000);
    EXPECT_EQ(out[2].reason, "");
}

TEST_F(WebSocketExchangeTest, AnHttpsConnectionIsWss) {
    auto channel = start("/scope", {}, 1 << 20, "https");
    settle();
    auto out = outgoing(*channel);
    ASSERT_EQ(kinds(out), (std::vector<Kind>{Kind::accept, Kind::message, Kind::close}));
    EXPECT_EQ(nlohmann::json::parse(out[1].message.data)["scheme"], "wss");
    EXPECT_EQ(nlohmann::json::parse(out[1].message.data)["subprotocols"], nlohmann::json::array());
}

TEST_F(WebSocketExchangeTest, AcceptCarriesTheSubprotocolAndExtraHeadersAndCloseItsCodeAndReason) {
    auto channel = start("/subprotocol", {{"Sec-WebSocket-Protocol", "chat, v2"}});
    settle();
    auto out = outgoing(*channel);
    ASSERT_EQ(kinds(out), (std::vector<Kind>{Kind::accept, Kind::close}));
    EXPECT_EQ(out[0].subprotocol, "v2");
    ASSERT_EQ(out[0].headers.size(), 2u);
    EXPECT_EQ(out[0].headers[0].name, "x-extra");
    EXPECT_EQ(out[0].headers[0].value, "1");
    EXPECT_EQ(out[0].headers[1].name, "set-cookie");
    EXPECT_EQ(out[0].headers[1].value, "a=b");
    EXPECT_EQ(out[1].code, 4001);
    EXPECT_EQ(out[1].reason, "bye \xc3\xa9");
    EXPECT_EQ(finished_, 1);
}

TEST_F(WebSocketExchangeTest, CloseBeforeAcceptDeniesWith403) {
    auto channel = start("/close-before-accept");
    settle();
    auto out = outgoing(*channel);
    ASSERT_EQ(kinds(out), std::vector<Kind>{Kind::deny});
    EXPECT_EQ(out[0].head.status, 403);
    EXPECT_EQ(out[0].body, "");
    // No WebSocket came of it: the app's next receive() is the disconnect, as uvicorn's 1006.
    EXPECT_EQ(results(), std::vector<std::string>{"websocket.disconnect 1006"});
    EXPECT_EQ(finished_, 1);
    EXPECT_TRUE(errors(test::take_log()).empty());
}

TEST_F(WebSocketExchangeTest, TheHttpResponseExtensionDeniesWithTheAppsStatusHeadersAndBody) {
    auto channel = start("/deny");
    settle();
    auto out = outgoing(*channel);
    ASSERT_EQ(kinds(out), std::vector<Kind>{Kind::deny});
    EXPECT_EQ(out[0].head.status, 401);
    ASSERT_EQ(out[0].head.headers.size(), 2u);
    EXPECT_EQ(out[0].head.headers[0].name, "content-type");
    EXPECT_EQ(out[0].head.headers[0].value, "text/plain");
    EXPECT_EQ(out[0].head.headers[1].name, "www-authenticate");
    EXPECT_EQ(out[0].body, "no entry");
    EXPECT_EQ(finished_, 1);
    EXPECT_TRUE(errors(test::take_log()).empty());
}

TEST_F(WebSocketExchangeTest, SendWaitsWhileTheOutboxIsFullAndGoesOnOnceWritten) {
    auto channel = start("/flood", {}, 16);  // room for two 8-byte messages, not more
    settle();
    // The second send filled the outbox: its Future holds the app.
    EXPECT_EQ(results(), (std::vector<std::string>{"Completed", "sent 1", "Future"}));
    auto out = outgoing(*channel);
    ASSERT_EQ(kinds(out), (std::vector<Kind>{Kind::accept, Kind::message, Kind::message}));
    channel->written(8);  // one written: room again
    settle();
    EXPECT_EQ(results(), (std::vector<std::string>{"Completed", "sent 1", "Future", "sent 2", "Future"}));
    channel->written(16);
    settle();
    EXPECT_EQ(results(), (std::vector<std::string>{"Completed", "sent 1", "Future", "sent 2", "Future", "sent 3"}));
    out = outgoing(*channel);
    ASSERT_EQ(kinds(out), (std::vector<Kind>{Kind::message, Kind::close}));
    EXPECT_EQ(out[0].message.data, "00000003");
    EXPECT_EQ(finished_, 1);
}

TEST_F(WebSocketExchangeTest, ASendWaitingForRoomRaisesClientDisconnectedWhenTheClientLeaves) {
    auto channel = start("/flood-gone", {}, 16);
    settle();
    EXPECT_EQ(results(), std::vector<std::string>{"sent"});  // the second send waits
    channel->disconnected(kWsCloseAbnormal);
    settle();
    EXPECT_EQ(results(), (std::vector<std::string>{"sent", "ClientDisconnected"}));
    EXPECT_EQ(finished_, 1);
    EXPECT_TRUE(errors(test::take_log()).empty());
}

TEST_F(WebSocketExchangeTest, AReceiveTheAppCancelledLeavesItsMessageToTheNext) {
    auto channel = start("/cancel-receive");
    settle();
    EXPECT_EQ(results(), std::vector<std::string>{"timed out"});
    channel->push({true, "kept"});
    settle();
    EXPECT_EQ(results(), (std::vector<std::string>{"timed out", "websocket.receive kept"}));
    EXPECT_EQ(kinds(outgoing(*channel)), (std::vector<Kind>{Kind::accept, Kind::close}));
}

TEST_F(WebSocketExchangeTest, AnExceptionBeforeAcceptFailsTheHandshakeAndIsLogged) {
    auto channel = start("/raise-before");
    settle();
    EXPECT_EQ(kinds(outgoing(*channel)), std::vector<Kind>{Kind::fail});
    auto log = test::take_log();
    EXPECT_TRUE(logged(log, "Error handling WebSocket /raise-before (before the handshake: 500)")) << errors(log).size();
    EXPECT_TRUE(logged(log, "ValueError: broken before accept"));
    EXPECT_EQ(finished_, 1);
}

TEST_F(WebSocketExchangeTest, AnExceptionAfterAcceptFailsTheWebSocketAndIsLogged) {
    auto channel = start("/raise-after");
    settle();
    EXPECT_EQ(kinds(outgoing(*channel)), (std::vector<Kind>{Kind::accept, Kind::fail}));
    auto log = test::take_log();
    EXPECT_TRUE(logged(log, "Error handling WebSocket /raise-after (after accept: closed 1011)"));
    EXPECT_TRUE(logged(log, "ValueError: broken after accept"));
    EXPECT_EQ(finished_, 1);
}

TEST_F(WebSocketExchangeTest, SendAfterTheDisconnectRaisesClientDisconnectedWhichIsNoError) {
    auto channel = start("/send-after-disconnect");
    settle();
    channel->disconnected(1001, "going away");
    settle();
    EXPECT_EQ(results(), (std::vector<std::string>{"websocket.disconnect 1001", "ClientDisconnected True"}));
    EXPECT_EQ(finished_, 1);
    auto log = test::take_log();
    EXPECT_TRUE(errors(log).empty()) << errors(log).front();
    EXPECT_TRUE(logged(log, "WebSocket /send-after-disconnect: the client disconnected"));
}

TEST_F(WebSocketExchangeTest, AnAppThatReturnsWithoutAHandshakeFailsIt) {
    auto channel = start("/return-without-handshake");
    settle();
    EXPECT_EQ(kinds(outgoing(*channel)), std::vector<Kind>{Kind::fail});
    EXPECT_TRUE(logged(test::take_log(), "error|WebSocket /return-without-handshake: ASGI callable returned without sending handshake."));
}

TEST_F(WebSocketExchangeTest, AnAppThatReturnsWhileOpenClosesNormally) {
    auto channel = start("/return-open");
    settle();
    auto out = outgoing(*channel);
    ASSERT_EQ(kinds(out), (std::vector<Kind>{Kind::accept, Kind::close}));
    EXPECT_EQ(out[1].code, 1000);
    EXPECT_TRUE(errors(test::take_log()).empty());
}

TEST_F(WebSocketExchangeTest, MessagesOutOfOrderRaiseRuntimeError) {
    auto channel = start("/out-of-order");
    settle();
    EXPECT_EQ(results(),
              (std::vector<std::string>{
                  "RuntimeError Expected ASGI message 'websocket.accept', 'websocket.close' or "
                  "'websocket.http.response.start', but got 'websocket.send'",
                  "RuntimeError Expected ASGI message 'websocket.accept', 'websocket.close' or "
                  "'websocket.http.response.start', but got 'websocket.http.response.body'",
                  "ok",
                  "RuntimeError Expected ASGI message 'websocket.send' or 'websocket.close', but got 'websocket.accept'",
                  "RuntimeError Expected ASGI message 'websocket.send' or 'websocket.close', but got "
                  "'websocket.http.response.start'",
                  "ok",
                  "RuntimeError Unexpected ASGI message 'websocket.send', after sending 'websocket.close'.",
                  "RuntimeError Unexpected ASGI message 'websocket.close', after sending 'websocket.close'.",
              }));
    EXPECT_EQ(kinds(outgoing(*channel)), (std::vector<Kind>{Kind::accept, Kind::close}));
}

TEST_F(WebSocketExchangeTest, AfterADenialStartsOnlyItsBodyMayFollow) {
    auto channel = start("/out-of-order-denial");
    settle();
    EXPECT_EQ(results(),
              (std::vector<std::string>{
                  "ok",
                  "RuntimeError Expected ASGI message 'websocket.http.response.body', but got 'websocket.accept'",
                  "ok",
                  "RuntimeError Unexpected ASGI message 'websocket.send', after the 'websocket.http.response' "
                  "that denied the handshake.",
              }));
    auto out = outgoing(*channel);
    ASSERT_EQ(kinds(out), std::vector<Kind>{Kind::deny});
    EXPECT_EQ(out[0].head.status, 404);
    EXPECT_EQ(out[0].body, "");
}

TEST_F(WebSocketExchangeTest, InvalidMessagesRaiseAndQueueNothing) {
    auto channel = start("/invalid");
    settle();
    auto r = results();
    ASSERT_EQ(r.size(), 18u);
    EXPECT_EQ(r[0], "ValueError invalid header value (b'x-a', b'1\\r\\nx-b: 2')");
    EXPECT_EQ(r[1], "ValueError invalid header name (b'bad name', b'1')");
    EXPECT_EQ(r[2].rfind("ValueError websocket.accept: the subprotocol goes in 'subprotocol'", 0), 0u) << r[2];
    EXPECT_EQ(r[3], "ValueError websocket.accept: invalid 'subprotocol' 'a b'");
    EXPECT_EQ(r[4], "TypeError websocket.accept's 'subprotocol' must be a str, not bytes");
    EXPECT_EQ(r[5], "ok");
    EXPECT_EQ(r[6].rfind("ValueError websocket.send needs exactly one of 'bytes' and 'text'", 0), 0u) << r[6];
    EXPECT_EQ(r[7].rfind("ValueError websocket.send needs exactly one of 'bytes' and 'text'", 0), 0u) << r[7];
    EXPECT_EQ(r[8], "TypeError websocket.send's 'text' must be a str, not bytes");
    EXPECT_EQ(r[9], "TypeError websocket.send's 'bytes' must be bytes, not str");
    EXPECT_EQ(r[10].rfind("UnicodeEncodeError", 0), 0u) << r[10];
    EXPECT_EQ(r[11], "ok");
    EXPECT_EQ(r[12].rfind("ValueError websocket.close: 'code' must be an int close code", 0), 0u) << r[12];
    EXPECT_EQ(r[13].rfind("ValueError websocket.close: 'code' must be an int close code", 0), 0u) << r[13];
    EXPECT_EQ(r[14], "ValueError websocket.close: 'reason' is 124 bytes in UTF-8, over the 123 a close frame holds");
    EXPECT_EQ(r[15], "TypeError websocket.close's 'reason' must be a str, not int");
    EXPECT_EQ(r[16], "RuntimeError Expected ASGI message 'websocket.send' or 'websocket.close', but got 'websocket.nonsense'");
    EXPECT_EQ(r[17], "ok");
    auto out = outgoing(*channel);
    ASSERT_EQ(kinds(out), (std::vector<Kind>{Kind::accept, Kind::message, Kind::close}));
    EXPECT_EQ(out[1].message.data, "ok");
    EXPECT_EQ(out[2].code, 3000);
}

TEST_F(WebSocketExchangeTest, AnInvalidDenialRaises) {
    auto channel = start("/invalid-denial");
    settle();
    auto r = results();
    ASSERT_EQ(r.size(), 6u);
    EXPECT_EQ(r[0], "ValueError websocket.http.response.start needs an int 'status' from 200 to 999, got 101");
    EXPECT_EQ(r[1], "ValueError websocket.http.response.start needs an int 'status' from 200 to 999, got '403'");
    EXPECT_EQ(r[2], "ValueError invalid header value (b'x', b'a\\nb')");
    EXPECT_EQ(r[3], "ok");
    EXPECT_EQ(r[4], "TypeError websocket.http.response.body's 'body' must be bytes, not str");
    EXPECT_EQ(r[5], "ok");
    auto out = outgoing(*channel);
    ASSERT_EQ(kinds(out), std::vector<Kind>{Kind::deny});
    EXPECT_EQ(out[0].head.status, 403);
    EXPECT_EQ(out[0].body, "forbidden");
}

TEST_F(WebSocketExchangeTest, AtStopTheServerSaysGoingAwayAndTheAppEnds) {
    auto channel = start("/echo");
    settle();
    channel->disconnected(kWsCloseGoingAway);  // the server side, draining
    settle();
    EXPECT_EQ(results(), (std::vector<std::string>{"receive Future", "disconnect 1001 ''"}));
    EXPECT_EQ(finished_, 1);
    EXPECT_TRUE(errors(test::take_log()).empty());
}

TEST_F(WebSocketExchangeTest, ATaskStillWaitingInReceiveAtStopIsCancelledCleanly) {
    auto channel = start("/echo");
    settle();
    ASSERT_EQ(results(), std::vector<std::string>{"receive Future"});
    outgoing(*channel);
    app_->cancel_requests(*gil_);
    settle();
    EXPECT_EQ(finished_, 1);
    EXPECT_EQ(app_->active(), 0u);
    auto out = outgoing(*channel);
    ASSERT_EQ(kinds(out), std::vector<Kind>{Kind::close});
    EXPECT_EQ(out[0].code, kWsCloseGoingAway);
    auto log = test::take_log();
    EXPECT_TRUE(errors(log).empty());
    EXPECT_TRUE(logged(log, "WebSocket /echo: cancelled as the worker stopped"));
}

// Django Channels 4.0 (AsyncWebsocketConsumer, the in-memory channel layer) on this exchange.
TEST_F(WebSocketExchangeTest, ADjangoChannelsConsumerEchoesAndBroadcastsToItsGroup) {
    auto one = start("/channels/", {{"Sec-WebSocket-Protocol", "room.v1"}});
    auto two = start("/channels/");
    settle();
    auto out = outgoing(*one);
    ASSERT_EQ(kinds(out), std::vector<Kind>{Kind::accept});
    EXPECT_EQ(out[0].subprotocol, "room.v1");
    ASSERT_EQ(kinds(outgoing(*two)), std::vector<Kind>{Kind::accept});

    one->push({true, "hello"});
    two->push({false, "bin"});
    settle();
    out = outgoing(*one);
    ASSERT_EQ(kinds(out), std::vector<Kind>{Kind::message});
    EXPECT_TRUE(out[0].message.text);
    EXPECT_EQ(out[0].message.data, "hello");
    out = outgoing(*two);
    ASSERT_EQ(kinds(out), std::vector<Kind>{Kind::message});
    EXPECT_FALSE(out[0].message.text);
    EXPECT_EQ(out[0].message.data, "bin");

    one->push({true, "broadcast"});
    settle();
    for (auto* channel : {one.get(), two.get()}) {
        out = outgoing(*channel);
        ASSERT_EQ(kinds(out), std::vector<Kind>{Kind::message});
        EXPECT_EQ(out[0].message.data, "to all");
    }

    one->disconnected(1000);
    two->disconnected(kWsCloseAbnormal);
    settle();
    EXPECT_EQ(results(), (std::vector<std::string>{"channels disconnect 1000", "channels disconnect 1006"}));
    EXPECT_EQ(finished_, 2);
    EXPECT_TRUE(errors(test::take_log()).empty());
}

TEST_F(WebSocketExchangeTest, ADjangoChannelsConsumerThatClosesInConnectIsA403) {
    auto channel = start("/channels/?refuse");
    settle();
    auto out = outgoing(*channel);
    ASSERT_EQ(kinds(out), std::vector<Kind>{Kind::deny});
    EXPECT_EQ(out[0].head.status, 403);
    channel->disconnected(kWsCloseAbnormal);  // the server side, once the 403 is out
    settle();
    EXPECT_EQ(finished_, 1);
    EXPECT_TRUE(errors(test::take_log()).empty());
}

// Through the real executor (a process of its own: one interpreter each): it takes WebSockets,
// counts one in in_flight while open, and at stop cancels a task waiting in receive(), which
// closes it 1001 and leaves nothing in flight.
TEST(AsgiExecutorWebSocket, IsServedCountedAndClosedAtStop) {
    auto r = test::run_child({"--websocket", "--pythonpath", GANTRY_TEST_APPS_DIR, "wsapp:app", "/echo"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("LOADED\nTAKES 1 ACCEPT ECHO ping INFLIGHT 1 CLOSE 1001 INFLIGHT 0"), std::string::npos)
        << r.output;
}

}  // namespace
}  // namespace gantry::asgi
