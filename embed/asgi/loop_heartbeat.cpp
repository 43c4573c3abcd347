#include "embed/asgi/loop_heartbeat.hpp"

namespace gantry::asgi {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

LoopHeartbeat::LoopHeartbeat(milliseconds threshold, Clock::time_point now) noexcept
    : threshold_(threshold), last_beat_(now.time_since_epoch().count()) {}

void LoopHeartbeat::beat(Clock::time_point now) noexcept {
    last_beat_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
}

milliseconds LoopHeartbeat::silence(Clock::time_point now) const noexcept {
    Clock::time_point last{Clock::duration(last_beat_.load(std::memory_order_relaxed))};
    return now > last ? duration_cast<milliseconds>(now - last) : milliseconds(0);
}

LoopHeartbeat::Change LoopHeartbeat::check(Clock::time_point now) noexcept {
    const Clock::rep last = last_beat_.load(std::memory_order_relaxed);
    if (blocked_) {
        if (last == episode_beat_) return {};  // still blocked: said once already
        blocked_ = false;
        return {Change::Kind::unblocked, duration_cast<milliseconds>(Clock::duration(last - episode_beat_))};
    }
    milliseconds quiet = silence(now);
    if (quiet <= threshold_) return {};
    blocked_ = true;
    episode_beat_ = last;
    return {Change::Kind::blocked, quiet};
}

}  // namespace gantry::asgi
