// The only translation unit holding Asio's networking and the HTTP session (compile time: keep it so).
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without including it

#include "server/http_server.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <future>
#include <optional>
#include <thread>
#include <unordered_set>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <spdlog/spdlog.h>

#include "server/forwarded_headers.hpp"
#include "server/metrics_store.hpp"
#include "server/native_endpoints.hpp"
#include "middleware/middleware.hpp"
#include "middleware/pipeline.hpp"
#include "server/response_framing.hpp"
#include "server/session_sink.hpp"

namespace gantry {

namespace asio = boost::asio;
using boost::system::error_code;
using Protocol = asio::generic::stream_protocol;
using Socket = Protocol::socket;
using Acceptor = asio::basic_socket_acceptor<Protocol>;
using Clock = std::chrono::steady_clock;

namespace {

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

// A session that throws loses its connection, never the worker.
void log_session_exception(std::exception_ptr error) {
    if (!error) return;
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        spdlog::error("connection dropped: {}", e.what());
    }
}

struct ListenerInfo {
    std::string server_name;
    std::uint16_t server_port = 0;
    int family = AF_INET;
    int fd = -1;
    bool metrics = false;
};

}  // namespace

class Session;

// One Asio I/O thread: its own io_context (a connection lives on one thread: no strands needed).
struct IoThread {
    // Declared first, destroyed last: sessions still alive when the context is destroyed (their
    // coroutine frames die with it) unregister themselves from this set.
    std::unordered_set<Session*> sessions;  // touched only on this thread
    asio::io_context context{1};
    std::vector<std::unique_ptr<Acceptor>> acceptors;
    std::thread thread;
};

struct ServerShared {
    HttpServerSettings settings;
    HealthEndpoint health;  // from settings.health_path
    AppDispatcher* dispatcher = nullptr;
    std::atomic<std::size_t> connections{0};
    std::atomic<bool> draining{false};  // readiness: a draining worker is not ready
    // Accept loops still running: one whose accept completed as its acceptor closed has a
    // connection it has not made a session of yet. A drained server is idle only once none runs.
    std::atomic<std::size_t> accept_loops{0};
};

// How long a draining server still waits on an idle keep-alive connection for a request.
constexpr auto kDrainLinger = std::chrono::milliseconds(500);

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(Socket socket, IoThread& io, ServerShared& shared, const ListenerInfo& listener)
        : socket_(std::move(socket)), io_(io), shared_(shared), listener_(listener),
          // The metrics address neither observes nor logs its scrapes: a scraper every few seconds is noise.
          report_(listener.metrics ? nullptr : shared.settings.metrics.store, &shared.settings.metrics,
                  listener.metrics ? nullptr : &shared.settings.on_complete),
          watchdog_(io.context), wake_(io.context), middleware_wait_(io.context) {
        wake_.expires_at(Clock::time_point::max());
        io_.sessions.insert(this);
        shared_.connections.fetch_add(1, std::memory_order_relaxed);
        buffer_.max_size(std::max<std::size_t>(64 * 1024, header_budget() + 64 * 1024));
    }
    ~Session() {
        io_.sessions.erase(this);
        shared_.connections.fetch_sub(1, std::memory_order_relaxed);
    }

    // The session lives as long as this coroutine: it holds the owning pointer in its frame.
    static asio::awaitable<void> run(std::shared_ptr<Session> self) { co_await self->serve(); }

    // Stop after the current response. An idle keep-alive connection closes after a short
    // linger (a request its client sent just now is still served, with Connection: close); a
    // connection accepted but not yet spoken on gets its first request served: its client has
    // sent it or is about to, and a close now would fail a request no one refused.
    void drain() {
        draining_ = true;
        if (idle_ && served_) arm(std::min(deadline_, Clock::now() + kDrainLinger));
    }
    // Close now: in-flight writes fail, a blocked app sees client_gone().
    void close() {
        if (closed_) return;
        closed_ = true;
        error_code ignored;  // closing a socket the peer already reset
        socket_.close(ignored);
        watchdog_.cancel();
        wake_.cancel();
        middleware_wait_.cancel();
        if (sink_) sink_->mark_gone();
    }
    void on_sink_ready() { wake_.cancel(); }
    asio::io_context::executor_type executor() { return io_.context.get_executor(); }

private:
    std::size_t header_budget() const {
        const auto& l = shared_.settings.limits;
        return l.request_line + 2 + l.fields * (l.field_size + 2) + 2;
    }

    // Deadline for the next socket operation; on expiry the operation is cancelled. A generation
    // number tells a stale expiry (already queued when the deadline moved) from a real one.
    void arm(Clock::time_point deadline) {
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
    void disarm() {
        if (!armed_) return;
        armed_ = false;
        ++timer_generation_;
        watchdog_.cancel();
    }

    // Gives the parser what the buffer holds and drops what it used (Beast keeps a partial
    // header in our buffer, so the rest stays for the next call).
    RequestParser::State feed(RequestParser& parser) {
        auto data = buffer_.data();
        buffer_.consume(parser.feed({static_cast<const char*>(data.data()), data.size()}));
        return parser.state();
    }

    asio::awaitable<std::size_t> read_some(error_code& ec) {
        auto space = buffer_.prepare(std::min<std::size_t>(16 * 1024, buffer_.max_size() - buffer_.size()));
        std::size_t n = co_await socket_.async_read_some(space, use_ec(ec));
        buffer_.commit(n);
        co_return n;
    }

    asio::awaitable<bool> write_all(std::vector<asio::const_buffer>& buffers) {
        if (buffers.empty()) co_return true;
        error_code ec;
        arm(Clock::now() + shared_.settings.io_timeout);
        co_await asio::async_write(socket_, buffers, use_ec(ec));
        buffers.clear();
        if (ec) {
            close();
            co_return false;
        }
        co_return true;
    }

    // Sends a server-made response, then closes unless keep_alive. With unread request bytes
    // in flight (413 mid-upload), close gently so the client reads the answer instead of a reset.
    asio::awaitable<void> send_error(int status, const char* reason, bool keep_alive, bool is_head) {
        std::string bytes = render_error_response(status, reason, keep_alive, !is_head);
        std::vector<asio::const_buffer> buffers{asio::buffer(bytes)};
        if (!co_await write_all(buffers)) co_return;
        if (!keep_alive) co_await linger_close();
    }

    // A request the parser refused: its error answer, then close. Logged at debug level only, so a
    // flood of bad requests cannot fill the error log (gunicorn does the same).
    asio::awaitable<void> refuse(const RequestParser& parser) {
        spdlog::debug("refused a request from {}: {} {}", peer_addr_.empty() ? "unix socket" : peer_addr_,
                      parser.error_status(), parser.error_reason());
        co_await send_error(parser.error_status(), parser.error_reason(), false, false);
    }

    asio::awaitable<void> linger_close() {
        error_code ec;
        socket_.shutdown(asio::socket_base::shutdown_send, ec);
        arm(Clock::now() + std::chrono::seconds(2));
        std::size_t drained = 0;
        while (!ec && drained < (4u << 20)) {
            buffer_.clear();
            drained += co_await read_some(ec);
        }
        close();
    }

    void set_cork(bool on) {
        int value = on ? 1 : 0;  // best effort: a failure only costs an extra segment
        ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_CORK, &value, sizeof(value));
    }

    asio::awaitable<void> serve();
    asio::awaitable<void> answer(HttpRequest request, Clock::time_point header_done,
                                 std::chrono::system_clock::time_point wall_start);

    Socket socket_;
    IoThread& io_;
    ServerShared& shared_;
    const ListenerInfo& listener_;
    const ExchangeReport report_;
    asio::steady_timer watchdog_;
    asio::steady_timer wake_;
    asio::steady_timer middleware_wait_;          // a request whose middleware returned Flow::wait
    std::function<void()> middleware_wake_;       // cancels middleware_wait_ from any thread
    boost::beast::flat_buffer buffer_;
    std::shared_ptr<SessionSink> sink_;
    std::string peer_addr_;
    std::uint16_t peer_port_ = 0;
    Clock::time_point deadline_{};
    std::uint64_t timer_generation_ = 0;
    bool armed_ = false;
    bool timed_out_ = false;
    bool idle_ = true;
    bool served_ = false;   // a request was answered on this connection
    bool draining_ = false;
    bool closed_ = false;
    bool keep_alive_ = true;
};

void wake_session(const std::shared_ptr<Session>& session) {
    asio::post(session->executor(), [session]() { session->on_sink_ready(); });
}

void release_session(std::shared_ptr<Session> session) {
    auto executor = session->executor();
    asio::post(executor, [session = std::move(session)]() {});
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
        // Body phase: read it all before Python sees the request.
        if (parser.state() == RequestParser::State::header_done && parser.expects_continue()) {
            static const std::string continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
            std::vector<asio::const_buffer> buffers{asio::buffer(continue_line)};
            if (!co_await write_all(buffers)) co_return;
        }
        while (parser.state() == RequestParser::State::header_done) {
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
            arm(Clock::now() + settings.io_timeout);
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
        Clock::time_point header_done = have_first_byte ? first_byte : Clock::now();
        co_await answer(parser.take(), header_done, wall_start);
        // A response that promised keep-alive is followed by the linger even when a drain began
        // meanwhile: its client may already be sending the next request (served with close).
        if (!keep_alive_) {
            if (!closed_ && buffer_.size() > 0) {
                // Requests already sent behind this one: closing with them unread would reset
                // the connection and could destroy the response just written.
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

asio::awaitable<void> Session::answer(HttpRequest request, Clock::time_point started,
                                      std::chrono::system_clock::time_point wall_start) {
    const auto& settings = shared_.settings;
    request.remote_addr = peer_addr_;
    request.remote_port = peer_port_;
    request.server_name = listener_.server_name;
    request.server_port = listener_.server_port;
    request.url_scheme = "http";
    // An empty peer address means a unix socket (local, trusted), unless getpeername failed.
    if (listener_.family == AF_UNIX || !request.remote_addr.empty())
        apply_forwarded_headers(request, settings.forwarded_allow_ips);

    RequestFacts facts;
    facts.version = request.version;
    facts.is_head = request.is_head();
    facts.keep_alive = request.keep_alive;

    // The metrics address has no chain and no app: it answers /metrics itself. Elsewhere the
    // health paths are answered natively; the native middleware chain sees every other request
    // first, and one may answer it.
    std::optional<NativeAnswer> native;
    if (listener_.metrics)
        native = metrics_answer(request, settings.metrics.store);
    else if (shared_.health.enabled())
        native = shared_.health.answer(request, shared_.draining.load(std::memory_order_relaxed) || draining_);
    const Pipeline* pipeline = !listener_.metrics && !native && settings.pipeline && !settings.pipeline->empty()
                                   ? settings.pipeline
                                   : nullptr;
    struct InFlight {  // the gauge goes down however this coroutine ends
        MetricsStore* store;
        explicit InFlight(MetricsStore* s) : store(s) {
            if (store) store->in_flight_add(1);
        }
        ~InFlight() {
            if (store) store->in_flight_add(-1);
        }
    } in_flight(report_.metrics());
    RequestContext ctx(request);
    if (pipeline && !middleware_wake_) {
        // Made once per connection: wakes a request whose middleware returned Flow::wait, from
        // any thread, as long as the connection exists.
        middleware_wake_ = [weak = weak_from_this(), exec = executor()] {
            asio::post(exec, [weak] {
                if (auto self = weak.lock()) self->middleware_wait_.cancel();
            });
        };
    }
    ctx.set_wake_handle(&middleware_wake_);
    std::size_t entered = pipeline ? pipeline->run_request(ctx) : 0;
    while (pipeline && ctx.waiting_at() != static_cast<std::size_t>(-1) && !closed_) {
        // Flow::wait: the middleware is asked again when woken or at its deadline.
        middleware_wait_.expires_at(ctx.wait_deadline());
        error_code ec;  // operation_aborted: woken early
        co_await middleware_wait_.async_wait(use_ec(ec));
        entered = pipeline->run_request(ctx, ctx.waiting_at());
    }
    if (closed_) co_return;

    // The access log and some response hooks need the request after it has gone to Python (the
    // call owns it): keep a copy only if something needs it.
    std::optional<HttpRequest> logged;
    if (report_.needs_request() || (pipeline && pipeline->reads_request_in_response())) {
        logged.emplace();
        logged->method = request.method;
        logged->target = request.target;
        logged->version = request.version;
        logged->headers = request.headers;
        logged->remote_addr = request.remote_addr;
        logged->remote_port = request.remote_port;
        logged->server_name = request.server_name;
        logged->server_port = request.server_port;
        logged->url_scheme = request.url_scheme;
        ctx.rebind(*logged);
    }

    sink_ = std::make_shared<SessionSink>(shared_from_this(), settings.stream_buffer_bytes);
    // However this coroutine ends (an exception, or its frame destroyed at shutdown), the app
    // side must learn the client is gone, and the session/sink reference cycle must break.
    struct SinkRelease {
        Session* session;
        ~SinkRelease() {
            if (session->sink_) {
                session->sink_->mark_gone();
                session->sink_.reset();
            }
        }
    } sink_release{this};
    Clock::time_point queued_at = Clock::now();
    if (native) {
        sink_->send_whole(std::move(native->head), std::move(native->body));
    } else if (ctx.answered()) {
        // A middleware answered: the app is never called. The answer takes the same way out.
        if (ctx.answer_extra().kind != AnswerBody::Kind::owned)
            sink_->queue_answer(std::move(ctx.answer_head()), ctx.answer_extra());
        else
            sink_->send_whole(std::move(ctx.answer_head()), std::move(ctx.answer_body()));
    } else if (settings.max_queue && shared_.dispatcher->waiting() >= settings.max_queue) {
        NativeAnswer overloaded = overloaded_answer();
        sink_->send_whole(std::move(overloaded.head), std::move(overloaded.body));
    } else {
        auto call = std::make_unique<AppCall>();
        call->request = std::move(request);
        call->sink = sink_;
        call->queued_at = queued_at;
        shared_.dispatcher->dispatch(std::move(call));
    }

    int status = 0;
    std::uint64_t body_bytes = 0;
    std::vector<HttpHeader> response_headers;
    RenderedHead rendered;
    bool head_sent = false;
    bool finished = false;
    std::uint64_t remaining = 0;  // content_length framing: bytes still allowed
    std::deque<SinkEvent> events;
    std::vector<asio::const_buffer> buffers;
    std::deque<std::string> chunk_lines;  // chunk-size lines, alive until written (a deque never moves them)
    static const std::string crlf = "\r\n";
    static const std::string last_chunk = "0\r\n\r\n";
    std::string error_bytes;
    bool truncated = false;
    bool streaming_hooks = false;  // the chain's on_chunk hooks see a streamed body
    std::string stream_tail;       // what the chain's on_stream_end hooks send last (a compressor's end)
    std::string file_piece;        // a file body read in pieces when the chain rewrites the stream

    // Queues body bytes with the response's framing; they must stay alive until written.
    auto queue_body = [&](std::string_view bytes) {
        switch (rendered.framing) {
        case BodyFraming::none:
            bytes = {};
            break;
        case BodyFraming::content_length:
            if (bytes.size() > remaining) {
                bytes = bytes.substr(0, remaining);
                truncated = true;
            }
            remaining -= bytes.size();
            break;
        case BodyFraming::chunked:
            if (!bytes.empty()) {
                char line[24];
                int n = std::snprintf(line, sizeof(line), "%zx\r\n", bytes.size());
                chunk_lines.emplace_back(line, static_cast<std::size_t>(n));
            }
            break;
        case BodyFraming::until_close:
            break;
        }
        if (!bytes.empty()) {
            if (rendered.framing == BodyFraming::chunked) buffers.push_back(asio::buffer(chunk_lines.back()));
            buffers.push_back(asio::buffer(bytes.data(), bytes.size()));
            if (rendered.framing == BodyFraming::chunked) buffers.push_back(asio::buffer(crlf));
            body_bytes += bytes.size();
        }
    };

    while (!finished && !closed_) {
        sink_->take(events);
        if (events.empty()) {
            error_code ec;  // operation_aborted is the wake-up from on_sink_ready()
            co_await wake_.async_wait(use_ec(ec));
            continue;
        }
        std::size_t data_bytes = 0;
        chunk_lines.clear();
        for (std::size_t i = 0; i < events.size() && !closed_; ++i) {
            SinkEvent& e = events[i];
            if (e.kind == SinkEvent::Kind::head && e.head.status < 200) {
                // An interim (1xx) status as the final answer would leave the client waiting for
                // another: the app is broken, answer 500.
                spdlog::error("{} {}: the app answered with interim status {}; sending 500",
                              logged ? logged->method : "", logged ? logged->target : "", e.head.status);
                e.kind = SinkEvent::Kind::fail;
            }
            switch (e.kind) {
            case SinkEvent::Kind::head: {
                facts.must_close = draining_;
                // send_whole queues head, data and end together: the body is known whole.
                bool is_whole = i + 2 < events.size() && events[i + 1].kind == SinkEvent::Kind::data &&
                                events[i + 2].kind == SinkEvent::Kind::end && !events[i + 1].shared;
                if (pipeline) {
                    sink_->app_times().fill(ctx.mutable_timings(), queued_at);
                    pipeline->run_response(ctx, e.head, is_whole ? &events[i + 1].data : nullptr, entered);
                    streaming_hooks = !is_whole;
                }
                status = e.head.status;
                std::optional<std::uint64_t> whole;
                if (is_whole) whole = events[i + 1].data.size();
                rendered = render_head(e.head, facts, whole);
                remaining = rendered.content_length;
                response_headers = std::move(e.head.headers);
                buffers.push_back(asio::buffer(rendered.bytes));
                head_sent = true;
                break;
            }
            case SinkEvent::Kind::data: {
                data_bytes += e.data.size();
                if (streaming_hooks && !e.data.empty()) pipeline->run_chunk(ctx, e.data, entered);
                // A middleware's shared bytes skip the chunk hooks: only middlewares above the one
                // that answered see them, and they never rewrite its body (see docs/static.md).
                queue_body(e.shared ? std::string_view(*e.shared).substr(static_cast<std::size_t>(e.offset), e.count)
                                    : std::string_view(e.data));
                break;
            }
            case SinkEvent::Kind::file: {
                data_bytes += std::min(e.count, shared_.settings.stream_buffer_bytes);
                // The head and the file's first bytes leave in full segments (nginx's tcp_nopush):
                // corked until the file is sent, so the client is not woken for the head alone.
                const bool cork = listener_.family != AF_UNIX && e.count > 0 && rendered.framing != BodyFraming::none;
                if (cork) set_cork(true);
                if (!co_await write_all(buffers)) break;
                if (streaming_hooks && ctx.stream_rewritten()) {
                    // A middleware rewrites this stream (compression): the file's bytes must go
                    // through its chunk hooks, never raw with sendfile. Read in bounded pieces.
                    off_t offset = e.offset;
                    std::uint64_t left = rendered.framing == BodyFraming::none ? 0 : e.count;
                    while (left > 0 && !closed_) {
                        file_piece.resize(std::min<std::uint64_t>(left, 64 * 1024));
                        ssize_t n = ::pread(e.fd, file_piece.data(), file_piece.size(), offset);
                        if (n < 0 && errno == EINTR) continue;
                        if (n <= 0) break;  // the file is shorter than promised (or unreadable)
                        file_piece.resize(static_cast<std::size_t>(n));
                        offset += n;
                        left -= static_cast<std::uint64_t>(n);
                        pipeline->run_chunk(ctx, file_piece, entered);
                        queue_body(file_piece);
                        if (!co_await write_all(buffers)) break;
                    }
                    ::close(std::exchange(e.fd, -1));
                    if (left > 0 && !closed_) {
                        truncated = true;
                        close();
                    }
                    break;
                }
                std::uint64_t count = e.count;
                if (rendered.framing == BodyFraming::none) count = 0;
                if (rendered.framing == BodyFraming::content_length) {
                    if (count > remaining) {
                        count = remaining;
                        truncated = true;
                    }
                    remaining -= count;
                }
                std::string line;
                if (rendered.framing == BodyFraming::chunked && count > 0) {
                    char text[24];
                    int n = std::snprintf(text, sizeof(text), "%llx\r\n", static_cast<unsigned long long>(count));
                    line.assign(text, static_cast<std::size_t>(n));
                    buffers.push_back(asio::buffer(line));
                    if (!co_await write_all(buffers)) break;
                }
                off_t offset = e.offset;
                std::uint64_t left = count;
                std::uint64_t since_yield = 0;
                if (!socket_.native_non_blocking()) socket_.native_non_blocking(true);  // once per connection
                arm(Clock::now() + settings.io_timeout);
                while (left > 0 && !closed_) {
                    ssize_t n = ::sendfile(socket_.native_handle(), e.fd, &offset, std::min<std::uint64_t>(left, 1 << 20));
                    if (n > 0) {
                        left -= static_cast<std::uint64_t>(n);
                        body_bytes += static_cast<std::uint64_t>(n);
                        since_yield += static_cast<std::uint64_t>(n);
                        arm(Clock::now() + settings.io_timeout);
                        if (since_yield >= (8u << 20)) {
                            // A fast client must not starve the other connections of this thread.
                            since_yield = 0;
                            co_await asio::post(io_.context.get_executor(), asio::use_awaitable);
                        }
                        continue;
                    }
                    if (n == 0) break;  // the file is shorter than promised
                    if (errno == EAGAIN || errno == EINTR) {
                        error_code ec;
                        co_await socket_.async_wait(asio::socket_base::wait_write, use_ec(ec));
                        if (ec) {
                            close();
                            break;
                        }
                        continue;
                    }
                    close();
                    break;
                }
                ::close(std::exchange(e.fd, -1));
                if (left > 0) {
                    truncated = true;
                    close();
                }
                if (cork && !closed_) set_cork(false);
                if (rendered.framing == BodyFraming::chunked && count > 0) buffers.push_back(asio::buffer(crlf));
                break;
            }
            case SinkEvent::Kind::end:
                if (streaming_hooks) {
                    // The chain's last bytes (a compressor's end of stream) before the end.
                    pipeline->run_stream_end(ctx, stream_tail, entered);
                    queue_body(stream_tail);
                }
                if (rendered.framing == BodyFraming::chunked) buffers.push_back(asio::buffer(last_chunk));
                if (rendered.framing == BodyFraming::content_length && remaining > 0) truncated = true;
                finished = true;
                break;
            case SinkEvent::Kind::fail:
                finished = true;
                if (!head_sent) {
                    status = e.head.status == 504 ? 504 : 500;  // 504: the app outlived --timeout
                    error_bytes = render_error_response(status, reason_phrase(status), facts.keep_alive && !draining_,
                                                        !facts.is_head);
                    buffers.push_back(asio::buffer(error_bytes));
                    rendered.keep_alive = facts.keep_alive && !draining_;
                    body_bytes = 0;
                } else {
                    truncated = true;  // the head is out: only a close can tell the client
                }
                break;
            }
        }
        if (!closed_) co_await write_all(buffers);
        sink_->written(data_bytes);
        for (auto& e : events)  // files not sent because the connection failed mid-batch
            if (e.kind == SinkEvent::Kind::file && e.fd >= 0) ::close(std::exchange(e.fd, -1));
        events.clear();
    }
    disarm();
    keep_alive_ = rendered.keep_alive && !truncated && !closed_;
    if (truncated) spdlog::warn("{} {}: response cut short (fewer or more body bytes than its Content-Length, or the app failed mid-stream); connection closed", logged ? logged->method : "", logged ? logged->target : "");
    FinishedExchange exchange;
    if (sink_) {
        exchange.app = sink_->app_times();
        if (!finished) sink_->mark_gone();
        sink_.reset();
    }
    exchange.request = logged ? &*logged : nullptr;
    exchange.response_headers = &response_headers;
    exchange.status = status;
    exchange.body_bytes = body_bytes;
    exchange.queued_at = queued_at;
    exchange.started = started;
    exchange.finished = Clock::now();
    exchange.wall_started = wall_start;
    report_.report(exchange, ctx.mutable_timings());
}

class HttpServer::Impl {
public:
    Impl(HttpServerSettings settings, const std::vector<ListenSocket>& sockets, AppDispatcher& dispatcher) {
        shared_.settings = std::move(settings);
        shared_.health = HealthEndpoint(shared_.settings.health_path);
        shared_.dispatcher = &dispatcher;
        for (const auto& s : sockets) {
            ListenerInfo info;
            info.fd = s.fd;
            info.family = s.family;
            info.metrics = s.metrics;
            if (s.family == AF_UNIX) {
                info.server_name = s.address.path;
                info.server_port = 0;
            } else {
                info.server_name = s.address.host.empty() ? "0.0.0.0" : s.address.host;
                info.server_port = s.address.port;
            }
            listeners_.push_back(std::move(info));
        }
        int n = std::max(1, shared_.settings.io_threads);
        for (int i = 0; i < n; ++i) threads_.push_back(std::make_unique<IoThread>());
    }

    void start() {
        for (auto& io : threads_) {
            for (const auto& l : listeners_) {
                int fd = ::dup(l.fd);  // each acceptor owns its descriptor; the listen socket is shared
                auto acceptor = std::make_unique<Acceptor>(io->context);
                acceptor->assign(Protocol(l.family, 0), fd);
                asio::co_spawn(io->context, accept_loop(*io, *acceptor, l), asio::detached);
                io->acceptors.push_back(std::move(acceptor));
            }
            io->thread = std::thread([ctx = &io->context] {
                auto guard = asio::make_work_guard(*ctx);
                ctx->run();
            });
        }
    }

    void drain() {
        shared_.draining.store(true, std::memory_order_relaxed);
        stop_accepting_then(&Session::drain);
    }

    void stop() {
        stop_accepting_then(&Session::close);
        // Let the closed sessions' coroutines see their cancelled operations and end (so their
        // sinks are marked gone and they unregister), then stop each thread.
        for (auto& io : threads_) {
            auto deadline = Clock::now() + std::chrono::seconds(2);
            while (io->thread.joinable() && Clock::now() < deadline) {
                auto empty = std::make_shared<std::promise<bool>>();  // outlives a late answer
                auto answer = empty->get_future();
                asio::post(io->context, [empty, io = io.get()] { empty->set_value(io->sessions.empty()); });
                if (answer.wait_for(std::chrono::milliseconds(500)) == std::future_status::ready && answer.get())
                    break;
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            io->context.stop();
        }
        for (auto& io : threads_)
            if (io->thread.joinable()) io->thread.join();
    }

    std::size_t open_connections() const { return shared_.connections.load(); }
    // Sessions, plus accept loops that may still make one (a drain closes the acceptors; a loop
    // ends once it sees that, after making a session of an accept that had already completed).
    std::size_t busy() const { return shared_.connections.load() + shared_.accept_loops.load(); }

private:
    // On each I/O thread: close the acceptors, then apply `action` to every session.
    void stop_accepting_then(void (Session::*action)()) {
        for (auto& io : threads_) {
            asio::post(io->context, [io = io.get(), action] {
                for (auto& a : io->acceptors) {
                    error_code ignored;  // already closed
                    a->close(ignored);
                }
                std::vector<Session*> sessions(io->sessions.begin(), io->sessions.end());
                for (Session* s : sessions) (s->*action)();
            });
        }
    }

    asio::awaitable<void> accept_loop(IoThread& io, Acceptor& acceptor, const ListenerInfo& listener) {
        shared_.accept_loops.fetch_add(1);
        struct Running {
            std::atomic<std::size_t>& loops;
            ~Running() { loops.fetch_sub(1); }
        } running{shared_.accept_loops};
        for (;;) {
            error_code ec;
            Socket socket(io.context);
            co_await acceptor.async_accept(socket, use_ec(ec));
            if (ec) {
                if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
                if (ec == asio::error::connection_aborted) continue;  // the client gave up first
                // Out of descriptors or memory: pause rather than spin on the same error.
                spdlog::error("accept: {} (pausing 100 ms)", ec.message());
                asio::steady_timer pause(io.context, std::chrono::milliseconds(100));
                co_await pause.async_wait(use_ec(ec));
                continue;
            }
            if (listener.family != AF_UNIX) {
                int one = 1;  // responses are written whole: Nagle only adds latency
                ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            }
            auto session = std::make_shared<Session>(std::move(socket), io, shared_, listener);
            // An accept that completed as the drain closed the acceptor: this connection is served
            // once, with Connection: close, like the others.
            if (shared_.draining.load(std::memory_order_relaxed)) session->drain();
            asio::co_spawn(io.context, Session::run(std::move(session)), log_session_exception);
        }
    }

    ServerShared shared_;
    std::vector<ListenerInfo> listeners_;
    std::vector<std::unique_ptr<IoThread>> threads_;
};

HttpServer::HttpServer(HttpServerSettings settings, const std::vector<ListenSocket>& sockets, AppDispatcher& dispatcher)
    : impl_(std::make_unique<Impl>(std::move(settings), sockets, dispatcher)) {}
HttpServer::~HttpServer() = default;
void HttpServer::start() { impl_->start(); }
void HttpServer::drain() { impl_->drain(); }
void HttpServer::stop() { impl_->stop(); }
std::size_t HttpServer::open_connections() const { return impl_->open_connections(); }

bool HttpServer::wait_idle(std::chrono::steady_clock::time_point deadline) {
    while (impl_->busy() > 0) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

}  // namespace gantry
