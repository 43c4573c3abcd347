// ws_load: a WebSocket load generator on Beast's websocket client, for bench/e2e/ws_compare.py.
//
//   ws_load echo      --port P [--path /echo] [--clients 32] [--size 64] [--seconds 10] [--warmup 2]
//   ws_load broadcast --port P [--path /broadcast] [--receivers 1000] [--seconds 10 | --messages M] [--window 1]
//   ws_load idle      --port P [--path /echo] [--connections 2000] [--deflate] [--exchange] [--hold-seconds 0]
//
// One thread, one io_context, C++20 coroutines: a Python client would be the bottleneck, and on a
// two-core machine every cycle the client spends is one the server under test does not get, so the
// client's own CPU time over the measured window is reported too. Each mode prints one JSON object
// on its last line of stdout; echo and broadcast print "window begin" and "window end" lines as the
// measured window opens and closes; idle prints "ready {...}" once every connection is open, then
// holds them until stdin closes (or for --hold-seconds) or SIGINT/SIGTERM.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include <CLI/CLI.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <csignal>
#include <deque>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
// A plain socket, not beast::tcp_stream: no per-operation timers to pay for; the phases are
// bounded with io_context::run_for instead.
using Socket = websocket::stream<tcp::socket>;

namespace {

struct Target {
    std::string host = "127.0.0.1";
    std::string port;
    std::string path;
    bool deflate = false;  // offer permessage-deflate
    int connect_concurrency = 64;
};

double seconds_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

double cpu_seconds_now() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
    return s(ru.ru_utime) + s(ru.ru_stime);
}

// Thousands of sockets: the soft fd limit is often 1024.
void raise_fd_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

// Letters, not one repeated byte, so that a negotiated deflate has something to do.
std::string make_payload(std::size_t size) {
    std::string s(size, 'a');
    std::uint32_t x = 2463534242u;
    for (auto& c : s) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        c = static_cast<char>('a' + x % 26);
    }
    return s;
}

// Latency samples in nanoseconds; percentiles in microseconds.
class Latencies {
public:
    void add(Clock::duration d) { ns_.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()); }
    void merge(const Latencies& o) { ns_.insert(ns_.end(), o.ns_.begin(), o.ns_.end()); }
    std::size_t size() const { return ns_.size(); }
    std::string json() {
        std::ostringstream o;
        o << "{\"p50\": " << percentile(0.50) << ", \"p90\": " << percentile(0.90) << ", \"p99\": "
          << percentile(0.99) << ", \"max\": " << percentile(1.0) << "}";
        return o.str();
    }

private:
    double percentile(double q) {
        if (ns_.empty()) return 0;
        auto k = static_cast<std::size_t>(q * static_cast<double>(ns_.size() - 1) + 0.5);
        std::nth_element(ns_.begin(), ns_.begin() + static_cast<std::ptrdiff_t>(k), ns_.end());
        return static_cast<double>(ns_[k]) / 1000.0;
    }
    std::vector<std::int64_t> ns_;
};

// Opens n connections to one path, at most connect_concurrency handshakes at a time (a burst of
// thousands of SYNs overflows a small listen backlog, and the retransmits would be measured as
// handshake time). Run the io_context until it returns: then every slot is either open or null.
class Connector {
public:
    Connector(net::io_context& io, const Target& t, int n) : io_(io), target_(t), sockets_(n) {
        tcp::resolver resolver(io);
        endpoints_ = resolver.resolve(t.host, t.port);
    }

    void start() {
        int lanes = std::min<int>(target_.connect_concurrency, static_cast<int>(sockets_.size()));
        for (int i = 0; i < lanes; ++i) net::co_spawn(io_, lane(), net::detached);
    }

    std::vector<std::unique_ptr<Socket>>& sockets() { return sockets_; }
    int failed() const { return failed_; }
    int deflate_negotiated() const { return deflate_negotiated_; }
    const std::string& first_error() const { return first_error_; }
    const std::string& negotiated() const { return negotiated_; }  // the first deflate answer

private:
    net::awaitable<void> lane() {
        while (next_ < sockets_.size()) {
            std::size_t i = next_++;
            try {
                auto ws = std::make_unique<Socket>(io_);
                co_await net::async_connect(ws->next_layer(), endpoints_, net::use_awaitable);
                ws->next_layer().set_option(tcp::no_delay(true));
                websocket::permessage_deflate pmd;
                pmd.client_enable = target_.deflate;
                ws->set_option(pmd);
                ws->auto_fragment(false);  // one frame per message, as browsers send them
                websocket::response_type res;
                co_await ws->async_handshake(res, target_.host + ":" + target_.port, target_.path,
                                             net::use_awaitable);
                auto extensions = res[beast::http::field::sec_websocket_extensions];
                if (extensions.find("permessage-deflate") != std::string_view::npos && ++deflate_negotiated_ == 1)
                    negotiated_ = std::string(extensions);
                sockets_[i] = std::move(ws);
            } catch (const std::exception& e) {
                if (failed_++ == 0) first_error_ = e.what();
            }
        }
    }

    net::io_context& io_;
    const Target& target_;
    tcp::resolver::results_type endpoints_;
    std::vector<std::unique_ptr<Socket>> sockets_;
    std::size_t next_ = 0;
    int failed_ = 0;
    int deflate_negotiated_ = 0;
    std::string first_error_;
    std::string negotiated_;
};

// A polite close on a socket with no read pending; the phase's run_for bounds how long it waits.
net::awaitable<void> close_quietly(Socket& ws) {
    boost::system::error_code ec;
    co_await ws.async_close(websocket::close_code::normal, net::redirect_error(net::use_awaitable, ec));
    // The peer's close frame arrives through a read; drain until the stream reports it closed.
    beast::flat_buffer buf;
    while (!ec) {
        buf.clear();
        co_await ws.async_read(buf, net::redirect_error(net::use_awaitable, ec));
    }
}

// Marks the measured window on stdout, so that a script can read the server's CPU time at both
// ends, the moment they happen.
void mark(const char* line) {
    std::printf("%s\n", line);
    std::fflush(stdout);
}

// Measures the client's own CPU from the start to the end of the measured window.
class CpuWindow {
public:
    CpuWindow(net::io_context& io) : timer_(io) {}
    net::awaitable<void> run(Clock::time_point begin, Clock::time_point end) {
        timer_.expires_at(begin);
        co_await timer_.async_wait(net::use_awaitable);
        at_begin_ = cpu_seconds_now();
        mark("window begin");
        timer_.expires_at(end);
        co_await timer_.async_wait(net::use_awaitable);
        seconds_ = cpu_seconds_now() - at_begin_;
        mark("window end");
    }
    double seconds() const { return seconds_; }

private:
    net::steady_timer timer_;
    double at_begin_ = 0;
    double seconds_ = 0;
};

std::string connect_json(const Connector& c, int wanted) {
    std::ostringstream o;
    o << "\"connected\": " << wanted - c.failed() << ", \"connect_failed\": " << c.failed()
      << ", \"deflate_negotiated\": " << c.deflate_negotiated();
    if (!c.negotiated().empty()) o << ", \"extensions\": \"" << c.negotiated() << "\"";
    if (!c.first_error().empty()) o << ", \"connect_error\": \"" << c.first_error() << "\"";
    return o.str();
}

// ---- echo: each client sends a message, waits for its echo, repeats ----------------------------

struct EchoClientStats {
    Latencies latencies;  // of the round trips sent inside the window
    int errors = 0;       // the connection failed before the window closed
    int mismatches = 0;   // an echo that is not what was sent
};

net::awaitable<void> echo_client(Socket& ws, const std::string& payload, bool binary, Clock::time_point begin,
                                 Clock::time_point end, EchoClientStats& st) {
    ws.text(!binary);
    beast::flat_buffer buf;
    try {
        for (;;) {
            auto t0 = Clock::now();
            if (t0 >= end) break;
            co_await ws.async_write(net::buffer(payload), net::use_awaitable);
            buf.clear();
            co_await ws.async_read(buf, net::use_awaitable);
            auto t1 = Clock::now();
            if (buf.size() != payload.size() ||
                std::memcmp(static_cast<const char*>(buf.cdata().data()), payload.data(), payload.size()) != 0)
                ++st.mismatches;
            if (t0 >= begin) st.latencies.add(t1 - t0);
        }
    } catch (const std::exception&) {
        ++st.errors;
        co_return;
    }
    co_await close_quietly(ws);
}

int run_echo(const Target& t, int clients, std::size_t size, bool binary, double warmup, double seconds) {
    net::io_context io(1);
    Connector conn(io, t, clients);
    conn.start();
    io.run_for(std::chrono::seconds(60));

    std::string payload = make_payload(size);
    std::vector<EchoClientStats> stats(clients);
    auto begin = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
    auto end = begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    CpuWindow cpu(io);
    io.restart();
    net::co_spawn(io, cpu.run(begin, end), net::detached);
    for (int i = 0; i < clients; ++i)
        if (auto& ws = conn.sockets()[i]) net::co_spawn(io, echo_client(*ws, payload, binary, begin, end, stats[i]), net::detached);
    io.run_for(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup + seconds + 10)));

    Latencies all;
    int errors = 0, mismatches = 0;
    for (auto& s : stats) all.merge(s.latencies), errors += s.errors, mismatches += s.mismatches;
    std::ostringstream o;
    o << "{\"mode\": \"echo\", \"clients\": " << clients << ", " << connect_json(conn, clients)
      << ", \"size\": " << size << ", \"binary\": " << (binary ? "true" : "false") << ", \"seconds\": " << seconds
      << ", \"messages\": " << all.size() << ", \"messages_per_s\": " << static_cast<double>(all.size()) / seconds
      << ", \"latency_us\": " << all.json() << ", \"errors\": " << errors << ", \"mismatches\": " << mismatches
      << ", \"client_cpu_s\": " << cpu.seconds() << "}";
    std::printf("%s\n", o.str().c_str());
    return conn.failed() == 0 && errors == 0 && mismatches == 0 ? 0 : 1;
}

// ---- broadcast: one sender, the app fans each message out to every connection ---------------

// One message the sender sent, and how far its fan-out got.
struct Broadcast {
    Clock::time_point sent;
    Clock::time_point last_arrival;
    int arrivals = 0;
    bool measured = false;  // sent after the warm-up
    bool settled = false;   // reached every receiver, or given up on
};

class BroadcastRun {
public:
    BroadcastRun(net::io_context& io, int receivers, std::size_t size, int window, double timeout)
        : wake_(io), receivers_(receivers), size_(size), window_(window),
          timeout_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout))) {}

    // Every receiver reads until the run ends; each message names its broadcast by a number prefix.
    net::awaitable<void> receive(Socket& ws) {
        beast::flat_buffer buf;
        try {
            for (;;) {
                buf.clear();
                co_await ws.async_read(buf, net::use_awaitable);
                auto now = Clock::now();
                auto seq = parse_seq(buf);
                if (seq >= sent_.size()) {
                    ++unknown_;
                    continue;
                }
                auto& b = sent_[seq];
                ++b.arrivals;
                b.last_arrival = now;
                if (b.measured) ++measured_arrivals_, last_measured_arrival_ = now;
                if (b.arrivals == receivers_ && !b.settled) settle(b, true);
            }
        } catch (const std::exception&) {
            if (!stopping_) ++receiver_errors_;
        }
    }

    // The sender is a connection too, so it gets its own messages back: drain them.
    net::awaitable<void> drain(Socket& ws) {
        beast::flat_buffer buf;
        boost::system::error_code ec;
        while (!ec) {
            buf.clear();
            co_await ws.async_read(buf, net::redirect_error(net::use_awaitable, ec));
        }
    }

    // Sends while fewer than `window` broadcasts are on their way; measured ones after `begin`,
    // until `end` or `max_measured` of them.
    net::awaitable<void> send(Socket& ws, Clock::time_point begin, Clock::time_point end, long max_measured) {
        ws.text(true);
        std::string msg = make_payload(std::max<std::size_t>(size_, 24));
        try {
            for (;;) {
                auto now = Clock::now();
                if (now >= end || (max_measured > 0 && measured_sent_ >= max_measured)) break;
                co_await wait_for_room(window_);
                now = Clock::now();
                std::size_t seq = sent_.size();
                std::snprintf(msg.data(), 21, "%020zu", seq);
                msg[20] = ':';
                Broadcast b;
                b.sent = now;
                b.measured = now >= begin;
                if (b.measured && measured_sent_++ == 0) first_measured_send_ = now;
                sent_.push_back(b);
                open_.push_back(seq);
                ++in_flight_;
                co_await ws.async_write(net::buffer(msg), net::use_awaitable);
            }
            co_await wait_for_room(1);  // every broadcast settled
        } catch (const std::exception&) {
            ++sender_errors_;
        }
    }

    void stop() { stopping_ = true; }

    std::string json() {
        double duration = measured_arrivals_ ? seconds_between(first_measured_send_, last_measured_arrival_) : 0;
        std::ostringstream o;
        o << "\"broadcasts\": " << measured_sent_ << ", \"deliveries\": " << measured_arrivals_
          << ", \"seconds\": " << duration << ", \"deliveries_per_s\": " << (duration > 0 ? measured_arrivals_ / duration : 0)
          << ", \"broadcasts_per_s\": " << (duration > 0 ? latencies_.size() / duration : 0)
          << ", \"reach_all_us\": " << latencies_.json() << ", \"incomplete\": " << incomplete_
          << ", \"warmup_broadcasts\": " << sent_.size() - measured_sent_
          << ", \"warmup_incomplete\": " << warmup_incomplete_ << ", \"unknown_messages\": " << unknown_
          << ", \"receiver_errors\": " << receiver_errors_ << ", \"sender_errors\": " << sender_errors_;
        return o.str();
    }
    bool clean() const { return incomplete_ == 0 && receiver_errors_ == 0 && sender_errors_ == 0 && unknown_ == 0; }

private:
    static std::size_t parse_seq(const beast::flat_buffer& buf) {
        auto p = static_cast<const char*>(buf.cdata().data());
        std::size_t n = buf.size(), seq = 0, i = 0;
        for (; i < n && i < 20 && p[i] >= '0' && p[i] <= '9'; ++i) seq = seq * 10 + static_cast<std::size_t>(p[i] - '0');
        return i == 20 ? seq : static_cast<std::size_t>(-1);
    }

    void settle(Broadcast& b, bool reached_all) {
        b.settled = true;
        --in_flight_;
        if (!reached_all)
            ++(b.measured ? incomplete_ : warmup_incomplete_);
        else if (b.measured)
            latencies_.add(b.last_arrival - b.sent);
        wake_.cancel();
    }

    // Waits until fewer than `room` broadcasts are unsettled; one that has not reached everyone
    // within the timeout is given up on (a receiver that never joined the app's set, a lost message).
    net::awaitable<void> wait_for_room(int room) {
        while (in_flight_ >= room) {
            while (!open_.empty() && sent_[open_.front()].settled) open_.pop_front();
            auto deadline = sent_[open_.front()].sent + timeout_;
            if (Clock::now() >= deadline) {
                settle(sent_[open_.front()], false);
                continue;
            }
            wake_.expires_at(deadline);
            boost::system::error_code ec;  // cancelled: a broadcast settled
            co_await wake_.async_wait(net::redirect_error(net::use_awaitable, ec));
        }
    }

    net::steady_timer wake_;
    int receivers_;
    std::size_t size_;
    int window_;
    Clock::duration timeout_;
    std::vector<Broadcast> sent_;
    std::deque<std::size_t> open_;  // sequence numbers not known to be settled, oldest first
    int in_flight_ = 0;
    long measured_sent_ = 0;
    long measured_arrivals_ = 0;
    Clock::time_point first_measured_send_, last_measured_arrival_;
    Latencies latencies_;
    long incomplete_ = 0, warmup_incomplete_ = 0, unknown_ = 0, receiver_errors_ = 0, sender_errors_ = 0;
    bool stopping_ = false;
};

int run_broadcast(const Target& t, int receivers, std::size_t size, int window, double warmup, double seconds,
                  long messages, double timeout) {
    net::io_context io(1);
    Connector conn(io, t, receivers + 1);  // the last one sends
    conn.start();
    io.run_for(std::chrono::seconds(120));
    auto& sockets = conn.sockets();
    if (!sockets.back()) {
        std::printf("{\"mode\": \"broadcast\", \"error\": \"the sender could not connect\", %s}\n",
                    connect_json(conn, receivers + 1).c_str());
        return 1;
    }
    int joined = 0;
    for (int i = 0; i < receivers; ++i) joined += sockets[i] != nullptr;

    BroadcastRun run(io, joined, size, window, timeout);
    auto begin = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
    auto end = messages > 0 ? Clock::time_point::max()
                            : begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    double cpu_before = 0, cpu_after = 0;
    io.restart();
    for (int i = 0; i < receivers; ++i)
        if (sockets[i]) net::co_spawn(io, run.receive(*sockets[i]), net::detached);
    net::co_spawn(io, run.drain(*sockets.back()), net::detached);
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            net::steady_timer timer(io);
            timer.expires_at(begin);
            co_await run.send(*sockets.back(), begin, begin, 0);  // warm-up: fill the app's set, warm the caches
            co_await timer.async_wait(net::use_awaitable);
            cpu_before = cpu_seconds_now();
            mark("window begin");
            co_await run.send(*sockets.back(), begin, end, messages);
            cpu_after = cpu_seconds_now();
            mark("window end");
            run.stop();
            // Every socket has a read pending (receive, drain): close alongside it, the read ends it.
            for (auto& ws : sockets)
                if (ws) ws->async_close(websocket::close_code::normal, [](boost::system::error_code) {});
        },
        net::detached);
    auto bound = messages > 0 ? 600.0 : warmup + seconds + timeout + 10;
    io.run_for(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(bound)));

    std::printf("{\"mode\": \"broadcast\", \"receivers\": %d, %s, \"size\": %zu, \"window\": %d, %s, \"client_cpu_s\": %g}\n",
                receivers, connect_json(conn, receivers + 1).c_str(), size, window, run.json().c_str(),
                cpu_after - cpu_before);
    return conn.failed() == 0 && run.clean() ? 0 : 1;
}

// ---- idle: open connections, hold them ------------------------------------------------------

int run_idle(const Target& t, int connections, bool exchange, double hold_seconds) {
    net::io_context io(1);
    Connector conn(io, t, connections);
    conn.start();
    io.run_for(std::chrono::seconds(300));
    auto& sockets = conn.sockets();

    // One message each first: a connection that has been used holds what use allocates (a
    // compressor's window, buffers), as a real idle one does.
    int exchange_errors = 0;
    if (exchange) {
        io.restart();
        std::string payload = make_payload(64);
        for (auto& ws : sockets)
            if (ws)
                net::co_spawn(
                    io,
                    [&, s = ws.get()]() -> net::awaitable<void> {
                        try {
                            s->text(true);
                            co_await s->async_write(net::buffer(payload), net::use_awaitable);
                            beast::flat_buffer buf;
                            co_await s->async_read(buf, net::use_awaitable);
                        } catch (const std::exception&) {
                            ++exchange_errors;
                        }
                    },
                    net::detached);
        io.run_for(std::chrono::seconds(120));
    }

    std::printf("ready {\"mode\": \"idle\", \"connections\": %d, %s, \"exchange_errors\": %d}\n", connections,
                connect_json(conn, connections).c_str(), exchange_errors);
    std::fflush(stdout);

    // Hold: a read pending on each socket, so that the server's pings are answered.
    int dropped = 0;
    bool stopping = false;
    io.restart();
    for (auto& ws : sockets)
        if (ws)
            net::co_spawn(
                io,
                [&, s = ws.get()]() -> net::awaitable<void> {
                    beast::flat_buffer buf;
                    boost::system::error_code ec;
                    while (!ec) {
                        buf.clear();
                        co_await s->async_read(buf, net::redirect_error(net::use_awaitable, ec));
                    }
                    if (!stopping) ++dropped;
                },
                net::detached);
    net::signal_set signals(io, SIGINT, SIGTERM);
    net::posix::stream_descriptor in(io);
    net::steady_timer hold(io);
    auto release = [&] {
        if (stopping) return;
        stopping = true;
        boost::system::error_code ignored;  // nothing to cancel is fine (stdin not watched)
        signals.cancel(ignored);
        if (in.is_open()) in.cancel(ignored);
        hold.cancel();
        for (auto& ws : sockets)
            if (ws) ws->async_close(websocket::close_code::normal, [](boost::system::error_code) {});
    };
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (!ec) release();
    });
    static char sink[256];
    std::function<void(boost::system::error_code, std::size_t)> on_stdin = [&](boost::system::error_code ec, std::size_t) {
        if (ec) return release();  // EOF or error: the script is done with us
        in.async_read_some(net::buffer(sink), on_stdin);
    };
    if (hold_seconds <= 0) {
        // Until stdin closes (/dev/null: at once; Asio reads a descriptor epoll refuses directly).
        // With no stdin at all, until a signal.
        boost::system::error_code ec;
        in.assign(::dup(0), ec);
        if (!ec) in.async_read_some(net::buffer(sink), on_stdin);
    } else {
        hold.expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(hold_seconds)));
        hold.async_wait([&](boost::system::error_code ec) {
            if (!ec) release();
        });
    }
    // Run until released, then give the closes a few seconds.
    while (!stopping && !io.stopped()) io.run_for(std::chrono::milliseconds(200));
    io.run_for(std::chrono::seconds(5));
    std::printf("{\"mode\": \"idle\", \"connections\": %d, %s, \"dropped_while_held\": %d}\n", connections,
                connect_json(conn, connections).c_str(), dropped);
    return conn.failed() == 0 && dropped == 0 && exchange_errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    raise_fd_limit();
    CLI::App app{"WebSocket load generator (Beast client) for bench/e2e/ws_compare.py"};
    app.require_subcommand(1);
    Target t;
    auto common = [&t](CLI::App* sub, const char* path) {
        sub->add_option("--host", t.host, "server address")->capture_default_str();
        sub->add_option("--port", t.port, "server port")->required();
        sub->add_option("--path", t.path, std::string("the WebSocket's path (default ") + path + ")");
        sub->add_flag("--deflate", t.deflate, "offer permessage-deflate");
        sub->add_option("--connect-concurrency", t.connect_concurrency, "handshakes in progress at once")->capture_default_str();
    };

    int clients = 32;
    std::size_t size = 64;
    bool binary = false;
    double warmup = 2, seconds = 10;
    auto* echo = app.add_subcommand("echo", "clients send a message, wait for its echo, repeat");
    common(echo, "/echo");
    echo->add_option("--clients", clients)->capture_default_str();
    echo->add_option("--size", size, "message bytes")->capture_default_str();
    echo->add_flag("--binary", binary, "binary messages instead of text");
    echo->add_option("--warmup", warmup, "seconds before measuring")->capture_default_str();
    echo->add_option("--seconds", seconds, "seconds measured")->capture_default_str();

    int receivers = 1000, window = 1;
    long messages = 0;
    double timeout = 10;
    auto* bc = app.add_subcommand("broadcast", "one sender; the app sends each message to every connection");
    common(bc, "/broadcast");
    bc->add_option("--receivers", receivers)->capture_default_str();
    bc->add_option("--size", size, "message bytes (at least 24: a sequence number prefix)")->capture_default_str();
    bc->add_option("--window", window, "broadcasts on their way at once")->capture_default_str();
    bc->add_option("--warmup", warmup, "seconds before measuring")->capture_default_str();
    bc->add_option("--seconds", seconds, "seconds measured (unless --messages)")->capture_default_str();
    bc->add_option("--messages", messages, "measure this many broadcasts instead of --seconds");
    bc->add_option("--timeout", timeout, "seconds a broadcast may take to reach everyone before it counts as incomplete")
        ->capture_default_str();

    int connections = 2000;
    bool exchange = false;
    double hold_seconds = 0;
    auto* idle = app.add_subcommand("idle", "open connections, print ready, hold them until stdin closes or a signal");
    common(idle, "/echo");
    idle->add_option("--connections", connections)->capture_default_str();
    idle->add_flag("--exchange", exchange, "each connection sends one message and reads its echo first");
    idle->add_option("--hold-seconds", hold_seconds, "hold this long, ignoring stdin (0: until stdin closes)")
        ->capture_default_str();

    CLI11_PARSE(app, argc, argv);
    if (t.path.empty()) t.path = *bc ? "/broadcast" : "/echo";
    int rc;
    if (*echo)
        rc = run_echo(t, clients, size, binary, warmup, seconds);
    else if (*bc)
        rc = run_broadcast(t, receivers, size, window, warmup, seconds, messages, timeout);
    else
        rc = run_idle(t, connections, exchange, hold_seconds);
    std::fflush(stdout);
    // Thousands of sockets and coroutine frames may still be parked in the io_context after a
    // bounded phase: nothing to gain from tearing them down one by one.
    std::_Exit(rc);
}
