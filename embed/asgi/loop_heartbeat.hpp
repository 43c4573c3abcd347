#pragma once
// Internal to embed/asgi: whether the event loop is blocked, told from another thread without the
// GIL. The loop thread beats (at each batch it drains, and at a periodic tick scheduled with
// call_later); a watchdog thread checks, and hears of each blocked episode twice: once when the
// loop has been silent for longer than the threshold, once when it beats again. Plain C++, and
// the time is passed in: a test drives the clock.
#include <atomic>
#include <chrono>

namespace gantry::asgi {

class LoopHeartbeat {
public:
    using Clock = std::chrono::steady_clock;

    // `threshold`: silent longer than this is blocked (the loop's tick must come well within it).
    LoopHeartbeat(std::chrono::milliseconds threshold, Clock::time_point now) noexcept;

    // The loop thread: it is running. Lock-free, any thread.
    void beat(Clock::time_point now) noexcept;
    // How long the loop has not beaten. Any thread.
    std::chrono::milliseconds silence(Clock::time_point now) const noexcept;

    struct Change {
        enum class Kind { none, blocked, unblocked };
        Kind kind = Kind::none;
        // blocked: the silence so far; unblocked: the whole episode, from the last beat before it
        // to the first after (so up to one tick longer than the blocking call itself).
        std::chrono::milliseconds duration{0};
    };
    // The watchdog's check (one thread only): `blocked` once when an episode is seen, `unblocked`
    // once when it ends, `none` in between and while the loop runs.
    Change check(Clock::time_point now) noexcept;

private:
    std::chrono::milliseconds threshold_;
    std::atomic<Clock::rep> last_beat_;  // Clock::time_point's count
    // The watchdog's own.
    bool blocked_ = false;
    Clock::rep episode_beat_ = 0;  // the last beat before the episode
};

}  // namespace gantry::asgi
