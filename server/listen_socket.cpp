#include "server/listen_socket.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace gantry {

namespace {

[[noreturn]] void fail(const BindAddress& address, const std::string& what) {
    throw std::runtime_error(address.to_string() + ": " + what);
}

int make_socket(int family, const BindAddress& address) {
    int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) fail(address, std::strerror(errno));
    return fd;
}

void bind_and_listen(int fd, const sockaddr* sa, socklen_t len, int backlog, const BindAddress& address) {
    if (::bind(fd, sa, len) < 0) {
        int err = errno;
        ::close(fd);
        fail(address, std::string("cannot bind: ") + std::strerror(err));
    }
    if (::listen(fd, backlog) < 0) {
        int err = errno;
        ::close(fd);
        fail(address, std::string("cannot listen: ") + std::strerror(err));
    }
}

ListenSocket open_unix(const BindAddress& address, int backlog) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (address.path.size() >= sizeof(sa.sun_path)) fail(address, "socket path too long");
    std::memcpy(sa.sun_path, address.path.c_str(), address.path.size() + 1);
    // A socket file left by a previous run is replaced (as gunicorn does); anything else is not.
    struct stat st{};
    if (::lstat(address.path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) fail(address, "exists and is not a socket");
        ::unlink(address.path.c_str());
    }
    int fd = make_socket(AF_UNIX, address);
    bind_and_listen(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa), backlog, address);
    return ListenSocket{fd, address, AF_UNIX};
}

ListenSocket open_tcp(const BindAddress& address, int backlog, bool reuse_port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    std::string port = std::to_string(address.port);
    const char* host = address.host.empty() ? nullptr : address.host.c_str();
    if (int rc = ::getaddrinfo(host, port.c_str(), &hints, &found); rc != 0)
        fail(address, std::string("cannot resolve: ") + ::gai_strerror(rc));
    std::string last_error = "no usable address";
    for (addrinfo* ai = found; ai; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_error = std::strerror(errno);
            continue;
        }
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (ai->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || ::listen(fd, backlog) < 0) {
            last_error = std::strerror(errno);
            ::close(fd);
            continue;
        }
        ListenSocket socket{fd, address, ai->ai_family};
        ::freeaddrinfo(found);
        // Port 0: report the port the kernel chose.
        sockaddr_storage ss{};
        socklen_t len = sizeof(ss);
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
            if (ss.ss_family == AF_INET)
                socket.address.port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
            else if (ss.ss_family == AF_INET6)
                socket.address.port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
        }
        return socket;
    }
    ::freeaddrinfo(found);
    fail(address, "cannot bind: " + last_error);
}

}  // namespace

ListenSocket open_listen_socket(const BindAddress& address, int backlog, bool reuse_port) {
    return address.kind == BindAddress::Kind::unix_socket ? open_unix(address, backlog)
                                                          : open_tcp(address, backlog, reuse_port);
}

std::vector<ListenSocket> inherited_listen_sockets() {
    std::vector<ListenSocket> out;
    const char* pid = std::getenv("LISTEN_PID");
    const char* fds = std::getenv("LISTEN_FDS");
    std::string names = std::getenv("LISTEN_FDNAMES") ? std::getenv("LISTEN_FDNAMES") : "";
    bool ours = pid && fds && std::strtol(pid, nullptr, 10) == ::getpid();
    int count = ours ? static_cast<int>(std::strtol(fds, nullptr, 10)) : 0;
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    for (int i = 0; i < count; ++i) {
        int fd = 3 + i;
        std::string name;
        if (!names.empty()) {
            auto colon = names.find(':');
            name = names.substr(0, colon);
            names = colon == std::string::npos ? "" : names.substr(colon + 1);
        }
        sockaddr_storage ss{};
        socklen_t len = sizeof(ss);
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
            throw std::runtime_error("inherited fd " + std::to_string(fd) + " is not a socket");
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        ListenSocket socket;
        socket.fd = fd;
        socket.family = ss.ss_family;
        socket.metrics = name == "metrics";
        char host[INET6_ADDRSTRLEN] = {};
        if (ss.ss_family == AF_INET) {
            auto* in = reinterpret_cast<sockaddr_in*>(&ss);
            ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            socket.address.host = host;
            socket.address.port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
            ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            socket.address.host = host;
            socket.address.port = ntohs(in6->sin6_port);
        } else if (ss.ss_family == AF_UNIX) {
            socket.address.kind = BindAddress::Kind::unix_socket;
            socket.address.path = reinterpret_cast<sockaddr_un*>(&ss)->sun_path;
        }
        out.push_back(std::move(socket));
    }
    return out;
}

std::vector<std::string> hand_over_listen_sockets(const std::vector<ListenSocket>& sockets) {
    // First out of the way of 3.., then into place: a socket may already sit where another goes.
    std::vector<int> moved;
    for (const auto& s : sockets) moved.push_back(::fcntl(s.fd, F_DUPFD_CLOEXEC, 3 + static_cast<int>(sockets.size())));
    std::string names;
    for (std::size_t i = 0; i < moved.size(); ++i) {
        ::dup2(moved[i], 3 + static_cast<int>(i));  // dup2's copy is inheritable
        ::close(moved[i]);
        names += (i ? ":" : "") + std::string(sockets[i].metrics ? "metrics" : "http");
    }
    return {"LISTEN_PID=" + std::to_string(::getpid()), "LISTEN_FDS=" + std::to_string(sockets.size()),
            "LISTEN_FDNAMES=" + names};
}

void notify_service_manager(const std::string& state) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) return;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::size_t n = std::strlen(path);
    if (n >= sizeof(sa.sun_path)) return;
    std::memcpy(sa.sun_path, path, n);
    if (path[0] == '@') sa.sun_path[0] = '\0';  // an abstract socket
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    // Best effort: a service manager that is gone must not stop the server.
    [[maybe_unused]] ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                             reinterpret_cast<sockaddr*>(&sa),
                                             static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n));
    ::close(fd);
}

void close_listen_sockets(std::vector<ListenSocket>& sockets, bool unlink_unix) {
    for (auto& s : sockets) {
        if (s.fd >= 0) ::close(s.fd);
        s.fd = -1;
        if (unlink_unix && s.family == AF_UNIX) ::unlink(s.address.path.c_str());
    }
}

}  // namespace gantry
