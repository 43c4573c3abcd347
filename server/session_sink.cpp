#include "server/session_sink.hpp"

#include <algorithm>
#include <utility>

#include <unistd.h>

namespace gantry {

using Clock = std::chrono::steady_clock;

SessionSink::~SessionSink() {
    for (auto& e : events_)
        if (e.kind == SinkEvent::Kind::file && e.fd >= 0) ::close(e.fd);
    if (session_) release_session(std::move(session_));
}

void SessionSink::notify(std::unique_lock<std::mutex>& lock) {
    if (notify_pending_) return;
    notify_pending_ = true;
    lock.unlock();
    if (session_) wake_session(session_);
}

bool SessionSink::wait_for_space(std::unique_lock<std::mutex>& lock) {
    space_.wait(lock, [&] { return queued_bytes_ < limit_ || gone_.load(std::memory_order_relaxed); });
    return !gone_.load(std::memory_order_relaxed);
}

void SessionSink::send_whole(ResponseHead head, std::string body) {
    std::unique_lock lock(mutex_);
    if (timed_out_) return;
    times_.app_finished = Clock::now();
    events_.push_back(SinkEvent{SinkEvent::Kind::head, std::move(head), {}});
    queued_bytes_ += body.size();
    events_.push_back(SinkEvent{SinkEvent::Kind::data, {}, std::move(body)});
    events_.push_back(SinkEvent{SinkEvent::Kind::end, {}, {}});
    notify(lock);
}

void SessionSink::start_stream(ResponseHead head) {
    std::unique_lock lock(mutex_);
    if (timed_out_) return;
    events_.push_back(SinkEvent{SinkEvent::Kind::head, std::move(head), {}});
    notify(lock);
}

bool SessionSink::write_chunk(std::string data) {
    std::unique_lock lock(mutex_);
    if (!wait_for_space(lock)) return false;
    queued_bytes_ += data.size();
    events_.push_back(SinkEvent{SinkEvent::Kind::data, {}, std::move(data)});
    notify(lock);
    return true;
}

bool SessionSink::write_chunk_nowait(std::string data, std::function<void()> on_space) {
    std::unique_lock lock(mutex_);
    if (gone_.load(std::memory_order_relaxed)) return false;
    queued_bytes_ += data.size();
    events_.push_back(SinkEvent{SinkEvent::Kind::data, {}, std::move(data)});
    const bool room = queued_bytes_ < limit_;
    if (!room) on_space_ = std::move(on_space);
    notify(lock);
    return room;
}

bool SessionSink::send_file_nowait(int fd, off_t offset, std::size_t count, std::function<void()> on_space) {
    std::unique_lock lock(mutex_);
    if (gone_.load(std::memory_order_relaxed)) {
        ::close(fd);
        return false;
    }
    queued_bytes_ += std::min(count, limit_);  // as send_file: one buffer's worth at most
    SinkEvent e{SinkEvent::Kind::file, {}, {}};
    e.fd = fd;
    e.offset = offset;
    e.count = count;
    events_.push_back(std::move(e));
    const bool room = queued_bytes_ < limit_;
    if (!room) on_space_ = std::move(on_space);
    notify(lock);
    return room;
}

bool SessionSink::send_file(int fd, off_t offset, std::size_t count) {
    std::unique_lock lock(mutex_);
    if (!wait_for_space(lock)) {
        ::close(fd);
        return false;
    }
    // A file counts at most one buffer's worth: it is not copied, only its send is waited for.
    queued_bytes_ += std::min(count, limit_);
    SinkEvent e{SinkEvent::Kind::file, {}, {}};
    e.fd = fd;
    e.offset = offset;
    e.count = count;
    events_.push_back(std::move(e));
    notify(lock);
    return true;
}

void SessionSink::queue_answer(ResponseHead head, AnswerBody& body) {
    std::lock_guard lock(mutex_);
    events_.push_back(SinkEvent{SinkEvent::Kind::head, std::move(head), {}});
    if (body.kind == AnswerBody::Kind::file) {
        SinkEvent e{SinkEvent::Kind::file, {}, {}};
        e.fd = std::exchange(body.fd, -1);
        e.offset = static_cast<off_t>(body.offset);
        e.count = body.count;
        events_.push_back(std::move(e));
    } else {
        SinkEvent e{SinkEvent::Kind::data, {}, {}};
        e.shared = std::move(body.shared);
        e.offset = static_cast<off_t>(body.offset);
        e.count = body.count;
        events_.push_back(std::move(e));
    }
    events_.push_back(SinkEvent{SinkEvent::Kind::end, {}, {}});
}

void SessionSink::finish_stream_with_trailers(std::vector<HttpHeader> trailers) {
    std::unique_lock lock(mutex_);
    if (timed_out_) return;
    times_.app_finished = Clock::now();
    SinkEvent e{SinkEvent::Kind::end, {}, {}};
    e.head.headers = std::move(trailers);
    events_.push_back(std::move(e));
    notify(lock);
}

void SessionSink::finish_stream() {
    std::unique_lock lock(mutex_);
    if (timed_out_) return;
    times_.app_finished = Clock::now();
    events_.push_back(SinkEvent{SinkEvent::Kind::end, {}, {}});
    notify(lock);
}

void SessionSink::fail() {
    std::unique_lock lock(mutex_);
    if (timed_out_) return;
    times_.app_finished = Clock::now();
    events_.push_back(SinkEvent{SinkEvent::Kind::fail, {}, {}});
    notify(lock);
}

void SessionSink::fail_timeout() {
    std::function<void()> on_space;
    {
        std::unique_lock lock(mutex_);
        if (timed_out_) return;
        timed_out_ = true;
        times_.app_finished = Clock::now();
        SinkEvent e{SinkEvent::Kind::fail, {}, {}};
        e.head.status = 504;
        events_.push_back(std::move(e));
        on_space = std::move(on_space_);
        on_space_ = nullptr;
        notify(lock);  // unlocks
        gone_.store(true, std::memory_order_relaxed);  // a stuck write_chunk returns; later ones fail
    }
    space_.notify_all();
    if (on_space) on_space();
}

void SessionSink::app_started() {
    std::lock_guard lock(mutex_);
    times_.app_started = Clock::now();
}

void SessionSink::app_breakdown(AppBreakdown breakdown) {
    auto shared = std::make_shared<const AppBreakdown>(std::move(breakdown));
    std::lock_guard lock(mutex_);
    times_.breakdown = std::move(shared);
}

AppTimes SessionSink::app_times() {
    std::lock_guard lock(mutex_);
    return times_;
}

void SessionSink::take(std::deque<SinkEvent>& out) {
    std::lock_guard lock(mutex_);
    out.swap(events_);
    notify_pending_ = false;
}

void SessionSink::written(std::size_t bytes) {
    std::function<void()> on_space;
    {
        std::lock_guard lock(mutex_);
        queued_bytes_ -= std::min(bytes, queued_bytes_);
        if (on_space_ && queued_bytes_ < limit_) {
            on_space = std::move(on_space_);
            on_space_ = nullptr;
        }
    }
    space_.notify_all();
    if (on_space) on_space();
}

void SessionSink::mark_gone() {
    std::function<void()> on_space, on_peer_closed;
    {
        std::lock_guard lock(mutex_);
        gone_.store(true, std::memory_order_relaxed);
        for (auto& e : events_)
            if (e.kind == SinkEvent::Kind::file && e.fd >= 0) ::close(std::exchange(e.fd, -1));
        on_space = std::move(on_space_);
        on_space_ = nullptr;
        on_peer_closed = std::move(on_peer_closed_);
        on_peer_closed_ = nullptr;
    }
    space_.notify_all();
    if (on_space) on_space();
    if (on_peer_closed) on_peer_closed();
}

void SessionSink::on_peer_closed(std::function<void()> notify) {
    {
        std::lock_guard lock(mutex_);
        if (!peer_closed()) {
            on_peer_closed_ = std::move(notify);
            if (session_) watch_session_peer(session_, this);
            return;
        }
    }
    notify();
}

void SessionSink::mark_peer_closed() {
    std::function<void()> notify;
    {
        std::lock_guard lock(mutex_);
        peer_closed_.store(true, std::memory_order_relaxed);
        notify = std::move(on_peer_closed_);
        on_peer_closed_ = nullptr;
    }
    if (notify) notify();
}

}  // namespace gantry
