#pragma once
// The ResponseSink a session's app side answers through: a Python thread (or the session's own
// I/O thread, for a native or middleware answer) queues events; the session takes them on its
// thread and writes them. Streamed bytes are bounded (the app waits for space), and once the
// client is gone every call returns at once. No Asio here: the two ways back to the session
// (wake it, let it go) are functions of the session's own translation unit.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include <sys/types.h>

#include "http/response_sink.hpp"
#include "middleware/middleware.hpp"
#include "server/exchange_report.hpp"

namespace gantry {

class Session;
class SessionSink;

// Defined with the session, on the Asio side. Wakes the session's response writer, on its I/O thread.
void wake_session(const std::shared_ptr<Session>& session);
// Drops this reference on the session's I/O thread: the last one may be held on a Python thread,
// and a session must end on its own thread.
void release_session(std::shared_ptr<Session> session);
// Asks the session to watch its socket for the peer's EOF while `sink`'s exchange runs.
void watch_session_peer(const std::shared_ptr<Session>& session, const SessionSink* sink);

// What the app side sends, queued until the session's thread writes it.
struct SinkEvent {
    enum class Kind { head, data, file, end, fail } kind;
    ResponseHead head;  // head: the response's; end: head.headers are its trailer fields
    std::string data;
    int fd = -1;
    off_t offset = 0;
    std::size_t count = 0;
    // A data event whose bytes a middleware keeps (a static file in memory): [offset, offset +
    // count) of these are written, never copied.
    std::shared_ptr<const std::string> shared = nullptr;
};

class SessionSink final : public ResponseSink {
public:
    // `limit`: streamed bytes queued and not yet written before write_chunk/send_file wait.
    // A null session (a unit test) is never woken.
    SessionSink(std::shared_ptr<Session> session, std::size_t limit) : session_(std::move(session)), limit_(limit) {}
    ~SessionSink() override;

    // ResponseSink, called by the app side (any thread).
    void send_whole(ResponseHead head, std::string body) override;
    void start_stream(ResponseHead head) override;
    bool write_chunk(std::string data) override;
    bool write_chunk_nowait(std::string data, std::function<void()> on_space) override;
    bool send_file_nowait(int fd, off_t offset, std::size_t count, std::function<void()> on_space) override;
    bool send_file(int fd, off_t offset, std::size_t count) override;
    void finish_stream() override;
    void finish_stream_with_trailers(std::vector<HttpHeader> trailers) override;
    void fail() override;
    void fail_timeout() override;
    bool client_gone() const override { return gone_.load(std::memory_order_relaxed); }
    bool peer_closed() const override {
        return peer_closed_.load(std::memory_order_relaxed) || gone_.load(std::memory_order_relaxed);
    }
    // Also asks the session to watch for the EOF: nothing watches until someone listens.
    void on_peer_closed(std::function<void()> notify) override;
    // Session side: the peer sent EOF while the app runs.
    void mark_peer_closed();
    void app_started() override;
    void app_breakdown(AppBreakdown breakdown) override;

    // A middleware's answer with a shared or file body, queued by the session's own I/O thread:
    // never waits for space (that would block the thread), and needs no wake-up (the session
    // takes the events right after).
    void queue_answer(ResponseHead head, AnswerBody& body);

    // Session side (its I/O thread).
    AppTimes app_times();
    // Moves every queued event into `out` (which the caller has emptied).
    void take(std::deque<SinkEvent>& out);
    // `bytes` of the queued stream were written: a waiting app may go on.
    void written(std::size_t bytes);
    // The client is gone: waiting and later calls return false, queued files are closed.
    void mark_gone();

private:
    // Wakes the session once per batch of events (the session takes them all at once).
    void notify(std::unique_lock<std::mutex>& lock);
    // Waits until the queued stream is under the limit or the client is gone; false if gone.
    bool wait_for_space(std::unique_lock<std::mutex>& lock);

    std::shared_ptr<Session> session_;
    const std::size_t limit_;
    std::mutex mutex_;
    std::condition_variable space_;
    std::deque<SinkEvent> events_;
    std::size_t queued_bytes_ = 0;
    bool notify_pending_ = false;
    std::atomic<bool> gone_{false};
    bool timed_out_ = false;  // fail_timeout() was called: the app's later calls are dropped
    std::function<void()> on_space_;  // write_chunk_nowait's producer, waiting for room
    std::function<void()> on_peer_closed_;
    std::atomic<bool> peer_closed_{false};
    AppTimes times_;
};

}  // namespace gantry
