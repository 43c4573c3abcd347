#include "server/listen_socket.hpp"

#include <cerrno>
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

ListenSocket open_tcp(const BindAddress& address, int backlog) {
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

ListenSocket open_listen_socket(const BindAddress& address, int backlog) {
    return address.kind == BindAddress::Kind::unix_socket ? open_unix(address, backlog)
                                                          : open_tcp(address, backlog);
}

void close_listen_sockets(std::vector<ListenSocket>& sockets, bool unlink_unix) {
    for (auto& s : sockets) {
        if (s.fd >= 0) ::close(s.fd);
        s.fd = -1;
        if (unlink_unix && s.family == AF_UNIX) ::unlink(s.address.path.c_str());
    }
}

}  // namespace gantry
