// The worker's I/O threads and acceptors (an Asio translation unit: see session.hpp).
#include "server/http_server.hpp"

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>
#include <optional>
#include <unordered_set>

#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "server/session.hpp"

namespace gantry {

using boost::system::error_code;
using Acceptor = asio::basic_socket_acceptor<Protocol>;
using Clock = std::chrono::steady_clock;

namespace {

// stop() gives each thread this long for its closed sessions to see their cancelled operations
// and end (their sinks marked gone) before it stops the thread anyway...
constexpr auto kStopWait = std::chrono::seconds(2);
// ...asking it whether its sessions are gone, an answer it may take this long to give (a thread
// busy with one long callback)...
constexpr auto kStopAnswerWait = std::chrono::milliseconds(500);
// ...and asking again after this pause.
constexpr auto kStopRetry = std::chrono::milliseconds(10);
// After an accept error (out of descriptors or memory), the loop pauses this long rather than
// spin on the same error; connections wait in the backlog meanwhile.
constexpr auto kAcceptPause = std::chrono::milliseconds(100);
// While another worker is less loaded, an accept loop looks at the load board again this often...
constexpr auto kAcceptTurnPoll = std::chrono::milliseconds(1);
// ...and accepts anyway once a connection has waited in the backlog this long: the less loaded
// worker would have taken it within microseconds, so it is stuck (a long callback, a stop).
constexpr auto kAcceptTurnGrace = std::chrono::milliseconds(20);
// At --worker-connections, how often an accept loop looks whether a connection closed.
constexpr auto kRoomPoll = std::chrono::milliseconds(5);

// Whether a connection waits in the listening socket's backlog.
bool connection_pending(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

// wait_idle looks again this often: a drain takes at least a linger, so finer is no faster.
constexpr auto kIdlePoll = std::chrono::milliseconds(20);

inline auto use_ec(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// A session that throws loses its connection, never the worker.
void log_session_exception(std::exception_ptr error) {
    if (!error) return;
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        spdlog::error("connection dropped: {}", e.what());
    }
}

}  // namespace

// One Asio I/O thread: its own io_context (a connection lives on one thread: no strands needed).
struct IoThread {
    // Declared first, destroyed last: sessions still alive when the context is destroyed (their
    // coroutine frames die with it) unregister themselves from this set.
    std::unordered_set<Session*> sessions;  // touched only on this thread
    asio::io_context context{1};
    std::vector<std::unique_ptr<Acceptor>> acceptors;
    std::thread thread;
};


class HttpServer::Impl {
public:
    Impl(HttpServerSettings settings, const std::vector<ListenSocket>& sockets, AppDispatcher& dispatcher) {
        shared_.settings = std::move(settings);
        shared_.health = HealthEndpoint(shared_.settings.health_path);
        shared_.dispatcher = &dispatcher;
        shared_.board = shared_.settings.board;
        shared_.load = shared_.board ? shared_.board->slot(shared_.settings.board_slot) : nullptr;
        if (!shared_.load) shared_.board = nullptr;  // a slot beyond the board: not balanced
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
        if (shared_.load) {
            shared_.load->pid.store(::getpid(), std::memory_order_relaxed);
            shared_.load->accepting.store(1, std::memory_order_relaxed);
        }
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
        if (shared_.load) shared_.load->accepting.store(0, std::memory_order_relaxed);
        stop_accepting_then(&Session::drain);
    }

    void stop() {
        if (shared_.load) shared_.load->accepting.store(0, std::memory_order_relaxed);
        stop_accepting_then(&Session::close);
        // Let the closed sessions' coroutines see their cancelled operations and end (so their
        // sinks are marked gone and they unregister), then stop each thread.
        for (auto& io : threads_) {
            auto deadline = Clock::now() + kStopWait;
            while (io->thread.joinable() && Clock::now() < deadline) {
                auto empty = std::make_shared<std::promise<bool>>();  // outlives a late answer
                auto answer = empty->get_future();
                asio::post(io->context, [empty, io = io.get()] { empty->set_value(io->sessions.empty()); });
                if (answer.wait_for(kStopAnswerWait) == std::future_status::ready && answer.get())
                    break;
                std::this_thread::sleep_for(kStopRetry);
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
        const bool balanced = shared_.board && !listener.metrics;
        if (balanced) acceptor.non_blocking(true);
        for (;;) {
            error_code ec;
            Socket socket(io.context);
            if (!listener.metrics && !co_await wait_for_room(io, acceptor)) co_return;
            if (balanced) {
                // Decide, then take: a worker waiting inside accept() would take the next
                // connection whatever the board says. So: the board first, then a non-blocking
                // accept, and with nothing pending, wait for the socket to become readable and
                // ask the board again.
                if (!co_await wait_for_turn(io, acceptor)) co_return;
                acceptor.accept(socket, ec);
                if (ec == asio::error::would_block || ec == asio::error::try_again) {
                    co_await acceptor.async_wait(Acceptor::wait_read, use_ec(ec));
                    if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
                    continue;
                }
            } else {
                co_await acceptor.async_accept(socket, use_ec(ec));
            }
            if (ec) {
                if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
                if (ec == asio::error::connection_aborted) continue;  // the client gave up first
                // Out of descriptors or memory: pause rather than spin on the same error.
                spdlog::error("accept: {} (pausing {} ms)", ec.message(), kAcceptPause.count());
                asio::steady_timer pause(io.context, kAcceptPause);
                co_await pause.async_wait(use_ec(ec));
                continue;
            }
            if (listener.family != AF_UNIX) {
                int one = 1;  // responses are written whole: Nagle only adds latency
                ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            }
            auto session = std::make_shared<Session>(std::move(socket), io.context, io.sessions, shared_, listener);
            // An accept that completed as the drain closed the acceptor: this connection is served
            // once, with Connection: close, like the others.
            if (shared_.draining.load(std::memory_order_relaxed)) session->drain();
            asio::co_spawn(io.context, Session::run(std::move(session)), log_session_exception);
        }
    }

    // Below --worker-connections, or until a connection closes: at the cap a new connection
    // waits in the kernel's listen backlog rather than run the worker out of descriptors. While
    // one waits, idle keep-alive connections are closed, one per poll, so that a house full of
    // idle clients does not lock new ones out. False once the acceptor closed.
    asio::awaitable<bool> wait_for_room(IoThread& io, Acceptor& acceptor) {
        const std::size_t cap = shared_.settings.worker_connections;
        if (!cap || shared_.connections.load(std::memory_order_relaxed) < cap) co_return true;
        if (!shared_.cap_reached_logged.exchange(true))
            spdlog::warn("--worker-connections {} reached: new connections wait for one to close (logged once)", cap);
        asio::steady_timer poll_timer(io.context);
        while (shared_.connections.load(std::memory_order_relaxed) >= cap) {
            if (connection_pending(acceptor.native_handle())) reclaim_one_idle_session();
            error_code ec;
            poll_timer.expires_after(kRoomPoll);
            co_await poll_timer.async_wait(use_ec(ec));
            if (!acceptor.is_open()) co_return false;
        }
        co_return true;
    }

    // Asks each I/O thread to close one of its idle keep-alive connections.
    void reclaim_one_idle_session() {
        for (auto& io : threads_) {
            asio::post(io->context, [io = io.get()] {
                for (Session* s : io->sessions)
                    if (s->reclaim_if_idle()) return;
            });
        }
    }

    // Until this worker may accept (the load board: no other worker is less loaded), or a
    // connection has waited kAcceptTurnGrace for the less loaded one. False once the acceptor
    // closed (a drain or stop).
    asio::awaitable<bool> wait_for_turn(IoThread& io, Acceptor& acceptor) {
        std::optional<Clock::time_point> pending_since;
        asio::steady_timer poll_timer(io.context);
        while (!shared_.board->may_accept(shared_.settings.board_slot)) {
            error_code ec;
            poll_timer.expires_after(kAcceptTurnPoll);
            co_await poll_timer.async_wait(use_ec(ec));
            if (!acceptor.is_open()) co_return false;
            if (!connection_pending(acceptor.native_handle())) {
                pending_since.reset();
            } else if (!pending_since) {
                pending_since = Clock::now();
            } else if (Clock::now() - *pending_since >= kAcceptTurnGrace) {
                break;
            }
        }
        co_return acceptor.is_open();
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
        std::this_thread::sleep_for(kIdlePoll);
    }
    return true;
}

}  // namespace gantry
