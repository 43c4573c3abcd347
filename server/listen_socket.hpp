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
// understands ("127.0.0.1:8000: Address already in use"). `reuse_port`: SO_REUSEPORT (--reuse-port).
ListenSocket open_listen_socket(const BindAddress& address, int backlog, bool reuse_port = false);

// Closes them; removes unix socket files when `unlink_unix` (the master, at exit).
void close_listen_sockets(std::vector<ListenSocket>& sockets, bool unlink_unix);

// Sockets handed over by systemd socket activation or by the gantry this one replaces (USR2):
// LISTEN_PID is this process and LISTEN_FDS says how many, from fd 3 on; LISTEN_FDNAMES may name
// one "metrics". Empty when there are none. The variables are removed from the environment
// (the app's own children must not take the sockets for theirs).
std::vector<ListenSocket> inherited_listen_sockets();

// Makes `sockets` the LISTEN_FDS of a process about to exec (in the forked child, before exec):
// moved to fds 3.., inheritable. Returns the LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES entries to add
// to its environment (built here, not with setenv, which is not safe after fork).
std::vector<std::string> hand_over_listen_sockets(const std::vector<ListenSocket>& sockets);

// systemd's readiness protocol (sd_notify): "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...".
// A datagram to $NOTIFY_SOCKET; nothing without it. Written here rather than linking libsystemd:
// the protocol is one sendto().
void notify_service_manager(const std::string& state);

}  // namespace gantry
