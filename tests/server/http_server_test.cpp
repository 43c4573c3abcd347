#include "server/http_server.hpp"  // first: the header stands alone

#include <gtest/gtest.h>

#include "middleware/pipeline.hpp"

#include <atomic>
#include <chrono>
#include <cctype>
#include <mutex>
#include <thread>
#include <vector>
#include <stdexcept>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace gantry {
namespace {

using namespace std::chrono_literals;

// Answers every call at once, on the I/O thread that dispatched it.
class EchoTarget final : public AppDispatcher {
public:
    void dispatch(std::unique_ptr<AppCall> call) override {
        calls.fetch_add(1);
        call->response.sink()->app_started();
        std::move(call->response).send_whole(ResponseHead{200, "OK", {{"Content-Type", "text/plain"}}}, "app:" + call->request.target);
    }
    std::atomic<int> calls{0};
};

// One request with Connection: close; the whole answer, read until the server closes.
std::string exchange(std::uint16_t port, const std::string& request) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
    std::string answer;
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;) answer.append(buffer, static_cast<std::size_t>(n));
    ::close(fd);
    return answer;
}

// Streams "one", "two", "three" as three chunks.
class StreamTarget final : public AppDispatcher {
public:
    void dispatch(std::unique_ptr<AppCall> call) override {
        call->response.sink()->app_started();
        ResponseStream stream = std::move(call->response).start_stream(ResponseHead{200, "OK", {{"Content-Type", "text/plain"}}});
        for (const char* piece : {"one", "two", "three"}) stream.write_chunk(piece);
        std::move(stream).finish();
    }
};

// Rewrites each chunk to upper case, and fails on the one that says "two" (by throwing or by
// asking for the abort), as a compressor whose library call failed.
class FailingRewrite final : public Middleware {
public:
    explicit FailingRewrite(bool throws) : throws_(throws) {}
    std::string_view name() const override { return "failing"; }
    void on_response(RequestContext& ctx, ResponseHead&, std::string*) const override { ctx.mark_stream_rewritten(); }
    void on_chunk(RequestContext& ctx, std::string& chunk) const override {
        if (chunk == "two") {
            chunk = "TW";  // half rewritten: never sent
            if (throws_) throw std::runtime_error("codec failed");
            ctx.abort_response();
            return;
        }
        for (char& c : chunk) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    void on_stream_end(RequestContext&, std::string& tail) const override { tail += "END"; }

private:
    bool throws_;
};

template <class App>
struct Served {
    App app;
    std::vector<ListenSocket> sockets;
    std::atomic<int> logged{0};
    std::atomic<int> logged_status{0};
    std::unique_ptr<HttpServer> server;

    explicit Served(std::string health_path = {}, const Pipeline* pipeline = nullptr, std::size_t max_queue = 0) {
        BindAddress address;
        address.host = "127.0.0.1";
        sockets.push_back(open_listen_socket(address, 16));
        HttpServerSettings settings;
        settings.health_path = std::move(health_path);
        settings.pipeline = pipeline;
        settings.max_queue = max_queue;
        settings.on_complete = [this](const CompletedExchange& done) {
            logged_status.store(done.status);
            logged.fetch_add(1);
        };
        server = std::make_unique<HttpServer>(std::move(settings), sockets, app);
        server->start();
    }
    ~Served() {
        if (server) server->stop();
        close_listen_sockets(sockets, false);
    }
    std::uint16_t port() const { return sockets[0].address.port; }
};

TEST(HttpServer, AnswersThroughTheAppAndLogsTheExchange) {
    Served<EchoTarget> s;
    std::string answer = exchange(s.port(), "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
    EXPECT_NE(answer.find("Content-Length: 10\r\n"), std::string::npos) << answer;
    EXPECT_NE(answer.find("\r\n\r\napp:/hello"), std::string::npos) << answer;
    EXPECT_EQ(s.app.calls.load(), 1);
    EXPECT_EQ(s.logged.load(), 1);
    EXPECT_EQ(s.logged_status.load(), 200);
}

TEST(HttpServer, HealthChecksNeverReachTheApp) {
    Served<EchoTarget> s("/healthz");
    std::string live = exchange(s.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(live.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << live;
    EXPECT_NE(live.find("\r\n\r\nok\n"), std::string::npos) << live;
    std::string head = exchange(s.port(), "HEAD /healthz/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
    EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << "HEAD: no body";
    EXPECT_EQ(s.app.calls.load(), 0);
}

TEST(HttpServer, ADrainedServerWithNoConnectionIsIdle) {
    Served<EchoTarget> s;
    EXPECT_EQ(s.server->open_connections(), 0u);
    s.server->drain();
    EXPECT_TRUE(s.server->wait_idle(std::chrono::steady_clock::now() + 10s));
}

TEST(HttpServer, AStreamRewriteThatFailsClosesTheConnectionWithoutTheEnd) {
    for (bool throws : {true, false}) {
        std::vector<std::unique_ptr<const Middleware>> chain;
        chain.push_back(std::make_unique<FailingRewrite>(throws));
        Pipeline pipeline(std::move(chain));
        Served<StreamTarget> s({}, &pipeline);
        // Keep-alive asked, a second request pipelined: neither may be answered after the cut.
        std::string answer = exchange(s.port(), "GET /s HTTP/1.1\r\nHost: x\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\n");
        EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
        EXPECT_NE(answer.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << answer;
        EXPECT_NE(answer.find("\r\n3\r\nONE\r\n"), std::string::npos) << answer;
        EXPECT_EQ(answer.find("TW"), std::string::npos) << answer;
        EXPECT_EQ(answer.find("THREE"), std::string::npos) << answer;
        EXPECT_EQ(answer.find("END"), std::string::npos) << answer;
        EXPECT_EQ(answer.find("0\r\n\r\n"), std::string::npos) << "no last chunk: " << answer;
        EXPECT_EQ(answer.find("HTTP/1.1", 5), std::string::npos) << "the pipelined request is not answered";
    }
}

TEST(HttpServer, AStreamRewriteThatSucceedsEndsTheStream) {
    // The same chain without a failing chunk: the rewritten stream and the hook's tail, then the end.
    class Upper final : public Middleware {
    public:
        std::string_view name() const override { return "upper"; }
        void on_response(RequestContext& ctx, ResponseHead&, std::string*) const override { ctx.mark_stream_rewritten(); }
        void on_chunk(RequestContext&, std::string& chunk) const override {
            for (char& c : chunk) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        void on_stream_end(RequestContext&, std::string& tail) const override { tail += "END"; }
    };
    std::vector<std::unique_ptr<const Middleware>> chain;
    chain.push_back(std::make_unique<Upper>());
    Pipeline pipeline(std::move(chain));
    Served<StreamTarget> s({}, &pipeline);
    std::string answer = exchange(s.port(), "GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_NE(answer.find("\r\n3\r\nONE\r\n3\r\nTWO\r\n5\r\nTHREE\r\n3\r\nEND\r\n0\r\n\r\n"), std::string::npos) << answer;
}

// Keeps every call until the test answers it, from the test's thread (as a Python thread would).
class HeldTarget final : public AppDispatcher {
public:
    void dispatch(std::unique_ptr<AppCall> call) override {
        std::lock_guard lock(mutex);
        calls.push_back(std::move(call));
    }
    std::size_t waiting() const override {
        std::lock_guard lock(mutex);
        return calls.size();
    }
    std::size_t held() const { return waiting(); }
    std::unique_ptr<AppCall> take() {
        std::lock_guard lock(mutex);
        auto call = std::move(calls.front());
        calls.erase(calls.begin());
        return call;
    }
    mutable std::mutex mutex;
    std::vector<std::unique_ptr<AppCall>> calls;
};

// What the refresh middleware below saw, for the test to read.
struct RefreshTrace {
    std::atomic<int> states_alive{0};
    std::atomic<int> refreshes_with_state{0};
    std::atomic<int> refreshed{0};
    std::mutex mutex;
    std::string refreshed_body;
};

// Answers every request with "stale" and asks for a background refresh, whose response hook
// records what the app answered, like the cache storing it. Its state, handed to the refresh,
// counts itself (the cache's lock lives in such a state).
class StaleThenRefresh final : public Middleware {
public:
    explicit StaleThenRefresh(RefreshTrace& trace) : trace_(trace) {}
    std::string_view name() const override { return "stale"; }
    Flow on_request(RequestContext& ctx) const override {
        if (ctx.is_background_refresh()) {
            if (ctx.state()) trace_.refreshes_with_state.fetch_add(1);
            return Flow::next;
        }
        ctx.state() = std::make_unique<Counted>(trace_);
        ctx.request_background_refresh();
        ctx.respond(ResponseHead{200, "OK", {{"Content-Type", "text/plain"}}}, "stale");
        return Flow::respond;
    }
    void on_response(RequestContext& ctx, ResponseHead& head, std::string* whole_body) const override {
        if (!ctx.is_background_refresh() || !whole_body) return;
        std::lock_guard lock(trace_.mutex);
        trace_.refreshed_body = std::to_string(head.status) + " " + *whole_body;
        trace_.refreshed.fetch_add(1);
    }

private:
    struct Counted final : MiddlewareState {
        explicit Counted(RefreshTrace& t) : trace(t) { trace.states_alive.fetch_add(1); }
        ~Counted() override { trace.states_alive.fetch_sub(1); }
        RefreshTrace& trace;
    };
    RefreshTrace& trace_;
};

// Polls until `done` (a generous bound: only a hang fails it).
template <class Predicate>
bool eventually(Predicate done) {
    for (auto deadline = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < deadline;) {
        if (done()) return true;
        std::this_thread::sleep_for(1ms);
    }
    return done();
}

std::unique_ptr<Pipeline> refresh_pipeline(RefreshTrace& trace) {
    std::vector<std::unique_ptr<const Middleware>> chain;
    chain.push_back(std::make_unique<StaleThenRefresh>(trace));
    return std::make_unique<Pipeline>(std::move(chain));
}

TEST(HttpServer, ABackgroundRefreshCallsTheAppOnceWithNoClientWaiting) {
    RefreshTrace trace;
    auto pipeline = refresh_pipeline(trace);
    Served<HeldTarget> s({}, pipeline.get());
    // Answered while the app call is still held: no client waits for it.
    std::string answer = exchange(s.port(), "GET /p?x=1 HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"a\"\r\n"
                                            "Connection: close\r\n\r\n");
    EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
    EXPECT_NE(answer.find("\r\n\r\nstale"), std::string::npos) << answer;
    ASSERT_TRUE(eventually([&] { return s.app.held() == 1; }));
    EXPECT_EQ(trace.refreshes_with_state.load(), 1);  // the asking middleware's state came along
    EXPECT_EQ(s.logged.load(), 1);                    // the client's exchange only
    auto call = s.app.take();
    EXPECT_EQ(call->request.method, "GET");
    EXPECT_EQ(call->request.target, "/p?x=1");
    EXPECT_EQ(call->request.find_header("If-None-Match"), nullptr);  // the whole page, not a 304
    EXPECT_NE(call->request.find_header("Host"), nullptr);
    EXPECT_EQ(trace.states_alive.load(), 1);  // held by the refresh while the app runs
    std::thread app([&] { std::move(call->response).send_whole(ResponseHead{200, "OK", {}}, "fresh"); });
    app.join();
    ASSERT_TRUE(eventually([&] { return trace.refreshed.load() == 1 && trace.states_alive.load() == 0; }));
    {
        std::lock_guard lock(trace.mutex);
        EXPECT_EQ(trace.refreshed_body, "200 fresh");
    }
    EXPECT_EQ(s.logged.load(), 1);  // the refresh writes no access-log line
}

TEST(HttpServer, AFailedBackgroundRefreshRunsNoResponseHookAndLetsItsStateGo) {
    RefreshTrace trace;
    auto pipeline = refresh_pipeline(trace);
    Served<HeldTarget> s({}, pipeline.get());
    exchange(s.port(), "GET /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    exchange(s.port(), "GET /q HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ASSERT_TRUE(eventually([&] { return s.app.held() == 2; }));
    auto failed = s.app.take();
    auto errored = s.app.take();
    std::move(failed->response).fail();                                        // the app raised
    std::move(errored->response).send_whole(ResponseHead{503, "Unavailable", {}}, "down");  // a 5xx
    ASSERT_TRUE(eventually([&] { return trace.states_alive.load() == 0; }));
    EXPECT_EQ(trace.refreshed.load(), 0);
}

TEST(HttpServer, NoBackgroundRefreshWhenTheQueueIsFull) {
    RefreshTrace trace;
    auto pipeline = refresh_pipeline(trace);
    Served<HeldTarget> s({}, pipeline.get(), 1);
    exchange(s.port(), "GET /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ASSERT_TRUE(eventually([&] { return s.app.held() == 1; }));
    std::string answer = exchange(s.port(), "GET /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_NE(answer.find("\r\n\r\nstale"), std::string::npos) << answer;  // the answer still goes out
    ASSERT_TRUE(eventually([&] { return s.logged.load() == 2 && trace.states_alive.load() == 1; }));
    EXPECT_EQ(s.app.held(), 1u);  // skipped: its state went with the request; the first one's is held
    std::move(s.app.take()->response).fail();
    ASSERT_TRUE(eventually([&] { return trace.states_alive.load() == 0; }));
}

TEST(HttpServer, ABackgroundRefreshAnsweredAfterTheServerStoppedIsDroppedSafely) {
    RefreshTrace trace;
    auto pipeline = refresh_pipeline(trace);
    Served<HeldTarget> s({}, pipeline.get());
    exchange(s.port(), "GET /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ASSERT_TRUE(eventually([&] { return s.app.held() == 1; }));
    s.server->stop();  // the worker's order: the I/O threads stop, then the app's calls finish
    auto call = s.app.take();
    std::move(call->response).send_whole(ResponseHead{200, "OK", {}}, "late");  // its job never runs
    EXPECT_EQ(trace.refreshed.load(), 0);
    EXPECT_EQ(trace.states_alive.load(), 1);  // in the job, queued on the stopped thread
    s.server.reset();                         // the job goes with its io_context
    EXPECT_EQ(trace.states_alive.load(), 0);
    EXPECT_EQ(trace.refreshed.load(), 0);
}

}  // namespace
}  // namespace gantry
