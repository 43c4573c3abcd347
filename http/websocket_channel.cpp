#include "http/websocket_channel.hpp"

#include <utility>

namespace gantry {

WebSocketChannel::WebSocketChannel(std::function<void()> wake_connection, std::size_t outbox_limit,
                                   std::size_t inbox_limit)
    : wake_connection_(std::move(wake_connection)), outbox_limit_(outbox_limit), inbox_limit_(inbox_limit) {}

std::function<void()> WebSocketChannel::queue(Outgoing event) {
    outgoing_.push_back(std::move(event));
    if (wake_pending_) return {};
    wake_pending_ = true;
    return wake_connection_;
}

void WebSocketChannel::take_outgoing(std::deque<Outgoing>& out) {
    std::lock_guard lock(mutex_);
    for (auto& event : outgoing_) out.push_back(std::move(event));
    std::vector<Outgoing>().swap(outgoing_);
    wake_pending_ = false;
}

void WebSocketChannel::written(std::size_t bytes) {
    SpaceCallback on_space;
    {
        std::lock_guard lock(mutex_);
        outbox_bytes_ = bytes >= outbox_bytes_ ? 0 : outbox_bytes_ - bytes;
        if (on_space_ && outbox_bytes_ < outbox_limit_) on_space = std::exchange(on_space_, nullptr);
    }
    if (on_space) on_space(true);
}

bool WebSocketChannel::push(WebSocketMessage message) {
    std::function<void()> ready;
    bool room;
    {
        std::lock_guard lock(mutex_);
        if (gone_) return true;
        inbox_bytes_ += message.data.size();
        inbox_.push_back(std::move(message));
        room = inbox_bytes_ < inbox_limit_;
        if (!room) connection_waits_ = true;
        ready = std::exchange(ready_, nullptr);
    }
    if (ready) ready();
    return room;
}

bool WebSocketChannel::inbox_has_room() const {
    std::lock_guard lock(mutex_);
    return gone_ || inbox_bytes_ < inbox_limit_;
}

void WebSocketChannel::disconnected(int code, std::string reason) {
    std::function<void()> ready;
    SpaceCallback on_space;
    {
        std::lock_guard lock(mutex_);
        if (gone_) return;
        gone_ = true;
        code_ = code;
        reason_ = std::move(reason);
        std::vector<Outgoing>().swap(outgoing_);
        outbox_bytes_ = 0;
        ready = std::exchange(ready_, nullptr);
        on_space = std::exchange(on_space_, nullptr);
    }
    if (ready) ready();
    if (on_space) on_space(false);
}

WebSocketChannel::Event WebSocketChannel::take() {
    Event event;
    std::function<void()> wake;
    {
        std::lock_guard lock(mutex_);
        if (inbox_head_ < inbox_.size()) {
            event.kind = Event::Kind::message;
            event.message = std::move(inbox_[inbox_head_++]);
            inbox_bytes_ -= event.message.data.size();
            if (inbox_head_ == inbox_.size()) {
                std::vector<WebSocketMessage>().swap(inbox_);  // taken: an idle WebSocket holds nothing
                inbox_head_ = 0;
            } else if (inbox_head_ >= 64 && inbox_head_ * 2 >= inbox_.size()) {
                // An app that stays a few messages behind: the taken ones are dropped now and then.
                inbox_.erase(inbox_.begin(), inbox_.begin() + static_cast<std::ptrdiff_t>(inbox_head_));
                inbox_head_ = 0;
            }
            // The connection reads again once half the inbox is free: fewer wake-ups.
            if (connection_waits_ && inbox_bytes_ <= inbox_limit_ / 2) {
                connection_waits_ = false;
                wake = wake_connection_;
            }
        } else if (gone_) {
            event.kind = Event::Kind::disconnected;
            event.code = code_;
            event.reason = reason_;
        }
    }
    if (wake) wake();
    return event;
}

bool WebSocketChannel::when_ready(std::function<void()> ready) {
    std::lock_guard lock(mutex_);
    if (inbox_head_ < inbox_.size() || gone_) return false;
    ready_ = std::move(ready);
    return true;
}

bool WebSocketChannel::accept(std::string subprotocol, std::vector<HttpHeader> headers) {
    std::function<void()> wake;
    {
        std::lock_guard lock(mutex_);
        if (gone_) return false;
        Outgoing event;
        event.kind = Outgoing::Kind::accept;
        event.subprotocol = std::move(subprotocol);
        event.headers = std::move(headers);
        wake = queue(std::move(event));
    }
    if (wake) wake();
    return true;
}

bool WebSocketChannel::deny(ResponseHead head, std::string body) {
    std::function<void()> wake;
    {
        std::lock_guard lock(mutex_);
        if (gone_) return false;
        Outgoing event;
        event.kind = Outgoing::Kind::deny;
        event.head = std::move(head);
        event.body = std::move(body);
        wake = queue(std::move(event));
    }
    if (wake) wake();
    return true;
}

bool WebSocketChannel::send(WebSocketMessage message, SpaceCallback on_space) {
    std::function<void()> wake;
    bool room;
    {
        std::lock_guard lock(mutex_);
        if (gone_) return false;
        outbox_bytes_ += message.data.size();
        Outgoing event;
        event.kind = Outgoing::Kind::message;
        event.message = std::move(message);
        wake = queue(std::move(event));
        room = outbox_bytes_ < outbox_limit_;
        if (!room) on_space_ = std::move(on_space);
    }
    if (wake) wake();
    return room;
}

bool WebSocketChannel::close(int code, std::string reason) {
    std::function<void()> wake;
    {
        std::lock_guard lock(mutex_);
        if (gone_) return false;
        Outgoing event;
        event.kind = Outgoing::Kind::close;
        event.code = code;
        event.reason = std::move(reason);
        wake = queue(std::move(event));
    }
    if (wake) wake();
    return true;
}

void WebSocketChannel::fail() {
    std::function<void()> wake;
    {
        std::lock_guard lock(mutex_);
        if (gone_) return;
        Outgoing event;
        event.kind = Outgoing::Kind::fail;
        wake = queue(std::move(event));
    }
    if (wake) wake();
}

bool WebSocketChannel::gone() const {
    std::lock_guard lock(mutex_);
    return gone_;
}

}  // namespace gantry
