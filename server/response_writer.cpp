// One response written on a session's socket (an Asio translation unit: see session.hpp).
#include "server/response_writer.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "middleware/middleware.hpp"
#include "middleware/pipeline.hpp"

namespace gantry {

using boost::system::error_code;

namespace {

// One sendfile(2) call moves at most this much, so the deadline is re-armed and the bytes
// counted between calls even for a client that takes everything at once.
constexpr std::uint64_t kSendfileStep = 1 << 20;
// A file sent this much in one go yields to the thread's other connections: a fast client
// must not starve them.
constexpr std::uint64_t kSendfileYieldBytes = 8u << 20;
// A file read through the chunk hooks (a rewritten stream) goes in pieces this size: bounded
// memory per connection, and large enough that a compressor call per piece costs little.
constexpr std::size_t kRewrittenFilePiece = 64 * 1024;
// Room for a chunk-size line: 16 hex digits, CRLF and the terminator.
constexpr std::size_t kChunkLineMax = 24;

const std::string kCrlf = "\r\n";
const std::string kLastChunk = "0\r\n\r\n";

const char* method_of(const HttpRequest* r) { return r ? r->method.c_str() : ""; }
const char* target_of(const HttpRequest* r) { return r ? r->target.c_str() : ""; }

}  // namespace

asio::awaitable<bool> write_continue(Session& session) {
    static const std::string continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
    std::vector<asio::const_buffer> buffers{asio::buffer(continue_line)};
    co_return co_await session.write_all(buffers);
}

void ResponseWriter::queue_body(std::string_view bytes) {
    switch (rendered_.framing) {
    case BodyFraming::none:
        bytes = {};
        break;
    case BodyFraming::content_length:
        if (bytes.size() > remaining_) {
            bytes = bytes.substr(0, remaining_);
            truncated_ = true;
        }
        remaining_ -= bytes.size();
        break;
    case BodyFraming::chunked:
        if (!bytes.empty()) {
            char line[kChunkLineMax];
            int n = std::snprintf(line, sizeof(line), "%zx\r\n", bytes.size());
            chunk_lines_.emplace_back(line, static_cast<std::size_t>(n));
        }
        break;
    case BodyFraming::until_close:
        break;
    }
    if (!bytes.empty()) {
        if (rendered_.framing == BodyFraming::chunked) buffers_.push_back(asio::buffer(chunk_lines_.back()));
        buffers_.push_back(asio::buffer(bytes.data(), bytes.size()));
        if (rendered_.framing == BodyFraming::chunked) buffers_.push_back(asio::buffer(kCrlf));
        out_.body_bytes += bytes.size();
    }
}

void ResponseWriter::on_head(std::size_t i) {
    SinkEvent& e = events_[i];
    facts_.must_close = session_.closes_after_response();
    // send_whole queues head, data and end together: the body is known whole.
    bool is_whole = i + 2 < events_.size() && events_[i + 1].kind == SinkEvent::Kind::data &&
                    events_[i + 2].kind == SinkEvent::Kind::end && !events_[i + 1].shared &&
                    events_[i + 2].head.headers.empty();  // an end with trailers needs chunked framing
    if (hooks_.pipeline) {
        sink_.app_times().fill(hooks_.ctx->mutable_timings(), queued_at_);
        hooks_.pipeline->run_response(*hooks_.ctx, e.head, is_whole ? &events_[i + 1].data : nullptr, hooks_.entered);
        streaming_hooks_ = !is_whole;
    }
    out_.status = e.head.status;
    std::optional<std::uint64_t> whole;
    if (is_whole) whole = events_[i + 1].data.size();
    rendered_ = render_head(e.head, facts_, whole);
    remaining_ = rendered_.content_length;
    out_.headers = std::move(e.head.headers);
    buffers_.push_back(asio::buffer(rendered_.bytes));
    head_sent_ = true;
}

void ResponseWriter::on_fail(const SinkEvent& e) {
    out_.finished = true;
    if (head_sent_) {
        truncated_ = true;  // the head is out: only a close can tell the client
        return;
    }
    const bool keep_alive = facts_.keep_alive && !session_.closes_after_response();
    out_.status = e.head.status == 504 ? 504 : 500;  // 504: the app outlived --timeout
    error_bytes_ = render_error_response(out_.status, reason_phrase(out_.status), keep_alive, !facts_.is_head);
    buffers_.push_back(asio::buffer(error_bytes_));
    rendered_.keep_alive = keep_alive;
    out_.body_bytes = 0;
}

asio::awaitable<void> ResponseWriter::refuse_body(int status, const char* reason) {
    // The app was told http.disconnect; whatever it sends from now on is dropped.
    out_.finished = true;
    sink_.mark_gone();
    if (head_sent_) {
        session_.close();  // the head is out: only a close can tell the client
        co_return;
    }
    out_.status = status;
    out_.body_bytes = 0;
    error_bytes_ = render_error_response(status, reason, false, !facts_.is_head);
    buffers_.push_back(asio::buffer(error_bytes_));
    rendered_.keep_alive = false;
    co_await session_.write_all(buffers_);
}

asio::awaitable<void> ResponseWriter::send_file_through_hooks(SinkEvent& e) {
    // A middleware rewrites this stream (compression): the file's bytes must go through its chunk
    // hooks, never raw with sendfile. Read in bounded pieces. With --no-sendfile (gunicorn's, for
    // file systems where sendfile(2) misbehaves) every file goes this way, through hooks only
    // when they rewrite the stream.
    const bool through_hooks = streaming_hooks_ && hooks_.ctx->stream_rewritten();
    off_t offset = e.offset;
    std::uint64_t left = rendered_.framing == BodyFraming::none ? 0 : e.count;
    while (left > 0 && !session_.closed()) {
        file_piece_.resize(std::min<std::uint64_t>(left, kRewrittenFilePiece));
        ssize_t n = ::pread(e.fd, file_piece_.data(), file_piece_.size(), offset);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // the file is shorter than promised (or unreadable)
        file_piece_.resize(static_cast<std::size_t>(n));
        offset += n;
        left -= static_cast<std::uint64_t>(n);
        if (through_hooks) hooks_.pipeline->run_chunk(*hooks_.ctx, file_piece_, hooks_.entered);
        if (through_hooks && hooks_.ctx->response_aborted()) {
            aborted_by_hooks_ = true;
            break;
        }
        queue_body(file_piece_);
        if (!co_await session_.write_all(buffers_)) break;
    }
    ::close(std::exchange(e.fd, -1));
    if ((left > 0 || aborted_by_hooks_) && !session_.closed()) {
        truncated_ = true;
        session_.close();
    }
}

asio::awaitable<void> ResponseWriter::send_file(SinkEvent& e) {
    // The head and the file's first bytes leave in full segments (nginx's tcp_nopush): corked
    // until the file is sent, so the client is not woken for the head alone.
    const bool cork = session_.listener().family != AF_UNIX && e.count > 0 && rendered_.framing != BodyFraming::none;
    if (cork) session_.set_cork(true);
    if (!co_await session_.write_all(buffers_)) co_return;
    if ((streaming_hooks_ && hooks_.ctx->stream_rewritten()) || !session_.settings().sendfile) {
        co_await send_file_through_hooks(e);
        if (cork && !session_.closed()) session_.set_cork(false);  // or the connection's next writes wait ~200 ms
        co_return;
    }
    std::uint64_t count = e.count;
    if (rendered_.framing == BodyFraming::none) count = 0;
    if (rendered_.framing == BodyFraming::content_length) {
        if (count > remaining_) {
            count = remaining_;
            truncated_ = true;
        }
        remaining_ -= count;
    }
    const bool chunk = rendered_.framing == BodyFraming::chunked && count > 0;
    std::string line;
    if (chunk) {
        char text[kChunkLineMax];
        int n = std::snprintf(text, sizeof(text), "%llx\r\n", static_cast<unsigned long long>(count));
        line.assign(text, static_cast<std::size_t>(n));
        buffers_.push_back(asio::buffer(line));
        if (!co_await session_.write_all(buffers_)) co_return;
    }
    Socket& socket = session_.socket();
    off_t offset = e.offset;
    std::uint64_t left = count;
    std::uint64_t since_yield = 0;
    if (!socket.native_non_blocking()) socket.native_non_blocking(true);  // once per connection
    session_.arm_io_deadline();
    while (left > 0 && !session_.closed()) {
        ssize_t n = ::sendfile(socket.native_handle(), e.fd, &offset, std::min<std::uint64_t>(left, kSendfileStep));
        if (n > 0) {
            left -= static_cast<std::uint64_t>(n);
            out_.body_bytes += static_cast<std::uint64_t>(n);
            since_yield += static_cast<std::uint64_t>(n);
            session_.arm_io_deadline();
            if (since_yield >= kSendfileYieldBytes) {
                since_yield = 0;
                co_await asio::post(session_.executor(), asio::use_awaitable);
            }
            continue;
        }
        if (n == 0) break;  // the file is shorter than promised
        if (errno == EAGAIN || errno == EINTR) {
            error_code ec;
            co_await socket.async_wait(asio::socket_base::wait_write, asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                session_.close();
                break;
            }
            continue;
        }
        session_.close();
        break;
    }
    ::close(std::exchange(e.fd, -1));
    if (left > 0) {
        truncated_ = true;
        session_.close();
    }
    if (cork && !session_.closed()) session_.set_cork(false);
    if (chunk) buffers_.push_back(asio::buffer(kCrlf));
}

asio::awaitable<WrittenResponse> ResponseWriter::write() {
    const Pipeline* pipeline = hooks_.pipeline;
    while (!out_.finished && !session_.closed()) {
        // The app asked for a body its client holds back until it hears 100 Continue: the
        // interim answer, unless the final head is already out.
        if (!head_sent_ && session_.take_continue_due() && !co_await write_continue(session_)) break;
        // Before what the app queued: an app told http.disconnect may already have answered it.
        const char* reason = "";
        if (int status = session_.body_refusal(reason)) {
            co_await refuse_body(status, reason);
            break;
        }
        sink_.take(events_);
        if (events_.empty()) {
            co_await session_.wait_for_sink();
            continue;
        }
        std::size_t data_bytes = 0;
        chunk_lines_.clear();
        for (std::size_t i = 0; i < events_.size() && !session_.closed() && !aborted_by_hooks_; ++i) {
            SinkEvent& e = events_[i];
            if (e.kind == SinkEvent::Kind::head && e.head.status < 200) {
                // An interim (1xx) status as the final answer would leave the client waiting for
                // another: the app is broken, answer 500.
                spdlog::error("{} {}: the app answered with interim status {}; sending 500", method_of(logged_),
                              target_of(logged_), e.head.status);
                e.kind = SinkEvent::Kind::fail;
            }
            switch (e.kind) {
            case SinkEvent::Kind::head:
                on_head(i);
                break;
            case SinkEvent::Kind::data:
                data_bytes += e.data.size();
                if (streaming_hooks_ && !e.data.empty()) {
                    pipeline->run_chunk(*hooks_.ctx, e.data, hooks_.entered);
                    if (hooks_.ctx->response_aborted()) {
                        aborted_by_hooks_ = true;
                        break;
                    }
                }
                // A middleware's shared bytes skip the chunk hooks: only middlewares above the one
                // that answered see them, and they never rewrite its body (see docs/static.md).
                queue_body(e.shared ? std::string_view(*e.shared).substr(static_cast<std::size_t>(e.offset), e.count)
                                    : std::string_view(e.data));
                break;
            case SinkEvent::Kind::file:
                data_bytes += std::min(e.count, session_.settings().stream_buffer_bytes);
                co_await send_file(e);
                break;
            case SinkEvent::Kind::end:
                if (streaming_hooks_) {
                    // The chain's last bytes (a compressor's end of stream) before the end.
                    pipeline->run_stream_end(*hooks_.ctx, stream_tail_, hooks_.entered);
                    if (hooks_.ctx->response_aborted()) {
                        aborted_by_hooks_ = true;
                        break;
                    }
                    queue_body(stream_tail_);
                }
                if (rendered_.framing == BodyFraming::chunked) {
                    if (e.head.headers.empty()) {
                        buffers_.push_back(asio::buffer(kLastChunk));
                    } else {
                        // The trailer section (RFC 9112 7.1.2), after the last chunk.
                        trailer_bytes_ = "0\r\n";
                        for (const auto& h : e.head.headers) trailer_bytes_.append(h.name).append(": ").append(h.value).append("\r\n");
                        trailer_bytes_ += "\r\n";
                        buffers_.push_back(asio::buffer(trailer_bytes_));
                    }
                }
                if (rendered_.framing == BodyFraming::content_length && remaining_ > 0) truncated_ = true;
                out_.finished = true;
                session_.response_complete();
                break;
            case SinkEvent::Kind::fail:
                on_fail(e);
                session_.response_complete();
                break;
            }
        }
        if (!session_.closed()) co_await session_.write_all(buffers_);
        if (aborted_by_hooks_) {
            // What the hooks passed before they gave up has gone out; the client learns of the
            // cut from the close (no last chunk, or fewer bytes than until-close would have).
            out_.finished = true;
            truncated_ = true;
            if (!session_.closed()) session_.close();
        }
        sink_.written(data_bytes);
        for (auto& e : events_)  // files not sent because the connection failed mid-batch
            if (e.kind == SinkEvent::Kind::file && e.fd >= 0) ::close(std::exchange(e.fd, -1));
        events_.clear();
    }
    out_.keep_alive = rendered_.keep_alive && !truncated_ && !session_.closed();
    if (truncated_)
        spdlog::warn("{} {}: response cut short (fewer or more body bytes than its Content-Length, or the app or a middleware failed "
                     "mid-stream); connection closed",
                     method_of(logged_), target_of(logged_));
    co_return std::move(out_);
}

}  // namespace gantry
