// One accepted WebSocket (the one translation unit with Beast's websocket headers: see
// websocket_session.hpp).
#include "server/websocket_session.hpp"

#include <deque>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include "server/metrics_store.hpp"

namespace gantry {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;

namespace {

inline auto use_ec(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// permessage-deflate with small windows (negotiated: server_max_window_bits and, when the client
// offers it, client_max_window_bits): a connection's compression state is what these windows
// need, a few KiB, not zlib's default 32 KiB window each way plus a 64 KiB hash. 9 bits (512
// bytes) is the least Beast allows; web messages are short, and their repeats (JSON keys) near.
// Measured (an idle WebSocket that has sent and received one message, mimalloc): 45.3 KB with
// 11 bits and memLevel 3, 34.6 KB with these.
constexpr int kDeflateWindowBits = 9;
constexpr int kDeflateMemLevel = 1;

constexpr std::size_t kDeflateWriteBuffer = 2048;

// A close reason is at most 123 bytes (a control frame's 125, less the code).
constexpr std::size_t kCloseReasonMax = 123;

// The code a failed read was closed with, as Beast sent it to the peer (RFC 6455 section 7.4.1).
int close_code_of(const error_code& ec) {
    if (ec == websocket::error::message_too_big) return 1009;
    if (ec == websocket::error::bad_frame_payload) return 1007;  // text that is not UTF-8
    if (ec == websocket::condition::protocol_violation) return 1002;
    return kWsCloseAbnormal;
}

// A code the app may send; anything else (1004-1006 and 1015 are reserved, the rest undefined)
// becomes a plain 1000.
int sendable_close_code(int code) {
    if (code >= 3000 && code <= 4999) return code;
    if (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) return code;
    return kWsCloseNormal;
}

// The session's socket as Beast's websocket stream sees it: the socket itself, with a bounded
// teardown. After its close frame Beast waits for the peer to end the TCP connection (so that
// no reset destroys the close in flight); a peer that never does would hold the connection, and
// keep the app from hearing how it ended.
class Transport {
public:
    using executor_type = Socket::executor_type;
    using next_layer_type = Socket;

    Transport(Socket& socket, std::chrono::milliseconds teardown_timeout)
        : socket_(socket), teardown_timeout_(teardown_timeout) {}
    executor_type get_executor() { return socket_.get_executor(); }
    Socket& next_layer() { return socket_; }
    std::chrono::milliseconds teardown_timeout() const { return teardown_timeout_; }

    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        return socket_.async_read_some(buffers, std::forward<Token>(token));
    }
    template <class Buffers, class Token>
    auto async_write_some(const Buffers& buffers, Token&& token) {
        return socket_.async_write_some(buffers, std::forward<Token>(token));
    }

private:
    Socket& socket_;
    std::chrono::milliseconds teardown_timeout_;
};

// Shuts the sending side, reads (and drops) until the peer's EOF or the timeout, closes.
asio::awaitable<error_code> bounded_teardown(Transport& transport) {
    Socket& socket = transport.next_layer();
    error_code ec;
    socket.shutdown(asio::socket_base::shutdown_send, ec);
    asio::steady_timer deadline(transport.get_executor(), transport.teardown_timeout());
    deadline.async_wait([&socket](error_code expired) {
        error_code ignored;  // already closed
        if (!expired) socket.cancel(ignored);
    });
    char dropped[2048];
    while (!ec) co_await socket.async_read_some(asio::buffer(dropped), use_ec(ec));
    deadline.cancel();
    error_code ignored;
    socket.close(ignored);
    co_return ec == asio::error::eof || ec == asio::error::operation_aborted ? error_code{} : ec;
}

// Found by Beast through argument-dependent lookup, for the Transport.
template <class Handler>
void async_teardown(beast::role_type, Transport& transport, Handler&& handler) {
    asio::co_spawn(transport.get_executor(), bounded_teardown(transport),
                   [handler = std::forward<Handler>(handler)](std::exception_ptr, error_code ec) mutable { handler(ec); });
}

}  // namespace

struct WebSocketSession::Stream {
    Stream(Socket& socket, std::chrono::milliseconds teardown_timeout) : ws(socket, teardown_timeout) {}
    websocket::stream<Transport> ws;
};

WebSocketSession::WebSocketSession(std::shared_ptr<Session> session, std::shared_ptr<WebSocketChannel> channel,
                                   AcceptedHandshake handshake)
    : session_(std::move(session)), channel_(std::move(channel)), handshake_(std::move(handshake)),
      metrics_(session_->report().metrics()),
      settings_(session_->settings().websocket),
      stream_(std::make_unique<Stream>(session_->socket(), settings_.close_timeout)),
      outgoing_wait_(session_->executor()), room_wait_(session_->executor()), ping_wait_(session_->executor()),
      close_deadline_(session_->executor()), drain_wait_(session_->executor()) {
    outgoing_wait_.expires_at(Clock::time_point::max());
    room_wait_.expires_at(Clock::time_point::max());
    session_->attach_websocket(this);
}

WebSocketSession::~WebSocketSession() {
    session_->attach_websocket(nullptr);
    if (counted_open_) metrics_->websocket_open_add(-1);
}

asio::awaitable<void> WebSocketSession::run(std::shared_ptr<WebSocketSession> self, std::vector<Outgoing> events) {
    auto& ws = self->stream_->ws;
    const WebSocketSettings& s = self->settings_;
    const HttpRequest& request = self->handshake_.request;
    self->events_ = std::move(events);

    // The handshake as Beast reads it (gantry's own parser read it; the session checked it).
    beast::http::request<beast::http::empty_body> handshake;
    handshake.method_string(request.method);
    handshake.target(request.target);
    handshake.version(request.version);
    for (const auto& h : request.headers) handshake.insert(h.name, h.value);

    websocket::permessage_deflate deflate;
    deflate.server_enable = s.per_message_deflate;
    deflate.server_max_window_bits = kDeflateWindowBits;
    deflate.client_max_window_bits = kDeflateWindowBits;
    deflate.memLevel = kDeflateMemLevel;
    ws.set_option(deflate);
    ws.read_message_max(s.max_size);
    ws.auto_fragment(false);  // a message is one frame: written straight from the app's bytes
    // A compressed message is written through this buffer, which stays allocated once used:
    // 2 KiB, not Beast's 4, per WebSocket that has sent a compressed message.
    ws.write_buffer_bytes(kDeflateWriteBuffer);
    // The 101 must be written within --timeout; pings are the server's own (ping()), not Beast's.
    websocket::stream_base::timeout timeouts{self->session_->settings().io_timeout, websocket::stream_base::none(),
                                             false};
    ws.set_option(timeouts);
    // Called during the accept only.
    ws.set_option(websocket::stream_base::decorator(
        [handshake = &self->handshake_](websocket::response_type& response) {
            response.set(beast::http::field::server, "gantry");
            if (!handshake->subprotocol.empty())
                response.set(beast::http::field::sec_websocket_protocol, handshake->subprotocol);
            for (const auto& h : handshake->headers) {
                if (beast::iequals(h.name, "Server"))
                    response.set(beast::http::field::server, h.value);
                else
                    response.insert(h.name, h.value);
            }
        }));

    error_code ec;
    co_await ws.async_accept(handshake, use_ec(ec));
    if (ec) {
        spdlog::debug("websocket handshake for {} failed: {}", request.target, ec.message());
        self->end(kWsCloseAbnormal, {});
        self->report();
        self->session_->close();
        co_return;
    }
    // Upgraded: the HTTP read buffer is not needed any more (Beast reads into its own).
    self->session_->release_read_buffer();
    // From now on the limit is on the close handshake: a peer that never answers a close is dropped.
    timeouts.handshake_timeout = s.close_timeout;
    ws.set_option(timeouts);
    // Any frame from the peer shows it is alive (the pong to the server's ping above all).
    ws.control_callback([raw = self.get()](websocket::frame_type kind, beast::string_view) {
        raw->last_heard_ = Clock::now();
        if (kind == websocket::frame_type::pong && raw->awaiting_pong_) raw->ping_wait_.cancel();
    });
    if (self->metrics_) {
        self->metrics_->websocket_open_add(1);
        self->counted_open_ = true;
    }
    self->last_heard_ = Clock::now();
    asio::co_spawn(self->session_->executor(), write_loop(self), asio::detached);
    if (s.ping_interval.count() > 0) self->schedule_ping();
    if (self->session_->draining()) self->drain();
    co_await self->read_loop();
    self->close_deadline_.cancel();
    self->report();
    self->session_->close();
}

void WebSocketSession::report() {
    session_->count_websocket_session();
    FinishedExchange exchange;
    exchange.request = &handshake_.request;
    exchange.response_headers = &handshake_.headers;
    exchange.status = 101;
    exchange.body_bytes = totals_.bytes_sent;
    exchange.queued_at = handshake_.queued_at;
    exchange.started = handshake_.started;
    exchange.finished = Clock::now();
    exchange.wall_started = handshake_.wall_started;
    exchange.websocket = &totals_;
    session_->report().report(exchange, handshake_.timings);
}

asio::awaitable<void> WebSocketSession::read_loop() {
    auto& ws = stream_->ws;
    error_code ec;
    while (!ended_) {
        if (!channel_->inbox_has_room()) {
            // Backpressure: the app has not taken what it was given; the socket waits (and, in
            // the kernel's buffers, the peer).
            co_await room_wait_.async_wait(use_ec(ec));
            continue;
        }
        beast::flat_buffer message;
        co_await ws.async_read(message, use_ec(ec));
        if (ec) {
            int code;
            std::string reason;
            if (closing_) {
                code = close_code_;  // the server's close, answered (or cut short)
                reason = close_reason_;
            } else if (ec == websocket::error::closed) {
                // The peer's close: Beast has answered it. 1005: it gave no code.
                code = ws.reason().code == websocket::close_code::none ? 1005 : ws.reason().code;
                reason = std::string(ws.reason().reason);
            } else {
                code = close_code_of(ec);
                if (code != kWsCloseAbnormal)
                    spdlog::debug("websocket {}: closed with {}: {}", session_->listener().server_name, code,
                                  ec.message());
            }
            end(code, std::move(reason));
            break;
        }
        last_heard_ = Clock::now();
        const std::size_t n = message.size();
        ++totals_.messages_received;
        totals_.bytes_received += n;
        if (metrics_) metrics_->count_websocket_received(n);
        channel_->push(WebSocketMessage{ws.got_text(), beast::buffers_to_string(message.data())});
    }
}

void WebSocketSession::take_events() {
    std::deque<Outgoing> batch;
    channel_->take_outgoing(batch);
    if (next_event_ == events_.size()) {
        events_.clear();
        next_event_ = 0;
    }
    for (auto& event : batch) events_.push_back(std::move(event));
}

asio::awaitable<void> WebSocketSession::write_loop(std::shared_ptr<WebSocketSession> self) {
    auto& ws = self->stream_->ws;
    error_code ec;
    while (!self->ended_) {
        if (self->closing_) {
            // The close frame goes after the messages written so far; Beast then reads until the
            // peer's close (or the close timeout) and closes the socket.
            co_await ws.async_close(
                websocket::close_reason(static_cast<websocket::close_code>(self->close_code_),
                                        beast::string_view(self->close_reason_).substr(0, kCloseReasonMax)),
                use_ec(ec));
            self->end(self->close_code_, self->close_reason_);
            break;
        }
        if (self->next_event_ == self->events_.size()) self->take_events();
        if (self->next_event_ == self->events_.size()) {
            // Idle: nothing held for the app's next message.
            std::vector<Outgoing>().swap(self->events_);
            self->next_event_ = 0;
            co_await self->outgoing_wait_.async_wait(use_ec(ec));  // until on_wake(), request_close() or end()
            continue;
        }
        Outgoing& event = self->events_[self->next_event_++];
        switch (event.kind) {
        case Outgoing::Kind::message: {
            const std::size_t n = event.message.data.size();
            ws.text(event.message.text);
            co_await ws.async_write(asio::buffer(event.message.data), use_ec(ec));
            event.message.data = std::string();  // written: freed now, not with the batch
            if (ec) {
                // The connection broke (the read loop sees it too, unless it waits for the app).
                self->end(kWsCloseAbnormal, {});
                self->session_->close();
                co_return;
            }
            ++self->totals_.messages_sent;
            self->totals_.bytes_sent += n;
            if (self->metrics_) self->metrics_->count_websocket_sent(n);
            self->channel_->written(n);
            break;
        }
        case Outgoing::Kind::close:
            self->request_close(sendable_close_code(event.code), std::move(event.reason));
            break;
        case Outgoing::Kind::fail:
            self->request_close(kWsCloseInternalError, {});
            break;
        case Outgoing::Kind::accept:
        case Outgoing::Kind::deny:
            // A second decision on a handshake already accepted: the app side broke its order.
            spdlog::error("websocket: the app answered a handshake already accepted; closing with 1011");
            self->request_close(kWsCloseInternalError, {});
            break;
        }
    }
}

void WebSocketSession::schedule_ping() {
    ping_wait_.expires_after(settings_.ping_interval);
    ping_wait_.async_wait([weak = weak_from_this()](error_code ec) {
        auto self = weak.lock();
        if (ec || !self || self->ended_ || self->closing_) return;
        self->ping();
    });
}

void WebSocketSession::ping() {
    ping_sent_ = Clock::now();
    if (!ping_pending_) {
        ping_pending_ = true;
        stream_->ws.async_ping({}, [weak = weak_from_this()](error_code) {
            if (auto self = weak.lock()) self->ping_pending_ = false;
        });
    }
    if (settings_.ping_timeout.count() <= 0) {
        schedule_ping();
        return;
    }
    awaiting_pong_ = true;
    ping_wait_.expires_after(settings_.ping_timeout);
    ping_wait_.async_wait([weak = weak_from_this()](error_code ec) {
        auto self = weak.lock();
        if (!self || self->ended_ || self->closing_) return;
        self->awaiting_pong_ = false;
        if (self->last_heard_ >= self->ping_sent_) {
            self->schedule_ping();  // answered (the pong cut the wait short), or another frame came
        } else if (!ec) {
            spdlog::debug("websocket: no answer to a ping within {} ms: closing with 1011",
                          self->settings_.ping_timeout.count());
            self->request_close(kWsCloseInternalError, "keepalive ping timeout");
        }
    });
}

void WebSocketSession::request_close(int code, std::string reason) {
    if (closing_ || ended_) return;
    closing_ = true;
    close_code_ = code;
    close_reason_ = std::move(reason);
    outgoing_wait_.cancel();
    ping_wait_.cancel();
    drain_wait_.cancel();
    // The close frame may wait behind a write to a peer that reads nothing, and the peer may never
    // answer it: either way the connection is dropped after the close timeout.
    close_deadline_.expires_after(settings_.close_timeout);
    close_deadline_.async_wait([weak = weak_from_this()](error_code ec) {
        auto self = weak.lock();
        if (ec || !self) return;
        self->end(self->close_code_, self->close_reason_);
        self->session_->close();
    });
}

void WebSocketSession::end(int code, std::string reason) {
    if (ended_) return;
    ended_ = true;
    totals_.close_code = code;
    channel_->disconnected(code, std::move(reason));
    outgoing_wait_.cancel();
    room_wait_.cancel();
    ping_wait_.cancel();
    drain_wait_.cancel();
}

void WebSocketSession::on_wake() {
    outgoing_wait_.cancel();
    room_wait_.cancel();
}

void WebSocketSession::drain() {
    if (closing_ || ended_) return;
    drain_wait_.expires_after(settings_.drain_close_after);
    drain_wait_.async_wait([weak = weak_from_this()](error_code ec) {
        auto self = weak.lock();
        if (ec || !self) return;
        self->request_close(kWsCloseGoingAway, "server shutting down");
    });
}

}  // namespace gantry
