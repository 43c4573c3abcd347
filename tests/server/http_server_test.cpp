#include "server/http_server.hpp"  // first: the header stands alone

#include <gtest/gtest.h>

#include "middleware/pipeline.hpp"

#include <atomic>
#include <chrono>
#include <cctype>
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

    explicit Served(std::string health_path = {}, const Pipeline* pipeline = nullptr) {
        BindAddress address;
        address.host = "127.0.0.1";
        sockets.push_back(open_listen_socket(address, 16));
        HttpServerSettings settings;
        settings.health_path = std::move(health_path);
        settings.pipeline = pipeline;
        settings.on_complete = [this](const CompletedExchange& done) {
            logged_status.store(done.status);
            logged.fetch_add(1);
        };
        server = std::make_unique<HttpServer>(std::move(settings), sockets, app);
        server->start();
    }
    ~Served() {
        server->stop();
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

}  // namespace
}  // namespace gantry
