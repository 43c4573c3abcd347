#pragma once
// Signals turned into bytes on a pipe (the self-pipe trick), read by one thread with a timeout.
// Unlike blocking the signals and taking them with sigtimedwait, this leaves the signal mask
// alone: programs the app starts (subprocess) inherit a clean mask and can be stopped with TERM,
// and threads an app starts cannot swallow a signal with its default action.
#include <chrono>
#include <initializer_list>

namespace gantry {

class SignalPipe {
public:
    // Routes these signals to the pipe of this process (replacing any earlier SignalPipe's), and
    // ignores SIGPIPE: a write to a closed socket is an error code, never a dead process
    // (sendfile(2) cannot say MSG_NOSIGNAL; CPython ignores SIGPIPE the same way).
    explicit SignalPipe(std::initializer_list<int> signals);
    ~SignalPipe();
    SignalPipe(const SignalPipe&) = delete;
    SignalPipe& operator=(const SignalPipe&) = delete;

    // The next signal received, or 0 once `timeout` passes with none (or on a wake()), or once
    // `also_readable` (another descriptor the waiter follows, e.g. --reload's inotify; -1: none)
    // has something to read.
    int wait(std::chrono::milliseconds timeout, int also_readable = -1);
    // Ends a wait() now, from any thread (async-signal-safe too): the waiter looks around.
    static void wake();

    // In a forked child: stop using the parent's pipe (the child makes its own SignalPipe).
    static void forget_inherited();
};

}  // namespace gantry
