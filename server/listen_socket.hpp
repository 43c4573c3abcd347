#pragma once
// Listening sockets, opened by the master before it forks so every worker shares them.
#include <string>
#include <vector>

#include "server/bind_address.hpp"

namespace gantry {

struct ListenSocket {
    int fd = -1;
    BindAddress address;      // as bound; a port of 0 is replaced by the one the kernel chose
    int family = 0;           // AF_INET, AF_INET6, AF_UNIX
    bool metrics = false;     // --metrics-bind: answers /metrics natively, never reaches the app
};

// Binds and listens (non-blocking, close-on-exec). Throws std::runtime_error with a message a user
// understands ("127.0.0.1:8000: Address already in use").
ListenSocket open_listen_socket(const BindAddress& address, int backlog);

// Closes them; removes unix socket files when `unlink_unix` (the master, at exit).
void close_listen_sockets(std::vector<ListenSocket>& sockets, bool unlink_unix);

}  // namespace gantry
