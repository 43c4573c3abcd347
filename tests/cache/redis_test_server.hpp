#pragma once
// A real redis-server on a free loopback port, started and stopped by a test (the Redis store's
// and the tiered store's tests).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "cache/redis_store.hpp"

namespace gantry::test {

inline int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

class RedisServer {
public:
    explicit RedisServer(int port) : port_(port) { start(); }
    ~RedisServer() { stop(); }
    void start() {
        pid_ = ::fork();
        if (pid_ == 0) {
            std::string port = std::to_string(port_);
            ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--loglevel", "warning", "--enable-debug-command", "local",
                     static_cast<char*>(nullptr));
            ::_exit(127);
        }
        RedisSettings s;
        s.port = port_;
        for (int i = 0; i < 200; ++i) {  // until it answers
            RedisStore probe(s);
            if (probe.set("probe", "1", std::nullopt)) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        throw std::runtime_error("redis-server did not start (is it installed?)");
    }
    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

private:
    int port_;
    pid_t pid_ = -1;
};

}  // namespace gantry::test
