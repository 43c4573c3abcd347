// A request body streamed to the app (an Asio translation unit: see session.hpp).
#include "server/body_pump.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace gantry {

using boost::system::error_code;

namespace {

// A body is read in steps this large: one of the app's pieces per read when the client is fast.
constexpr std::size_t kBodyReadStep = kRequestBodyPiece;

inline auto use_ec(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

}  // namespace

std::shared_ptr<Session::BodyPump> Session::BodyPump::make(Session& session, RequestParser& parser) {
    auto pump = std::make_shared<BodyPump>(session, parser);
    // The app side wakes a parked pump from its own thread: the wake-up goes through the
    // session's executor, and finds nothing once the pump is gone.
    std::weak_ptr<BodyPump> weak = pump;
    pump->stream_ = std::make_shared<RequestBodyStream>(
        [weak, exec = session.executor()] {
            asio::post(exec, [weak] {
                if (auto p = weak.lock()) p->wake_.cancel();
            });
        },
        pump->expects_continue_);
    return pump;
}

Session::BodyPump::BodyPump(Session& session, RequestParser& parser)
    : session_(session), parser_(parser), expects_continue_(parser.expects_continue()), wake_(session.context_),
      done_(session.context_), deadline_(session.context_) {
    wake_.expires_at(Clock::time_point::max());
    done_.expires_at(Clock::time_point::max());
}

asio::awaitable<void> Session::BodyPump::run(std::shared_ptr<BodyPump> self, std::shared_ptr<Session> session) {
    bool failed = false;
    try {
        co_await self->pump();
    } catch (const std::exception& e) {  // out of memory: settle() must still see the end
        spdlog::error("request body: {}", e.what());
        failed = true;
    }
    if (failed) {
        self->left_unread_ = true;
        self->stream_->fail();
        session->close();
    }
    self->disarm_deadline();
    self->running_ = false;
    self->done_.cancel();
}

asio::awaitable<void> Session::BodyPump::settle(bool keep_alive) {
    stream_->abandon();
    if (!keep_alive && running_) {
        stopped_ = true;
        wake_.cancel();
        error_code ignored;  // a read in flight ends now: nothing more of the body is wanted
        if (reading_) session_.socket_.cancel(ignored);
    }
    while (running_) {
        error_code ec;  // operation_aborted: the end of run()
        co_await done_.async_wait(use_ec(ec));
    }
}

bool Session::BodyPump::keeps_alive() const {
    if (left_unread_ || refusal_status_) return false;
    if (!running_) return true;
    // The client waits for 100 Continue before it sends the body: without one it may never send
    // it, and what it sends next could not be told from the body.
    if (expects_continue_ && !continue_sent_) return false;
    auto left = parser_.body_remaining();
    return !left || *left + discarded_ <= kDiscardedBodyMax;
}

bool Session::BodyPump::take_continue_due() {
    if (!continue_asked_ || continue_sent_) return false;
    continue_sent_ = true;
    return true;
}

void Session::BodyPump::deliver() {
    parser_.take_body(piece_);
    if (piece_.empty()) return;
    if (stream_->abandoned())
        discarded_ += piece_.size();
    else
        stream_->push(piece_);
}

void Session::BodyPump::refuse(int status, const char* reason) {
    spdlog::debug("refused a request body from {}: {} {}", session_.peer_addr_.empty() ? "unix socket" : session_.peer_addr_,
                  status, reason);
    refusal_status_ = status;
    refusal_reason_ = reason;
    left_unread_ = true;
    stream_->fail();         // the app is told http.disconnect
    session_.on_sink_ready();  // the writer answers the refusal (or closes)
}

void Session::BodyPump::arm_deadline() {
    std::uint64_t generation = ++deadline_generation_;
    deadline_.expires_after(session_.shared_.settings.io_timeout);
    deadline_.async_wait([weak = weak_from_this(), generation](error_code ec) {
        auto self = weak.lock();
        if (ec || !self || generation != self->deadline_generation_) return;
        self->timed_out_ = true;
        error_code ignored;  // cancelling a closed socket
        self->session_.socket_.cancel(ignored);
    });
}

void Session::BodyPump::disarm_deadline() {
    ++deadline_generation_;
    deadline_.cancel();
}

asio::awaitable<void> Session::BodyPump::pump() {
    using State = RequestParser::State;
    using Next = RequestBodyStream::Next;
    Session& s = session_;
    deliver();  // what came with the head
    for (;;) {
        if (s.buffer_.size() > 0 && parser_.state() == State::header_done) {
            s.feed(parser_);
            deliver();
        }
        if (parser_.state() == State::error) co_return refuse(parser_.error_status(), parser_.error_reason());
        if (parser_.state() == State::complete) co_return stream_->finish();
        if (s.closed_ || stopped_) {
            left_unread_ = true;
            co_return stream_->fail();
        }
        Next next = stream_->next();
        if (next == Next::wait) {
            error_code ec;  // operation_aborted: woken (room again, the app asked, or the session closed)
            co_await wake_.async_wait(use_ec(ec));
            continue;
        }
        if (next == Next::discard && ((expects_continue_ && !continue_sent_) || discarded_ > kDiscardedBodyMax)) {
            left_unread_ = true;  // the connection closes after the response (a lingering close)
            co_return;
        }
        if (expects_continue_ && !continue_asked_) {
            continue_asked_ = true;
            s.on_sink_ready();  // the writer sends 100 Continue, if no head has gone out yet
        }
        // A chunk-size line or trailer that never ends (Beast does not bound them) fills the
        // buffer: refuse it instead of reading into no space.
        if (s.buffer_.size() >= s.buffer_.max_size()) co_return refuse(400, "Bad Request");
        error_code ec;
        arm_deadline();
        reading_ = true;
        co_await s.read_some(ec, kBodyReadStep);
        reading_ = false;
        disarm_deadline();
        if (ec) {
            if (timed_out_ && !s.closed_ && !stopped_) co_return refuse(408, "Request Timeout");
            left_unread_ = true;
            stream_->fail();
            // The client left mid-body (or the session closed, or settle() stopped the read).
            if (!stopped_) s.close();
            co_return;
        }
    }
}

}  // namespace gantry
