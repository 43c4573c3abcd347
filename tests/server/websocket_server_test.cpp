// The I/O side of WebSocket against real sockets: a server whose app side accepts and echoes
// through the channel (on threads of its own, as an app's loop would), and clients that are
// Beast's websocket stream or raw bytes (for what no well-behaved client sends).
#include "server/http_server.hpp"  // first: the header stands alone

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "middleware/pipeline.hpp"

namespace gantry {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using namespace std::chrono_literals;

// A guard against a hang, not a measurement: every wait below ends long before it when the code works.
constexpr auto kHangGuard = 20s;

// What the app side does with each handshake.
enum class AppMode { echo, deny, close_before_accept, fail };

// Accepts every WebSocket (choosing "chat" when offered, adding X-App: yes) and echoes each
// message; "close-me" makes it close with 4000 "bye". Answers plain HTTP requests with 200 "http".
class WebSocketApp final : public AppDispatcher {
public:
    explicit WebSocketApp(AppMode mode = AppMode::echo) : mode_(mode) {}
    ~WebSocketApp() override {
        for (auto& t : threads_) t.join();
    }

    bool takes_websockets() const override { return takes_; }
    void set_takes_websockets(bool takes) { takes_ = takes; }
    // What the server is told is in the app now (an ASGI executor counts each WebSocket's task).
    std::size_t in_flight() const override { return busy_.load(); }
    void set_in_flight(std::size_t n) { busy_.store(n); }

    void dispatch(std::unique_ptr<AppCall> call) override {
        if (!call->websocket) {
            call->response.sink()->app_started();
            std::move(call->response).send_whole(ResponseHead{200, "OK", {{"Content-Type", "text/plain"}}}, "http");
            return;
        }
        threads_.emplace_back([this, channel = call->websocket, request = std::move(call->request)] {
            serve(*channel, request);
        });
    }

    // The disconnect codes the app was told, once `n` of them have come.
    std::vector<int> disconnects(std::size_t n) {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, kHangGuard, [&] { return codes_.size() >= n; });
        return codes_;
    }

private:
    // One thread's wait for the channel, woken by when_ready / send's on_space.
    struct Waiter {
        std::mutex mutex;
        std::condition_variable cv;
        bool woken = false;
        std::function<void()> wake() {
            return [this] {
                std::lock_guard lock(mutex);
                woken = true;
                cv.notify_all();
            };
        }
        void wait() {
            std::unique_lock lock(mutex);
            cv.wait_for(lock, kHangGuard, [&] { return woken; });
            woken = false;
        }
    };

    void serve(WebSocketChannel& channel, const HttpRequest& request) {
        switch (mode_) {
        case AppMode::deny:
            channel.deny(ResponseHead{401, "Unauthorized", {{"Content-Type", "text/plain"}, {"X-Denied", "1"}}}, "denied");
            break;
        case AppMode::close_before_accept: channel.close(1000, {}); break;
        case AppMode::fail: channel.fail(); break;
        case AppMode::echo: {
            bool chat = false;
            for (const auto& h : request.headers) chat = chat || (h.name == "Sec-WebSocket-Protocol" && h.value.find("chat") != std::string::npos);
            channel.accept(chat ? "chat" : "", {{"X-App", "yes"}});
            break;
        }
        }
        Waiter waiter;
        for (;;) {
            auto event = channel.take();
            if (event.kind == WebSocketChannel::Event::Kind::pending) {
                if (channel.when_ready(waiter.wake())) waiter.wait();
                continue;
            }
            if (event.kind == WebSocketChannel::Event::Kind::disconnected) {
                std::lock_guard lock(mutex_);
                codes_.push_back(event.code);
                changed_.notify_all();
                return;
            }
            if (event.message.data == "close-me") {
                channel.close(4000, "bye");
                continue;
            }
            if (!channel.send(std::move(event.message), [wake = waiter.wake()](bool) { wake(); }) && !channel.gone())
                waiter.wait();
        }
    }

    const AppMode mode_;
    bool takes_ = true;
    std::atomic<std::size_t> busy_{0};
    std::vector<std::thread> threads_;  // touched on the I/O thread only, joined once the server stopped
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<int> codes_;
};

struct Logged {
    int status = 0;
    std::string target;
    bool websocket = false;
    WebSocketTotals totals;
};

struct Server {
    WebSocketApp app;
    std::vector<ListenSocket> sockets;
    std::unique_ptr<HttpServer> server;
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<Logged> logged;

    explicit Server(AppMode mode = AppMode::echo, WebSocketSettings websocket = {}, const Pipeline* pipeline = nullptr,
                    bool takes = true, std::size_t limit_concurrency = 0)
        : app(mode) {
        app.set_takes_websockets(takes);
        BindAddress address;
        address.host = "127.0.0.1";
        sockets.push_back(open_listen_socket(address, 16));
        HttpServerSettings settings;
        settings.websocket = websocket;
        settings.pipeline = pipeline;
        settings.limit_concurrency = limit_concurrency;
        settings.on_complete = [this](const CompletedExchange& done) {
            std::lock_guard lock(mutex);
            Logged entry{done.status, done.request->target, done.websocket != nullptr, {}};
            if (done.websocket) entry.totals = *done.websocket;
            logged.push_back(entry);
            changed.notify_all();
        };
        server = std::make_unique<HttpServer>(std::move(settings), sockets, app);
        server->start();
    }
    ~Server() {
        server->stop();
        close_listen_sockets(sockets, false);
    }
    std::uint16_t port() const { return sockets[0].address.port; }
    std::vector<Logged> log(std::size_t n) {
        std::unique_lock lock(mutex);
        changed.wait_for(lock, kHangGuard, [&] { return logged.size() >= n; });
        return logged;
    }
};

// Beast's client, connected and upgraded.
struct Client {
    asio::io_context io;
    websocket::stream<asio::ip::tcp::socket> ws{io};
    websocket::response_type response;

    explicit Client(std::uint16_t port, const char* subprotocols = nullptr, bool deflate = false) {
        asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
        ws.next_layer().connect(endpoint);
        if (deflate) {
            websocket::permessage_deflate pmd;
            pmd.client_enable = true;
            ws.set_option(pmd);
        }
        ws.set_option(websocket::stream_base::decorator([subprotocols](websocket::request_type& r) {
            if (subprotocols) r.set(beast::http::field::sec_websocket_protocol, subprotocols);
        }));
        ws.handshake(response, "127.0.0.1", "/ws?x=1");
    }
    std::string echo(const std::string& message, bool text = true) {
        ws.text(text);
        ws.write(asio::buffer(message));
        beast::flat_buffer buffer;
        ws.read(buffer);
        EXPECT_EQ(ws.got_text(), text);
        return beast::buffers_to_string(buffer.data());
    }
    // Reads until the server's close: its code.
    int closed_with() {
        beast::flat_buffer buffer;
        beast::error_code ec;
        while (!ec) ws.read(buffer, ec);
        EXPECT_EQ(ec, websocket::error::closed) << ec.message();
        return ws.reason().code;
    }
};

// A raw TCP connection, for bytes no client library sends.
class RawClient {
public:
    explicit RawClient(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
        timeval guard{static_cast<time_t>(kHangGuard.count()), 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
    }
    ~RawClient() { ::close(fd_); }
    void send(const std::string& bytes) { ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size())); }
    // The HTTP answer's head (and anything read with it stays in `rest_`).
    std::string head() {
        while (rest_.find("\r\n\r\n") == std::string::npos && fill()) {}
        auto end = rest_.find("\r\n\r\n");
        if (end == std::string::npos) return std::exchange(rest_, {});
        std::string h = rest_.substr(0, end + 4);
        rest_.erase(0, end + 4);
        return h;
    }
    std::string upgrade(const std::string& extra = {}) {
        send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n");
        return head();
    }
    // Everything until the server closes the connection.
    std::string rest() {
        while (fill()) {}
        return std::exchange(rest_, {});
    }
    // Frames until the server's close frame: its code (0: the connection ended without one).
    int close_code() {
        for (;;) {
            while (rest_.size() < 2 && fill()) {}
            if (rest_.size() < 2) return 0;
            auto op = static_cast<unsigned char>(rest_[0]) & 0x0f;
            std::size_t len = static_cast<unsigned char>(rest_[1]) & 0x7f;  // the server's frames here are short
            while (rest_.size() < 2 + len && fill()) {}
            if (rest_.size() < 2 + len) return 0;
            std::string payload = rest_.substr(2, len);
            rest_.erase(0, 2 + len);
            if (op == 0x8)
                return payload.size() >= 2 ? (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]) : 1005;
        }
    }
    // A client frame, masked with a zero key unless `masked` is false.
    static std::string frame(unsigned char first, const std::string& payload, bool masked = true) {
        std::string f(1, static_cast<char>(first));
        f += static_cast<char>((masked ? 0x80 : 0) | payload.size());  // short payloads only
        if (masked) f += std::string(4, '\0');
        return f + payload;
    }

private:
    bool fill() {
        char buffer[4096];
        ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
        if (n <= 0) return false;
        rest_.append(buffer, static_cast<std::size_t>(n));
        return true;
    }
    int fd_;
    std::string rest_;
};

TEST(WebSocketServer, EchoesTextAndBinaryAndLogsTheSession) {
    Server s;
    {
        Client c(s.port());
        EXPECT_EQ(c.echo("hello"), "hello");
        EXPECT_EQ(c.echo(std::string("\0\xff\x01", 3), false), std::string("\0\xff\x01", 3));
        std::string big(1 << 20, 'x');
        EXPECT_EQ(c.echo(big), big);
        c.ws.close(websocket::close_reason(1000));
        beast::flat_buffer rest;
        beast::error_code ec;
        c.ws.read(rest, ec);
    }
    EXPECT_EQ(s.app.disconnects(1), std::vector<int>{1000});
    auto log = s.log(1);
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0].status, 101);
    EXPECT_EQ(log[0].target, "/ws?x=1");
    ASSERT_TRUE(log[0].websocket);
    EXPECT_EQ(log[0].totals.messages_received, 3u);
    EXPECT_EQ(log[0].totals.messages_sent, 3u);
    EXPECT_EQ(log[0].totals.bytes_received, 5u + 3u + (1u << 20));
    EXPECT_EQ(log[0].totals.bytes_sent, log[0].totals.bytes_received);
    EXPECT_EQ(log[0].totals.close_code, 1000);
}

TEST(WebSocketServer, TheAcceptCarriesTheSubprotocolAndTheAppsHeaders) {
    Server s;
    Client c(s.port(), "other, chat");
    EXPECT_EQ(c.response.result_int(), 101);
    EXPECT_EQ(c.response[beast::http::field::sec_websocket_protocol], "chat");
    EXPECT_EQ(c.response["X-App"], "yes");
    EXPECT_EQ(c.response[beast::http::field::server], "gantry");
    EXPECT_EQ(c.echo("x"), "x");
}

TEST(WebSocketServer, DeflateIsNegotiatedWithASmallWindowAndMessagesStillEcho) {
    Server s;
    Client c(s.port(), nullptr, true);
    std::string extensions(c.response[beast::http::field::sec_websocket_extensions]);
    EXPECT_NE(extensions.find("permessage-deflate"), std::string::npos) << extensions;
    EXPECT_NE(extensions.find("server_max_window_bits="), std::string::npos) << extensions;
    std::string repetitive;
    for (int i = 0; i < 2000; ++i) repetitive += "{\"type\": \"chat\", \"n\": " + std::to_string(i % 10) + "}";
    EXPECT_EQ(c.echo(repetitive), repetitive);
    EXPECT_EQ(c.echo("short"), "short");
    std::string noise(1 << 20, '\0');  // incompressible: many write-buffer pieces
    std::uint32_t x = 1;
    for (char& ch : noise) ch = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
    EXPECT_EQ(c.echo(noise, false), noise);
}

TEST(WebSocketServer, DeflateOffIsNotNegotiated) {
    WebSocketSettings settings;
    settings.per_message_deflate = false;
    Server s(AppMode::echo, settings);
    Client c(s.port(), nullptr, true);
    EXPECT_EQ(c.response[beast::http::field::sec_websocket_extensions], "");
    EXPECT_EQ(c.echo("plain"), "plain");
}

TEST(WebSocketServer, TheAppClosesWithItsCodeAndReason) {
    Server s;
    Client c(s.port());
    c.ws.write(asio::buffer(std::string("close-me")));
    EXPECT_EQ(c.closed_with(), 4000);
    EXPECT_EQ(c.ws.reason().reason, "bye");
    EXPECT_EQ(s.app.disconnects(1), std::vector<int>{4000});
    EXPECT_EQ(s.log(1)[0].totals.close_code, 4000);
}

TEST(WebSocketServer, APeersCloseCodeReachesTheApp) {
    Server s;
    Client c(s.port());
    c.ws.close(websocket::close_reason(static_cast<websocket::close_code>(4321), "done"));
    EXPECT_EQ(s.app.disconnects(1), std::vector<int>{4321});
}

TEST(WebSocketServer, ADroppedConnectionIs1006) {
    Server s;
    {
        RawClient raw(s.port());
        EXPECT_EQ(raw.upgrade().rfind("HTTP/1.1 101 ", 0), 0u);
    }
    EXPECT_EQ(s.app.disconnects(1), std::vector<int>{1006});
}

TEST(WebSocketServer, DeniedHandshakesGetTheirHttpAnswer) {
    {
        Server s(AppMode::deny);
        RawClient raw(s.port());
        std::string head = raw.upgrade();
        EXPECT_EQ(head.rfind("HTTP/1.1 401 Unauthorized\r\n", 0), 0u) << head;
        EXPECT_NE(head.find("X-Denied: 1\r\n"), std::string::npos) << head;
        EXPECT_NE(head.find("Connection: close\r\n"), std::string::npos) << head;
        EXPECT_EQ(raw.rest(), "denied");
        EXPECT_EQ(s.log(1)[0].status, 401);
    }
    {
        Server s(AppMode::close_before_accept);
        RawClient raw(s.port());
        EXPECT_EQ(raw.upgrade().rfind("HTTP/1.1 403 ", 0), 0u);
    }
    {
        Server s(AppMode::fail);
        RawClient raw(s.port());
        EXPECT_EQ(raw.upgrade().rfind("HTTP/1.1 500 ", 0), 0u);
    }
}

TEST(WebSocketServer, MalformedHandshakesAreRefusedBeforeTheApp) {
    Server s;
    {
        RawClient raw(s.port());
        raw.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n");
        EXPECT_EQ(raw.head().rfind("HTTP/1.1 400 ", 0), 0u);
    }
    {
        RawClient raw(s.port());
        raw.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
        std::string head = raw.head();
        EXPECT_EQ(head.rfind("HTTP/1.1 426 ", 0), 0u) << head;
        EXPECT_NE(head.find("Sec-WebSocket-Version: 13\r\n"), std::string::npos) << head;
    }
    EXPECT_TRUE(s.app.disconnects(0).empty());  // the app saw neither
}

TEST(WebSocketServer, AnAppThatSpeaksNoWebSocketGetsAnOrdinaryRequest) {
    Server s(AppMode::echo, {}, nullptr, false);
    RawClient raw(s.port());
    std::string head = raw.upgrade();
    EXPECT_EQ(head.rfind("HTTP/1.1 200 ", 0), 0u) << head;
}

TEST(WebSocketServer, AHandshakeOverLimitConcurrencyIs503) {
    Server s(AppMode::echo, {}, nullptr, true, 2);
    s.app.set_in_flight(2);  // two WebSockets open in the app
    {
        RawClient raw(s.port());
        EXPECT_EQ(raw.upgrade().rfind("HTTP/1.1 503 ", 0), 0u);
    }
    s.app.set_in_flight(1);
    Client c(s.port());
    EXPECT_EQ(c.echo("room again"), "room again");
}

TEST(WebSocketServer, WsNoneMakesAnUpgradeAnOrdinaryRequest) {
    WebSocketSettings off;
    off.enabled = false;
    Server s(AppMode::echo, off);
    RawClient raw(s.port());
    EXPECT_EQ(raw.upgrade().rfind("HTTP/1.1 200 ", 0), 0u);
}

// Invalid frames: the server closes with the RFC 6455 code, the app is told the same code, and
// another connection keeps working.
struct BadFrame {
    const char* what;
    std::string bytes;
    int code;
};

TEST(WebSocketServer, InvalidFramesGetTheirCloseCodes) {
    WebSocketSettings small;
    small.max_size = 64;
    small.close_timeout = 100ms;  // the raw client never ends its TCP connection: the server does
    Server s(AppMode::echo, small);
    Client other(s.port());
    const std::vector<BadFrame> cases = {
        {"unmasked", RawClient::frame(0x81, "hi", false), 1002},
        {"bad opcode", RawClient::frame(0x83, "hi"), 1002},
        {"fragmented ping", RawClient::frame(0x09, "hi"), 1002},
        {"bad utf-8", RawClient::frame(0x81, "\xc3\x28"), 1007},
        {"too big", RawClient::frame(0x82, std::string(100, 'x')), 1009},
    };
    std::vector<int> told;
    for (std::size_t i = 0; i < cases.size(); ++i) {
        RawClient raw(s.port());
        ASSERT_EQ(raw.upgrade().rfind("HTTP/1.1 101 ", 0), 0u);
        raw.send(cases[i].bytes);
        EXPECT_EQ(raw.close_code(), cases[i].code) << cases[i].what;
        auto codes = s.app.disconnects(i + 1);
        ASSERT_EQ(codes.size(), i + 1);
        EXPECT_EQ(codes.back(), cases[i].code) << cases[i].what;
        EXPECT_EQ(other.echo(cases[i].what), cases[i].what);
    }
}

TEST(WebSocketServer, APeerSilentAfterAPingIsClosedWith1011) {
    WebSocketSettings quick;
    quick.ping_interval = 20ms;
    quick.ping_timeout = 20ms;
    quick.close_timeout = 100ms;
    Server s(AppMode::echo, quick);
    RawClient raw(s.port());  // answers nothing, not even the ping
    ASSERT_EQ(raw.upgrade().rfind("HTTP/1.1 101 ", 0), 0u);
    EXPECT_EQ(s.app.disconnects(1), std::vector<int>{1011});
    EXPECT_EQ(raw.close_code(), 1011);
}

TEST(WebSocketServer, APeerThatAnswersPingsStaysOpen) {
    WebSocketSettings quick;
    quick.ping_interval = 5ms;
    quick.ping_timeout = 5s;  // a client between two reads answers its pings late, never this late
    Server s(AppMode::echo, quick);
    Client c(s.port());
    int pings = 0;  // Beast's client answers each ping it reads
    c.ws.control_callback([&](websocket::frame_type kind, beast::string_view) { pings += kind == websocket::frame_type::ping; });
    while (pings < 3) {
        ASSERT_EQ(c.echo("still here"), "still here");
        std::this_thread::sleep_for(2ms);
    }
    EXPECT_TRUE(s.app.disconnects(0).empty());
}

TEST(WebSocketServer, ADrainClosesWith1001AndTellsTheApp) {
    Server s;
    Client c(s.port());
    EXPECT_EQ(c.echo("before"), "before");
    s.server->drain();
    EXPECT_EQ(c.closed_with(), 1001);
    EXPECT_EQ(s.app.disconnects(1), std::vector<int>{1001});
    EXPECT_TRUE(s.server->wait_idle(std::chrono::steady_clock::now() + kHangGuard));
}

// A middleware that refuses every WebSocket handshake, as an auth check in the chain would.
class RefuseWebSockets final : public Middleware {
public:
    std::string_view name() const override { return "refuse"; }
    Flow on_request(RequestContext& ctx) const override {
        if (!ctx.is_websocket_handshake()) return Flow::next;
        ctx.respond(ResponseHead{403, "Forbidden", {}}, "no websockets here");
        return Flow::respond;
    }
};

// Adds a header to every response head, the 101 too.
class TagResponses final : public Middleware {
public:
    std::string_view name() const override { return "tag"; }
    void on_response(RequestContext&, ResponseHead& head, std::string*) const override {
        head.headers.push_back({"X-Chain", "seen"});
    }
};

TEST(WebSocketServer, TheChainMayRefuseTheHandshake) {
    std::vector<std::unique_ptr<const Middleware>> chain;
    chain.push_back(std::make_unique<RefuseWebSockets>());
    Pipeline pipeline(std::move(chain));
    Server s(AppMode::echo, {}, &pipeline);
    RawClient raw(s.port());
    EXPECT_EQ(raw.upgrade().rfind("HTTP/1.1 403 ", 0), 0u);
    EXPECT_EQ(raw.rest(), "no websockets here");
}

TEST(WebSocketServer, TheChainsResponseHooksSeeThe101) {
    std::vector<std::unique_ptr<const Middleware>> chain;
    chain.push_back(std::make_unique<TagResponses>());
    Pipeline pipeline(std::move(chain));
    Server s(AppMode::echo, {}, &pipeline);
    Client c(s.port());
    EXPECT_EQ(c.response["X-Chain"], "seen");
    EXPECT_EQ(c.echo("x"), "x");
}

}  // namespace
}  // namespace gantry
