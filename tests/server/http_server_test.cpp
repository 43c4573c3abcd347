#include "server/http_server.hpp"  // first: the header stands alone

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
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

struct Served {
    EchoTarget app;
    std::vector<ListenSocket> sockets;
    std::atomic<int> logged{0};
    std::atomic<int> logged_status{0};
    std::unique_ptr<HttpServer> server;

    explicit Served(std::string health_path = {}) {
        BindAddress address;
        address.host = "127.0.0.1";
        sockets.push_back(open_listen_socket(address, 16));
        HttpServerSettings settings;
        settings.health_path = std::move(health_path);
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
    Served s;
    std::string answer = exchange(s.port(), "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
    EXPECT_NE(answer.find("Content-Length: 10\r\n"), std::string::npos) << answer;
    EXPECT_NE(answer.find("\r\n\r\napp:/hello"), std::string::npos) << answer;
    EXPECT_EQ(s.app.calls.load(), 1);
    EXPECT_EQ(s.logged.load(), 1);
    EXPECT_EQ(s.logged_status.load(), 200);
}

TEST(HttpServer, HealthChecksNeverReachTheApp) {
    Served s("/healthz");
    std::string live = exchange(s.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(live.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << live;
    EXPECT_NE(live.find("\r\n\r\nok\n"), std::string::npos) << live;
    std::string head = exchange(s.port(), "HEAD /healthz/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
    EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << "HEAD: no body";
    EXPECT_EQ(s.app.calls.load(), 0);
}

TEST(HttpServer, ADrainedServerWithNoConnectionIsIdle) {
    Served s;
    EXPECT_EQ(s.server->open_connections(), 0u);
    s.server->drain();
    EXPECT_TRUE(s.server->wait_idle(std::chrono::steady_clock::now() + 10s));
}

}  // namespace
}  // namespace gantry
