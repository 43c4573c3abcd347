// One connection's session (an Asio translation unit: see session.hpp).
#include "server/session.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "middleware/middleware.hpp"
#include "middleware/pipeline.hpp"
#include "server/background_refresh.hpp"
#include "server/body_pump.hpp"
#include "server/forwarded_headers.hpp"
#include "server/metrics_store.hpp"
#include "server/response_framing.hpp"
#include "server/response_writer.hpp"
#include "server/refresh_sink.hpp"
#include "server/session_sink.hpp"
#include "server/websocket_handshake.hpp"
#include "server/websocket_session.hpp"

namespace gantry {

using boost::system::error_code;

namespace {

// Room in the read buffer beyond the largest header the limits allow, for the body bytes that
// come with it (and the least buffer any connection has).
constexpr std::size_t kReadBufferRoom = 64 * 1024;
// A lingering close (a response sent while the client still sends) waits this long for the
// client to stop, so it reads the answer instead of a reset...
constexpr auto kLingerTimeout = std::chrono::seconds(2);
// ...and reads at most this much of what the client still sends.
constexpr std::size_t kLingerReadMax = 4u << 20;

inline auto use_ec(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// "127.0.0.1"/port from a sockaddr; an empty address for unix sockets.
void describe_peer(const sockaddr* sa, std::string& addr, std::uint16_t& port) {
    char text[INET6_ADDRSTRLEN] = {0};
    if (sa->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
        port = ntohs(in->sin_port);
        addr = text;
    } else if (sa->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
        port = ntohs(in6->sin6_port);
        addr = text;
        if (addr.rfind("::ffff:", 0) == 0 && addr.find('.') != std::string::npos) addr.erase(0, 7);
    } else {
        addr.clear();
        port = 0;
    }
}

// The one place a request goes to the app: the app side answers through `sink`, from its thread.
void dispatch_to_app(AppDispatcher& dispatcher, HttpRequest request, std::shared_ptr<ResponseSink> sink,
                     std::chrono::steady_clock::time_point queued_at) {
    auto call = std::make_unique<AppCall>();
    call->request = std::move(request);
    call->response = ResponseHandle(std::move(sink));
    call->queued_at = queued_at;
    dispatcher.dispatch(std::move(call));
}

// The access log and some response hooks need the request after it has gone to Python (the call
// owns it): the session's copy, without the body.
void copy_for_log(const HttpRequest& request, HttpRequest& logged) {
    logged.method = request.method;
    logged.target = request.target;
    logged.version = request.version;
    logged.headers = request.headers;
    logged.remote_addr = request.remote_addr;
    logged.remote_port = request.remote_port;
    logged.server_name = request.server_name;
    logged.server_port = request.server_port;
    logged.url_scheme = request.url_scheme;
}

}  // namespace

void wake_session(const std::shared_ptr<Session>& session) {
    asio::post(session->executor(), [session]() { session->on_sink_ready(); });
}

void release_session(std::shared_ptr<Session> session) {
    auto executor = session->executor();
    asio::post(executor, [session = std::move(session)]() {});
}

Session::Session(Socket socket, asio::io_context& context, std::unordered_set<Session*>& registry,
                 ServerShared& shared, const ListenerInfo& listener)
    : socket_(std::move(socket)), context_(context), registry_(registry), shared_(shared), listener_(listener),
      // The metrics address neither observes nor logs its scrapes: a scraper every few seconds is noise.
      report_(listener.metrics ? nullptr : shared.settings.metrics.store, &shared.settings.metrics,
              listener.metrics ? nullptr : &shared.settings.on_complete),
      watchdog_(context), wake_(context), middleware_wait_(context) {
    wake_.expires_at(Clock::time_point::max());
    registry_.insert(this);
    shared_.connections.fetch_add(1, std::memory_order_relaxed);
    if (counted()) {
        shared_.load->connections.fetch_add(1, std::memory_order_relaxed);
        shared_.load->connections_total.fetch_add(1, std::memory_order_relaxed);
    }
    buffer_.max_size(std::max<std::size_t>(kReadBufferRoom, header_budget() + kReadBufferRoom));
}

Session::~Session() {
    registry_.erase(this);
    shared_.connections.fetch_sub(1, std::memory_order_relaxed);
    if (counted()) shared_.load->connections.fetch_sub(1, std::memory_order_relaxed);
}

asio::awaitable<void> Session::run(std::shared_ptr<Session> self) { co_await self->serve(); }

void watch_session_peer(const std::shared_ptr<Session>& session, const SessionSink* sink) {
    asio::post(session->executor(), [session, sink]() { session->start_watching_peer(sink); });
}

void Session::start_watching_peer(const SessionSink* sink) {
    // A pipelined request already read: its bytes are the peer's news, no EOF can be seen behind them.
    // A body still being read: its reads see the EOF themselves.
    if (closed_ || watching_peer_ || sink_.get() != sink || buffer_.size() != 0 || (pump_ && pump_->running())) return;
    watching_peer_ = true;
    asio::co_spawn(executor(), watch_peer(shared_from_this()), asio::detached);
}

asio::awaitable<void> Session::watch_peer(std::shared_ptr<Session> self) {
    error_code ec;
    co_await self->socket_.async_wait(Socket::wait_read, use_ec(ec));
    self->watching_peer_ = false;
    if (ec || self->closed_) co_return;
    char byte;
    ssize_t n = ::recv(self->socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) co_return;  // the next request: nothing to tell
    if (n == 0) {
        if (self->sink_) self->sink_->mark_peer_closed();
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        self->close();  // reset: the client is gone, and so is any way to answer it
    }
}

void Session::drain() {
    draining_ = true;
    if (websocket_) websocket_->drain();
    if (idle_ && served_) arm(std::min(deadline_, Clock::now() + kDrainLinger));
}

bool Session::reclaim_if_idle() {
    if (!idle_ || !served_ || closed_ || reclaimed_) return false;
    reclaimed_ = true;
    arm(Clock::now());
    return true;
}

void Session::close() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;  // closing a socket the peer already reset
    socket_.close(ignored);
    watchdog_.cancel();
    wake_.cancel();
    middleware_wait_.cancel();
    if (pump_) pump_->on_close();
    if (sink_) sink_->mark_gone();
}

void Session::on_sink_ready() {
    wake_.cancel();
    if (websocket_) websocket_->on_wake();
}

bool Session::closes_after_response() const {
    return draining_ || (sent_away_ && buffer_.size() == 0) || (pump_ && !pump_->keeps_alive());
}

bool Session::take_continue_due() { return pump_ && pump_->take_continue_due(); }

int Session::body_refusal(const char*& reason) const { return pump_ ? pump_->refusal(reason) : 0; }

void Session::response_complete() {
    if (pump_) pump_->stream()->abandon();
}

bool Session::streams_request_body() const {
    const auto& settings = shared_.settings;
    return !listener_.metrics && shared_.dispatcher && shared_.dispatcher->streams_request_body() &&
           !(settings.pipeline && settings.pipeline->needs_request_body());
}

void Session::count_websocket_session() {
    keep_alive_ = false;
    ++requests_;
    if (counted()) shared_.load->requests_total.fetch_add(1, std::memory_order_relaxed);
}

bool Session::takes_websocket(const HttpRequest& request) const {
    return shared_.settings.websocket.enabled && !listener_.metrics && shared_.dispatcher &&
           shared_.dispatcher->takes_websockets() && asks_for_websocket(request);
}

void Session::consider_sending_away() {
    if (!counted()) return;
    const auto now = Clock::now().time_since_epoch().count();
    auto last = shared_.last_send_away_ns.load(std::memory_order_relaxed);
    if (now - last < std::chrono::duration_cast<Clock::duration>(kSendAwayInterval).count()) return;
    if (!shared_.board->other_worker_idle(shared_.settings.board_slot)) return;
    if (!shared_.last_send_away_ns.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
    Session* busiest = nullptr;
    for (Session* s : registry_)
        if (!s->closed_ && !s->draining_ && !s->sent_away_ && !s->websocket_ && (!busiest || s->requests_ > busiest->requests_))
            busiest = s;
    if (busiest) busiest->sent_away_ = true;
}

std::size_t Session::header_budget() const {
    const auto& l = shared_.settings.limits;
    return l.request_line + 2 + l.fields * (l.field_size + 2) + 2;
}

// Deadline for the next socket operation; on expiry the operation is cancelled. A generation
// number tells a stale expiry (already queued when the deadline moved) from a real one.
void Session::arm(Clock::time_point deadline) {
    if (armed_ && deadline == deadline_) return;
    armed_ = true;
    deadline_ = deadline;
    timed_out_ = false;
    std::uint64_t generation = ++timer_generation_;
    watchdog_.expires_at(deadline);
    watchdog_.async_wait([self = shared_from_this(), generation](error_code ec) {
        if (ec || generation != self->timer_generation_) return;
        self->timed_out_ = true;
        self->armed_ = false;
        error_code ignored;  // cancelling a closed socket
        self->socket_.cancel(ignored);
    });
}

void Session::disarm() {
    if (!armed_) return;
    armed_ = false;
    ++timer_generation_;
    watchdog_.cancel();
}

// Gives the parser what the buffer holds and drops what it used (Beast keeps a partial header in
// our buffer, so the rest stays for the next call).
RequestParser::State Session::feed(RequestParser& parser) {
    auto data = buffer_.data();
    buffer_.consume(parser.feed({static_cast<const char*>(data.data()), data.size()}));
    return parser.state();
}

asio::awaitable<std::size_t> Session::read_some(error_code& ec, std::size_t step) {
    auto space = buffer_.prepare(std::min<std::size_t>(step, buffer_.max_size() - buffer_.size()));
    std::size_t n = co_await socket_.async_read_some(space, use_ec(ec));
    buffer_.commit(n);
    co_return n;
}

asio::awaitable<bool> Session::write_all(std::vector<asio::const_buffer>& buffers) {
    if (buffers.empty()) co_return true;
    error_code ec;
    arm_io_deadline();
    co_await asio::async_write(socket_, buffers, use_ec(ec));
    buffers.clear();
    if (ec) {
        close();
        co_return false;
    }
    co_return true;
}

// Sends a server-made response, then closes unless keep_alive. With unread request bytes in
// flight (413 mid-upload), close gently so the client reads the answer instead of a reset.
asio::awaitable<void> Session::send_error(int status, const char* reason, bool keep_alive, bool is_head) {
    std::string bytes = render_error_response(status, reason, keep_alive, !is_head);
    std::vector<asio::const_buffer> buffers{asio::buffer(bytes)};
    if (!co_await write_all(buffers)) co_return;
    if (!keep_alive) co_await linger_close();
}

// A request the parser refused: its error answer, then close. Logged at debug level only, so a
// flood of bad requests cannot fill the error log (gunicorn does the same).
asio::awaitable<void> Session::refuse(const RequestParser& parser) {
    spdlog::debug("refused a request from {}: {} {}", peer_addr_.empty() ? "unix socket" : peer_addr_,
                  parser.error_status(), parser.error_reason());
    co_await send_error(parser.error_status(), parser.error_reason(), false, false);
}

asio::awaitable<void> Session::linger_close() {
    error_code ec;
    socket_.shutdown(asio::socket_base::shutdown_send, ec);
    arm(Clock::now() + kLingerTimeout);
    std::size_t drained = 0;
    while (!ec && drained < kLingerReadMax) {
        buffer_.clear();
        drained += co_await read_some(ec);
    }
    close();
}

void Session::set_cork(bool on) {
    int value = on ? 1 : 0;  // best effort: a failure only costs an extra segment
    ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_CORK, &value, sizeof(value));
}

// One request on its way: the native endpoints or the middleware chain's request side, the hand-over
// to the app (or the answer made here), the writer of its response, and the exchange report.
// However it ends (a closed connection, an exception, the frame destroyed at shutdown), the app
// side learns the client is gone, the session/sink reference cycle breaks and the in-flight
// gauge goes down.
class Session::Exchange {
public:
    // `websocket`: the request is a WebSocket handshake for the app (Session::takes_websocket).
    Exchange(Session& session, HttpRequest request, Clock::time_point started,
             std::chrono::system_clock::time_point wall_start, bool websocket);
    ~Exchange();
    Exchange(const Exchange&) = delete;
    Exchange& operator=(const Exchange&) = delete;

    // A middleware returned Flow::wait: ask it again when woken or at this deadline.
    bool waits_for_middleware() const { return pipeline_ && ctx_.waiting_at() != static_cast<std::size_t>(-1); }
    Clock::time_point wait_deadline() const { return ctx_.wait_deadline(); }
    void ask_middleware_again() { entered_ = pipeline_->run_request(ctx_, ctx_.waiting_at()); }

    // Gives the request its answer: a native one, a middleware's, the overload 503, or the app's.
    void hand_over();
    ResponseWriter writer() {
        return ResponseWriter(session_, *session_.sink_, ResponseHooks{pipeline_, &ctx_, entered_}, facts_,
                              queued_at_, logged_ ? &*logged_ : nullptr);
    }
    // The response is written (or abandoned): the connection's keep-alive, then the report.
    void finish(WrittenResponse written);

    using WebSocketEvents = std::vector<WebSocketChannel::Outgoing>;
    // hand_over() gave a WebSocket handshake to the app (no native, middleware or overload answer).
    bool gave_websocket() const { return channel_ != nullptr; }
    // Until the app's first decision on it: what the app queued, that decision first (empty: the
    // connection closed meanwhile).
    asio::awaitable<WebSocketEvents> wait_for_websocket_decision();
    // The decision is not an accept: its HTTP answer (the app's denial, 403 for a close, 500 for
    // a failure) is queued for the writer, and the connection closes after it.
    void refuse_websocket(WebSocketChannel::Outgoing& decision);
    // The decision is an accept: the WebSocket that takes the connection over, with the 101's
    // head (which has passed the chain's response hooks) and what the report needs.
    std::shared_ptr<WebSocketSession> upgrade(WebSocketChannel::Outgoing& accept);

private:
    // The request as the app sees it: the connection's addresses, then trusted forwarded headers.
    static HttpRequest addressed(const Session& session, HttpRequest request);
    // The handshake to the app: an AppCall with the WebSocket's channel and no response. The
    // channel wakes the session on its I/O thread (weakly: the app may hold the channel longer).
    void dispatch_websocket();
    // A middleware answered and asked for the app to be called anyway, with no client waiting
    // (the cache's stale-while-revalidate): one app call whose answer goes through the response
    // hooks on this thread, by a job that owns all it needs and never touches the session.
    void start_background_refresh();

    struct InPython {  // the load board's count of this worker's calls for Python, up until written
        LoadBoard::Slot* slot = nullptr;
        void enter(LoadBoard::Slot* s) {
            slot = s;
            if (slot) slot->python_busy.fetch_add(1, std::memory_order_relaxed);
        }
        // An accepted WebSocket: the app holds it for long, but it keeps no Python thread busy.
        void leave() {
            if (slot) slot->python_busy.fetch_sub(1, std::memory_order_relaxed);
            slot = nullptr;
        }
        ~InPython() { leave(); }
    };

    struct InFlight {  // the metrics store's gauge, up while the exchange lives
        MetricsStore* store;
        explicit InFlight(MetricsStore* s) : store(s) {
            if (store) store->in_flight_add(1);
        }
        ~InFlight() {
            if (store) store->in_flight_add(-1);
        }
    };

    Session& session_;
    HttpRequest request_;
    const Clock::time_point started_;
    const std::chrono::system_clock::time_point wall_start_;
    RequestFacts facts_;
    std::optional<NativeAnswer> native_;
    const Pipeline* pipeline_ = nullptr;
    InFlight in_flight_;
    RequestContext ctx_;
    std::size_t entered_ = 0;
    std::optional<HttpRequest> logged_;  // the copy kept once the app owns the request
    Clock::time_point queued_at_{};
    InPython in_python_;
    const bool websocket_;
    std::shared_ptr<WebSocketChannel> channel_;  // the handshake's, once given to the app
};

HttpRequest Session::Exchange::addressed(const Session& session, HttpRequest request) {
    request.remote_addr = session.peer_addr_;
    request.remote_port = session.peer_port_;
    request.server_name = session.listener_.server_name;
    request.server_port = session.listener_.server_port;
    request.url_scheme = "http";
    // An empty peer address means a unix socket (local, trusted), unless getpeername failed.
    if (session.listener_.family == AF_UNIX || !request.remote_addr.empty())
        apply_forwarded_headers(request, session.shared_.settings.forwarded_allow_ips);
    return request;
}

Session::Exchange::Exchange(Session& session, HttpRequest request, Clock::time_point started,
                            std::chrono::system_clock::time_point wall_start, bool websocket)
    : session_(session), request_(addressed(session, std::move(request))), started_(started),
      wall_start_(wall_start), in_flight_(session.report_.metrics()), ctx_(request_), websocket_(websocket) {
    const auto& settings = session_.shared_.settings;
    facts_.version = request_.version;
    facts_.is_head = request_.is_head();
    // A WebSocket handshake that is not accepted closes its connection after the answer.
    facts_.keep_alive = request_.keep_alive && !websocket_;
    if (websocket_) {
        ctx_.mark_websocket_handshake();
        // A malformed handshake is answered here. So are frames sent before the 101 (RFC 6455
        // 4.1: the client waits for it): they were read with the head, and Beast cannot take them.
        native_ = refuse_websocket_handshake(request_);
        if (!native_ && session_.buffer_.size() > 0) {
            native_ = NativeAnswer{ResponseHead{400, "Bad Request", {{"Content-Type", "text/plain; charset=utf-8"}}},
                                   "400 Bad Request: data sent before the WebSocket handshake was answered\n"};
        }
    }

    // The metrics address has no chain and no app: it answers /metrics itself. Elsewhere the
    // health paths are answered natively; the native middleware chain sees every other request
    // first, and one may answer it. (A refused WebSocket handshake has its answer already.)
    if (native_)
        ;
    else if (session_.listener_.metrics)
        native_ = metrics_answer(request_, settings.metrics.store, session_.shared_.board);
    else if (session_.shared_.health.enabled())
        native_ = session_.shared_.health.answer(
            request_, session_.shared_.draining.load(std::memory_order_relaxed) || session_.draining_);
    if (!session_.listener_.metrics && !native_ && settings.pipeline && !settings.pipeline->empty())
        pipeline_ = settings.pipeline;
    if (pipeline_ && !session_.middleware_wake_) {
        // Made once per connection: wakes a request whose middleware returned Flow::wait, from
        // any thread, as long as the connection exists.
        session_.middleware_wake_ = [weak = session_.weak_from_this(), exec = session_.executor()] {
            asio::post(exec, [weak] {
                if (auto self = weak.lock()) self->middleware_wait_.cancel();
            });
        };
    }
    ctx_.set_wake_handle(&session_.middleware_wake_);
    if (pipeline_) entered_ = pipeline_->run_request(ctx_);
}

Session::Exchange::~Exchange() {
    // However the WebSocket ended (or never began), the app's side learns it is over.
    if (channel_) channel_->disconnected(kWsCloseAbnormal);
    if (session_.sink_) {
        session_.sink_->mark_gone();
        session_.sink_.reset();
    }
}

void Session::Exchange::hand_over() {
    // Keep a copy of the request only if something needs it after the app has taken it.
    // A WebSocket handshake is kept for Beast's accept.
    if (websocket_ || session_.report_.needs_request() || (pipeline_ && pipeline_->reads_request_in_response())) {
        copy_for_log(request_, logged_.emplace());
        ctx_.rebind(*logged_);
    }
    const auto& settings = session_.shared_.settings;
    auto& sink = session_.sink_;
    sink = std::make_shared<SessionSink>(session_.shared_from_this(), settings.stream_buffer_bytes);
    queued_at_ = Clock::now();
    // Answered here, the app never called: a streamed body is read and dropped.
    if (request_.body_stream && (native_ || ctx_.answered())) request_.body_stream->abandon();
    if (native_) {
        sink->send_whole(std::move(native_->head), std::move(native_->body));
    } else if (ctx_.answered()) {
        // A middleware answered: the app is never called. The answer takes the same way out.
        if (ctx_.answer_extra().kind != AnswerBody::Kind::owned)
            sink->queue_answer(std::move(ctx_.answer_head()), ctx_.answer_extra());
        else
            sink->send_whole(std::move(ctx_.answer_head()), std::move(ctx_.answer_body()));
        if (pipeline_ && ctx_.background_refresh_requested()) start_background_refresh();
    } else if ((settings.max_queue && session_.shared_.dispatcher->waiting() >= settings.max_queue) ||
               (settings.limit_concurrency && session_.shared_.dispatcher->in_flight() >= settings.limit_concurrency)) {
        NativeAnswer overloaded = overloaded_answer();
        if (request_.body_stream) request_.body_stream->abandon();
        sink->send_whole(std::move(overloaded.head), std::move(overloaded.body));
    } else {
        // Measured before this call joins the queue: one already waiting means the queue backs up.
        const bool backed_up = session_.counted() && session_.shared_.dispatcher->waiting() > 0;
        if (session_.counted()) in_python_.enter(session_.shared_.load);
        if (websocket_)
            dispatch_websocket();
        else
            dispatch_to_app(*session_.shared_.dispatcher, std::move(request_), sink, queued_at_);
        if (backed_up) session_.consider_sending_away();
    }
}

void Session::Exchange::dispatch_websocket() {
    auto wake = [weak = session_.weak_from_this(), exec = session_.executor()] {
        asio::post(exec, [weak] {
            if (auto self = weak.lock()) self->on_sink_ready();
        });
    };
    channel_ = std::make_shared<WebSocketChannel>(std::move(wake), session_.shared_.settings.stream_buffer_bytes);
    auto call = std::make_unique<AppCall>();
    call->request = std::move(request_);
    call->websocket = channel_;
    call->queued_at = queued_at_;
    session_.shared_.dispatcher->dispatch(std::move(call));
}

asio::awaitable<Session::Exchange::WebSocketEvents> Session::Exchange::wait_for_websocket_decision() {
    std::deque<WebSocketChannel::Outgoing> taken;  // gone with this frame
    while (taken.empty() && !session_.closed_) {
        channel_->take_outgoing(taken);
        if (taken.empty()) co_await session_.wait_for_sink();
    }
    WebSocketEvents events;
    for (auto& event : taken) events.push_back(std::move(event));
    co_return events;
}

void Session::Exchange::refuse_websocket(WebSocketChannel::Outgoing& decision) {
    using Kind = WebSocketChannel::Outgoing::Kind;
    auto& sink = *session_.sink_;
    if (decision.kind == Kind::deny) {
        sink.send_whole(std::move(decision.head), std::move(decision.body));
    } else if (decision.kind == Kind::close) {
        // A close before the accept (ASGI): the handshake is refused.
        sink.send_whole(ResponseHead{403, "Forbidden", {{"Content-Type", "text/plain; charset=utf-8"}}},
                        "403 Forbidden\n");
    } else {
        if (decision.kind != Kind::fail)
            spdlog::error("websocket {}: the app sent a message before accepting the handshake", logged_->target);
        sink.fail();
    }
    channel_->disconnected(kWsCloseAbnormal);
}

std::shared_ptr<WebSocketSession> Session::Exchange::upgrade(WebSocketChannel::Outgoing& accept) {
    in_python_.leave();
    AcceptedHandshake handshake;
    // The 101 passes the chain's response hooks like any head (Server-Timing, a header of a
    // middleware's own); it has no body.
    ResponseHead head{101, "Switching Protocols", std::move(accept.headers)};
    if (pipeline_) {
        std::string no_body;
        pipeline_->run_response(ctx_, head, &no_body, entered_);
    }
    handshake.request = std::move(*logged_);
    handshake.subprotocol = std::move(accept.subprotocol);
    handshake.headers = std::move(head.headers);
    handshake.timings = ctx_.mutable_timings();
    handshake.started = started_;
    handshake.queued_at = queued_at_;
    handshake.wall_started = wall_start_;
    // The channel is the WebSocket's now: this exchange's end no longer ends it.
    return std::make_shared<WebSocketSession>(session_.shared_from_this(), std::move(channel_), std::move(handshake));
}

void Session::Exchange::start_background_refresh() {
    const auto& settings = session_.shared_.settings;
    AppDispatcher& dispatcher = *session_.shared_.dispatcher;
    if (settings.max_queue && dispatcher.waiting() >= settings.max_queue) {
        // --max-queue: no refresh; the state the middleware left (the lock) goes with this request.
        spdlog::debug("background refresh of {} skipped: the queue is full", ctx_.request().target);
        return;
    }
    auto refresh = std::make_shared<BackgroundRefresh>(*pipeline_, ctx_);
    if (!refresh->start()) return;
    HttpRequest request = refresh->app_request();
    spdlog::debug("background refresh of {}", request.target);
    // The job is the refresh's only owner once posted: it ends on this I/O thread, or, if the
    // thread has stopped, with the io_context (its states released, the lock with them).
    auto sink = std::make_shared<RefreshSink>([refresh = std::move(refresh), exec = session_.executor()](
                                                  RefreshAnswer answer) mutable {
        asio::post(exec, [refresh = std::move(refresh), answer = std::move(answer)]() mutable {
            refresh->complete(std::move(answer));
        });
    });
    dispatch_to_app(dispatcher, std::move(request), std::move(sink), Clock::now());
}

void Session::Exchange::finish(WrittenResponse written) {
    session_.disarm();
    session_.keep_alive_ = written.keep_alive;
    ++session_.requests_;
    if (session_.counted()) {
        session_.shared_.load->requests_total.fetch_add(1, std::memory_order_relaxed);
        if (session_.sent_away_ && !written.keep_alive && !session_.draining_)
            session_.shared_.load->sent_away_total.fetch_add(1, std::memory_order_relaxed);
    }
    FinishedExchange exchange;
    if (auto& sink = session_.sink_) {
        exchange.app = sink->app_times();
        if (!written.finished) sink->mark_gone();
        sink.reset();
    }
    exchange.request = logged_ ? &*logged_ : nullptr;
    exchange.response_headers = &written.headers;
    exchange.status = written.status;
    exchange.body_bytes = written.body_bytes;
    exchange.queued_at = queued_at_;
    exchange.started = started_;
    exchange.finished = Clock::now();
    exchange.wall_started = wall_start_;
    session_.report_.report(exchange, ctx_.mutable_timings());
}

asio::awaitable<void> Session::serve() {
    {
        sockaddr_storage peer{};
        socklen_t len = sizeof(peer);
        if (::getpeername(socket_.native_handle(), reinterpret_cast<sockaddr*>(&peer), &len) == 0)
            describe_peer(reinterpret_cast<sockaddr*>(&peer), peer_addr_, peer_port_);
        else
            spdlog::debug("getpeername: {} (fd {})", std::strerror(errno), socket_.native_handle());
    }
    const auto& settings = shared_.settings;
    bool first_request = true;
    while (!closed_) {
        RequestParser parser(settings.limits);
        Clock::time_point first_byte{};
        bool have_first_byte = false;
        // Header phase.
        for (;;) {
            if (buffer_.size() > 0) {
                if (!have_first_byte) {
                    have_first_byte = true;
                    first_byte = Clock::now();
                }
                if (feed(parser) == RequestParser::State::error) {
                    co_await refuse(parser);
                    co_return;
                }
                if (parser.state() != RequestParser::State::need_more) break;
            }
            idle_ = !have_first_byte;
            if (buffer_.size() >= buffer_.max_size()) {
                co_await send_error(431, "Request Header Fields Too Large", false, false);
                co_return;
            }
            // Draining: an idle keep-alive connection waits only a short linger for a request its
            // client may already have sent (served, with Connection: close), then closes.
            arm(have_first_byte ? first_byte + settings.header_timeout
                : first_request ? Clock::now() + settings.header_timeout
                : Clock::now() + (draining_ ? std::min<Clock::duration>(settings.keep_alive, kDrainLinger) : settings.keep_alive));
            error_code ec;
            co_await read_some(ec);
            if (ec && timed_out_ && !have_first_byte && !closed_) {
                // An idle deadline (keep-alive, or a drain's linger) that expired in the same
                // moment a request arrived - a thread starved of CPU sees both at once: serve the
                // request rather than reset it unread.
                error_code ignored;
                if (socket_.available(ignored) > 0) {
                    timed_out_ = false;
                    continue;
                }
            }
            if (ec) {
                if (timed_out_ && have_first_byte && !closed_) {
                    co_await send_error(408, "Request Timeout", false, false);
                } else if (ec == asio::error::eof && have_first_byte) {
                    parser.feed_eof();
                    if (parser.state() == RequestParser::State::error)
                        co_await refuse(parser);
                }
                close();
                co_return;
            }
        }
        idle_ = false;
        auto wall_start = std::chrono::system_clock::now();
        // Body phase. An app that takes the body as it arrives (ASGI) is called now, and the body
        // pump reads the rest while the response is written; otherwise the body is read whole
        // before the request goes on (a WSGI thread must never wait for the socket).
        std::shared_ptr<BodyPump> pump;
        if (parser.state() == RequestParser::State::header_done && streams_request_body()) {
            bool streamed = true;
            try {
                parser.stream_body();
            } catch (const std::exception& e) {  // the head's body bytes spilled and cannot be read back
                spdlog::error("request body: {}", e.what());
                streamed = false;
            }
            if (!streamed) {
                co_await send_error(500, "Internal Server Error", false, false);
                co_return;
            }
            pump = BodyPump::make(*this, parser);
        }
        if (!pump && parser.state() == RequestParser::State::header_done && parser.expects_continue()) {
            if (!co_await write_continue(*this)) co_return;
        }
        while (!pump && parser.state() == RequestParser::State::header_done) {
            if (buffer_.size() > 0) {
                if (feed(parser) == RequestParser::State::error) {
                    co_await refuse(parser);
                    co_return;
                }
                if (parser.state() == RequestParser::State::complete) break;
            }
            // A chunk-size line or trailer that never ends (Beast does not bound them) fills the
            // buffer: refuse it instead of reading into no space.
            if (buffer_.size() >= buffer_.max_size()) {
                co_await send_error(400, "Bad Request", false, false);
                co_return;
            }
            arm_io_deadline();
            error_code ec;
            co_await read_some(ec);
            if (ec) {
                if (timed_out_ && !closed_) co_await send_error(408, "Request Timeout", false, false);
                close();
                co_return;
            }
        }
        disarm();
        first_request = false;
        served_ = true;
        {
            // In this frame, not a coroutine of its own: a request costs no frame allocation
            // besides its writer's.
            HttpRequest request = parser.take();
            if (pump) request.body_stream = pump->stream();
            const bool websocket = takes_websocket(request);
            Exchange exchange(*this, std::move(request), have_first_byte ? first_byte : Clock::now(), wall_start,
                              websocket);
            while (exchange.waits_for_middleware() && !closed_) {
                // Flow::wait: the middleware is asked again when woken or at its deadline.
                middleware_wait_.expires_at(exchange.wait_deadline());
                error_code ec;  // operation_aborted: woken early
                co_await middleware_wait_.async_wait(use_ec(ec));
                exchange.ask_middleware_again();
            }
            if (!closed_) {
                exchange.hand_over();
                if (exchange.gave_websocket()) {
                    // The app decides on the handshake; accepted, the connection is the WebSocket's
                    // until it closes.
                    Exchange::WebSocketEvents events = co_await exchange.wait_for_websocket_decision();
                    if (events.empty()) co_return;  // the connection closed meanwhile
                    if (events.front().kind == WebSocketChannel::Outgoing::Kind::accept) {
                        // The WebSocket goes on in a coroutine of its own; this one, with the
                        // request's parser, exchange and sink, ends here.
                        auto websocket = exchange.upgrade(events.front());
                        events.erase(events.begin());
                        asio::co_spawn(executor(), WebSocketSession::run(std::move(websocket), std::move(events)),
                                       [self = shared_from_this()](std::exception_ptr error) {
                                           if (!error) return;
                                           self->close();
                                           try {
                                               std::rethrow_exception(error);
                                           } catch (const std::exception& e) {
                                               spdlog::error("websocket dropped: {}", e.what());
                                           }
                                       });
                        co_return;
                    }
                    exchange.refuse_websocket(events.front());
                }
                if (pump) {
                    pump_ = pump;
                    asio::co_spawn(executor(), BodyPump::run(pump, shared_from_this()), asio::detached);
                }
                ResponseWriter writer = exchange.writer();
                WrittenResponse written = co_await writer.write();
                if (pump) {
                    // The rest of the body is read and dropped (or left, and the connection closes)
                    // before the next request is parsed.
                    co_await pump->settle(written.keep_alive && !closed_);
                    if (pump->left_unread()) written.keep_alive = false;
                }
                exchange.finish(std::move(written));
                pump_.reset();
            }
        }
        // A response that promised keep-alive is followed by the linger even when a drain began
        // meanwhile: its client may already be sending the next request (served with close).
        if (!keep_alive_) {
            if (!closed_ && (buffer_.size() > 0 || (pump && pump->left_unread()))) {
                // Requests already sent behind this one, or a body left unread: closing with them
                // unread would reset the connection and could destroy the response just written.
                co_await linger_close();
            } else if (!closed_) {
                error_code ignored;  // the peer may already be gone
                socket_.shutdown(asio::socket_base::shutdown_send, ignored);
            }
            close();
            co_return;
        }
    }
}

}  // namespace gantry
