// libFuzzer target: raw bytes after an accepted WebSocket handshake -> the server's WebSocket
// code path (Beast's frame reader in server/websocket_session.cpp, the close handshake, the
// channel to the app), through a real HttpServer on a unix socket, as a client would send them.
//
// The first byte picks the handshake: bit 0 offers permessage-deflate (so RSV1 frames are
// inflated), bit 1 a tiny --ws-max-size server instead of the default one. The rest is sent on
// the upgraded connection, then the client's sending side is shut. The server must end the
// connection (a close frame, or a close after an invalid frame or the EOF): a hang is a timeout.
// The app side answers on the I/O thread: it echoes every message, so the write side and the
// backpressure are reached too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cerrno>
#include <memory>
#include <string>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "http/app_dispatcher.hpp"
#include "server/http_server.hpp"
#include "server/listen_socket.hpp"

namespace {

using namespace gantry;

void check(bool ok) {
    if (!ok) __builtin_trap();  // an invariant broken: libFuzzer reports it as a crash
}

// Accepts every WebSocket and echoes each message, called back from the connection's thread.
void echo(const std::shared_ptr<WebSocketChannel>& channel) {
    for (;;) {
        auto event = channel->take();
        if (event.kind == WebSocketChannel::Event::Kind::message) {
            channel->send(std::move(event.message), {});
            continue;
        }
        if (event.kind == WebSocketChannel::Event::Kind::disconnected) return;
        if (channel->when_ready([channel] { echo(channel); })) return;
    }
}

class EchoApp final : public AppDispatcher {
public:
    bool takes_websockets() const override { return true; }
    void dispatch(std::unique_ptr<AppCall> call) override {
        if (!call->websocket) {
            std::move(call->response).send_whole(ResponseHead{404, "Not Found", {}}, {});
            return;
        }
        call->websocket->accept({}, {});
        echo(call->websocket);
    }
};

struct Server {
    EchoApp app;
    std::vector<ListenSocket> sockets;
    std::unique_ptr<HttpServer> server;
    std::string path;

    explicit Server(std::size_t max_size) {
        path = "/tmp/gantry-ws-fuzz-" + std::to_string(::getpid()) + "-" + std::to_string(max_size) + ".sock";
        BindAddress address;
        address.kind = BindAddress::Kind::unix_socket;
        address.path = path;
        ::unlink(path.c_str());
        sockets.push_back(open_listen_socket(address, 64));
        HttpServerSettings settings;
        settings.websocket.max_size = max_size;
        settings.websocket.ping_interval = std::chrono::milliseconds(0);
        settings.websocket.close_timeout = std::chrono::milliseconds(50);
        server = std::make_unique<HttpServer>(std::move(settings), sockets, app);
        server->start();
    }
};

Server& server_for(bool tiny) {
    // Never destroyed: libFuzzer exits without unwinding, and the I/O thread must not outlive it.
    static Server* const tiny_server = new Server(64);
    static Server* const default_server = new Server(16u << 20);
    return tiny ? *tiny_server : *default_server;
}

int connect_to(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    check(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    check(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    return fd;
}

void send_all(int fd, const std::uint8_t* data, std::size_t size) {
    while (size > 0) {
        ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;  // libFuzzer's timer signal
        if (n <= 0) return;  // the server closed first (an invalid frame): fine
        data += n;
        size -= static_cast<std::size_t>(n);
    }
}

// recv(2), again when libFuzzer's timer signal interrupts it.
ssize_t receive(int fd, void* buffer, std::size_t size) {
    for (;;) {
        ssize_t n = ::recv(fd, buffer, size, 0);
        if (n >= 0 || errno != EINTR) return n;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const bool deflate = data[0] & 1;
    Server& s = server_for(data[0] & 2);
    int fd = connect_to(s.path);
    std::string handshake =
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    if (deflate) handshake += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    handshake += "\r\n";
    send_all(fd, reinterpret_cast<const std::uint8_t*>(handshake.data()), handshake.size());
    // The 101 first: the frames must come after it (else the server refuses them with a 400).
    std::string head;
    char c;
    while (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
        check(receive(fd, &c, 1) == 1);
        head += c;
    }
    check(head.rfind("HTTP/1.1 101 ", 0) == 0);
    send_all(fd, data + 1, size - 1);
    ::shutdown(fd, SHUT_WR);
    // Until the server ends the connection.
    char buffer[4096];
    while (receive(fd, buffer, sizeof(buffer)) > 0) {
    }
    ::close(fd);
    return 0;
}
