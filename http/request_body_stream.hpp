#pragma once
// A request body streamed to the app while it arrives (the ASGI dispatcher asks for it): the
// connection's I/O thread pushes what it reads of the socket, the app side takes it piece by piece.
// Bounded: once kRequestBodyQueueBytes are queued and not taken the connection stops reading the
// socket, so TCP flow control slows the client down (a slow app slows the upload, memory stays
// flat). Thread-safe. No Asio and no Python: each side is woken through a function, called outside
// the lock, that gets it onto its own thread (the connection's wake, the app's `ready`).
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace gantry {

// Bytes read and not yet taken by the app before the connection stops reading: four of its pieces.
inline constexpr std::size_t kRequestBodyQueueBytes = 256 * 1024;
// The largest piece the app is given; what arrives while it is behind is joined up to this size.
inline constexpr std::size_t kRequestBodyPiece = 64 * 1024;

class RequestBodyStream {
public:
    // `wake_connection` is called (from the app's thread) when a connection that was told to wait
    // (Next::wait) may go on: there is room again, the app asked for the body, or it gave it up.
    // `read_when_asked`: read nothing until the app first asks for the body (a client that sent
    // Expect: 100-continue waits for that answer before it sends the body).
    explicit RequestBodyStream(std::function<void()> wake_connection, bool read_when_asked = false,
                               std::size_t limit = kRequestBodyQueueBytes);
    RequestBodyStream(const RequestBodyStream&) = delete;
    RequestBodyStream& operator=(const RequestBodyStream&) = delete;

    // ---- the connection's side (its I/O thread)

    enum class Next {
        read,     // read more of the socket and push() it
        wait,     // the queue is full, or the app has not asked yet (read_when_asked): don't read;
                  // wake_connection is called once that changes
        discard,  // the app takes no more (it answered, or ended): read the rest and drop it
    };
    Next next();
    // Body bytes as read; dropped once abandoned.
    void push(std::string_view bytes);
    // The whole body is here: the app's last piece says so.
    void finish();
    // The body will never be whole (the client left, or it was refused: malformed, too large):
    // the app is told the client disconnected.
    void fail();
    // Whether the app has asked for the body (take() or when_ready() was called): the point to
    // answer 100 Continue.
    bool asked() const;
    bool abandoned() const;

    // ---- the app's side (one thread at a time)

    struct Piece {
        enum class Kind {
            data,     // `bytes` (possibly empty); `more` false for the body's last piece
            pending,  // nothing yet: when_ready() says when
            failed,   // the body broke off (fail()), or was abandoned: the app is told the client is gone
        } kind = Kind::pending;
        std::string bytes;
        bool more = true;
    };
    Piece take();
    // After take() said pending: `ready` is called once, from the connection's thread, when a
    // piece, the end or a failure is there. False if one already is (`ready` is dropped: take again).
    bool when_ready(std::function<void()> ready);
    // The app takes no more of the body: what is queued is freed and the rest is discarded as it
    // arrives (the connection reads it so the next request on it can be parsed). Either side may
    // call it, any number of times.
    void abandon();

private:
    // Takes the wake-ups due after a change, to be called once the lock is released.
    std::function<void()> connection_wake_due();

    const std::size_t limit_;
    const bool read_when_asked_;
    const std::function<void()> wake_connection_;
    mutable std::mutex mutex_;
    std::deque<std::string> pieces_;
    std::size_t queued_ = 0;
    bool finished_ = false;
    bool failed_ = false;
    bool asked_ = false;
    bool abandoned_ = false;
    bool connection_waits_ = false;  // next() said wait: the next change wakes the connection
    std::function<void()> ready_;    // the app's, after take() said pending
};

}  // namespace gantry
