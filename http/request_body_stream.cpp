#include "http/request_body_stream.hpp"

#include <algorithm>
#include <utility>

namespace gantry {

RequestBodyStream::RequestBodyStream(std::function<void()> wake_connection, bool read_when_asked, std::size_t limit)
    : limit_(limit), read_when_asked_(read_when_asked), wake_connection_(std::move(wake_connection)) {}

std::function<void()> RequestBodyStream::connection_wake_due() {
    if (!connection_waits_) return {};
    // The connection reads again once half the queue is free, not at the first byte taken: fewer
    // wake-ups, and a read each time that fills a piece.
    const bool go_on = abandoned_ || ((asked_ || !read_when_asked_) && queued_ <= limit_ / 2);
    if (!go_on) return {};
    connection_waits_ = false;
    return wake_connection_;
}

RequestBodyStream::Next RequestBodyStream::next() {
    std::lock_guard lock(mutex_);
    if (abandoned_) return Next::discard;
    if ((read_when_asked_ && !asked_) || queued_ >= limit_) {
        connection_waits_ = true;
        return Next::wait;
    }
    return Next::read;
}

void RequestBodyStream::push(std::string_view bytes) {
    std::function<void()> ready;
    {
        std::lock_guard lock(mutex_);
        if (abandoned_ || finished_ || failed_ || bytes.empty()) return;
        queued_ += bytes.size();
        while (!bytes.empty()) {
            // Joined to the last piece while it has room: an app that is behind gets few large
            // pieces, one that keeps up gets each read as it comes.
            if (pieces_.empty() || pieces_.back().size() >= kRequestBodyPiece) pieces_.emplace_back();
            std::string& last = pieces_.back();
            std::size_t n = std::min(bytes.size(), kRequestBodyPiece - last.size());
            last.append(bytes.substr(0, n));
            bytes.remove_prefix(n);
        }
        ready = std::exchange(ready_, nullptr);
    }
    if (ready) ready();
}

void RequestBodyStream::finish() {
    std::function<void()> ready;
    {
        std::lock_guard lock(mutex_);
        if (finished_ || failed_) return;
        finished_ = true;
        ready = std::exchange(ready_, nullptr);
    }
    if (ready) ready();
}

void RequestBodyStream::fail() {
    std::function<void()> ready;
    {
        std::lock_guard lock(mutex_);
        if (finished_ || failed_) return;
        failed_ = true;
        ready = std::exchange(ready_, nullptr);
    }
    if (ready) ready();
}

bool RequestBodyStream::asked() const {
    std::lock_guard lock(mutex_);
    return asked_;
}

bool RequestBodyStream::abandoned() const {
    std::lock_guard lock(mutex_);
    return abandoned_;
}

RequestBodyStream::Piece RequestBodyStream::take() {
    Piece piece;
    std::function<void()> wake;
    {
        std::lock_guard lock(mutex_);
        asked_ = true;
        if (!pieces_.empty()) {
            piece.kind = Piece::Kind::data;
            piece.bytes = std::move(pieces_.front());
            pieces_.pop_front();
            queued_ -= piece.bytes.size();
            piece.more = !(pieces_.empty() && finished_);
        } else if (failed_ || abandoned_) {
            piece.kind = Piece::Kind::failed;
        } else if (finished_) {
            piece.kind = Piece::Kind::data;
            piece.more = false;
        }
        wake = connection_wake_due();
    }
    if (wake) wake();
    return piece;
}

bool RequestBodyStream::when_ready(std::function<void()> ready) {
    std::function<void()> wake;
    bool waits = false;
    {
        std::lock_guard lock(mutex_);
        asked_ = true;
        waits = pieces_.empty() && !finished_ && !failed_ && !abandoned_;
        if (waits) ready_ = std::move(ready);
        wake = connection_wake_due();
    }
    if (wake) wake();
    return waits;
}

void RequestBodyStream::abandon() {
    std::function<void()> wake, ready;
    {
        std::lock_guard lock(mutex_);
        if (abandoned_) return;
        abandoned_ = true;
        pieces_.clear();
        queued_ = 0;
        ready = std::exchange(ready_, nullptr);
        wake = connection_wake_due();
    }
    if (ready) ready();
    if (wake) wake();
}

}  // namespace gantry
