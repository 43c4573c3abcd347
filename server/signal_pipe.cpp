#include "server/signal_pipe.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace gantry {

namespace {

std::atomic<int> g_write_fd{-1};
int g_read_fd = -1;

void on_signal(int sig) {
    int saved = errno;  // a handler must not disturb the errno of the code it interrupted
    int fd = g_write_fd.load(std::memory_order_relaxed);
    if (fd >= 0) {
        unsigned char byte = static_cast<unsigned char>(sig);
        // A full pipe drops the byte: hundreds of pending signals say no more than one does.
        [[maybe_unused]] ssize_t n = ::write(fd, &byte, 1);
    }
    errno = saved;
}

}  // namespace

SignalPipe::SignalPipe(std::initializer_list<int> signals) {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("signal pipe: pipe2 failed");
    forget_inherited();
    g_read_fd = fds[0];
    g_write_fd.store(fds[1]);
    struct sigaction action{};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (int sig : signals) ::sigaction(sig, &action, nullptr);
    struct sigaction ignore{};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, nullptr);
    // Undo any blocking inherited from elsewhere, so the handlers run.
    sigset_t set;
    sigemptyset(&set);
    for (int sig : signals) sigaddset(&set, sig);
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

SignalPipe::~SignalPipe() {
    // Handlers stay installed (a late signal finds fd -1 and is dropped) rather than reverting to
    // default actions that would kill the process mid-shutdown.
    forget_inherited();
}

void SignalPipe::forget_inherited() {
    int w = g_write_fd.exchange(-1);
    if (w >= 0) ::close(w);
    if (g_read_fd >= 0) ::close(g_read_fd);
    g_read_fd = -1;
}

void SignalPipe::wake() { on_signal(0); }

int SignalPipe::wait(std::chrono::milliseconds timeout, int also_readable) {
    pollfd p[2] = {{g_read_fd, POLLIN, 0}, {also_readable, POLLIN, 0}};
    int n = ::poll(p, also_readable >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
    if (n <= 0) return 0;  // timeout, or EINTR from the very signal now in the pipe: read next time
    if (!(p[0].revents & POLLIN)) return 0;  // only the other descriptor: the caller reads it
    unsigned char byte = 0;
    if (::read(g_read_fd, &byte, 1) == 1) return byte;
    return 0;
}

}  // namespace gantry
