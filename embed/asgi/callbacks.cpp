// Calling the app: the scope, one task per request, receive/send, the lifespan protocol.
#include "embed/asgi/callbacks.hpp"

#include <algorithm>
#include <cerrno>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "embed/asgi/errors.hpp"
#include "embed/asgi/messages.hpp"
#include "embed/asgi/websocket_exchange.hpp"
#include "http/header_fields.hpp"
#include "http/request_body_stream.hpp"
#include "http/text.hpp"

namespace gantry::asgi {

using py::Ref;

namespace {

constexpr std::size_t kBodyPiece = 64 * 1024;  // a spilled request body reaches the app in pieces of this

constexpr std::size_t kHeaderNameCacheLimit = 256;  // distinct request header names kept as bytes

}  // namespace

// ---- one HTTP request ---------------------------------------------------------------------------

class HttpExchange final : public Channel, public std::enable_shared_from_this<HttpExchange> {
public:
    HttpExchange(AsgiApp& app, std::unique_ptr<AppCall> call, std::list<AsgiApp::Running>::iterator running)
        : app_(app), call_(std::move(call)), running_(running) {}

    PyObject* receive(GilHeld& gil) override;
    PyObject* send(GilHeld& gil, PyObject* message) override;
    void task_done(GilHeld& gil, PyObject* task) override;

    // The app could not even start (the call raised, or gave no awaitable): the pending error is logged.
    void failed_to_start(GilHeld& gil);
    // The app's task, kept until it ends (for the --timeout cancel).
    void started(Ref task) { task_ = std::move(task); }
    // Over --timeout (already answered 504 by the watchdog): the task's stack is logged and the
    // task cancelled. Nothing if it has ended meanwhile.
    void time_out(GilHeld& gil, double seconds, std::chrono::milliseconds limit);
    const HttpRequest& request() const { return call_->request; }
    std::list<AsgiApp::Running>::iterator running() const { return running_; }

private:
    enum class Phase { before_start, head_held, streaming, complete };

    bool client_gone() const {
        const auto& sink = phase_ == Phase::streaming ? stream_.sink() : call_->response.sink();
        return !sink || sink->client_gone();
    }
    PyObject* next_body_message(GilHeld& gil);
    // The next piece of a streamed body as a message (http.request, or http.disconnect if the
    // body broke off); null without an error set when nothing has arrived yet.
    PyObject* streamed_body_message(GilHeld& gil, RequestBodyStream& stream);
    // A receive() waiting for the streamed body: the connection has read more.
    void body_ready(GilHeld& gil);
    std::function<void()> body_ready_callback();
    PyObject* start(GilHeld& gil, PyObject* m);
    PyObject* body(GilHeld& gil, PyObject* m);
    PyObject* pathsend(GilHeld& gil, PyObject* m);
    PyObject* trailers(GilHeld& gil, PyObject* m);
    PyObject* zerocopy(GilHeld& gil, PyObject* m);
    // After a body part was queued (room: whether the buffer has room left): finishes the
    // response when no more is to come; the awaitable send() returns.
    PyObject* after_part(GilHeld& gil, bool room, bool more);
    std::function<void()> space_callback();
    bool client_accepts_trailers() const;
    // --timing full: the breakdown goes to the sink before the response's final call. Called from
    // send(), i.e. in the app task's context, where gantry.django_timing left the request's record.
    void report_timing(GilHeld& gil);
    void complete(GilHeld& gil);
    void space_available(GilHeld& gil);
    void peer_went_away(GilHeld& gil);
    // `gone_quietly`: the app returned without answering (no exception), which is no error
    // once its client has gone.
    void answer_error(GilHeld& gil, const std::string& what, bool gone_quietly = false);

    AsgiApp& app_;
    std::unique_ptr<AppCall> call_;
    std::list<AsgiApp::Running>::iterator running_;
    ResponseStream stream_;
    ResponseHead head_;
    Phase phase_ = Phase::before_start;
    bool body_given_ = false;    // the whole request body has reached the app
    bool body_broken_ = false;   // a streamed body broke off: every receive() is http.disconnect
    bool receive_waits_for_body_ = false;  // pending_receive_ waits for a streamed piece
    std::uint64_t body_offset_ = 0;
    Ref pending_receive_;        // the Future of a receive() waiting for the disconnect
    // The Futures of the send()s waiting for room in the write buffer: one, unless the app sends
    // from several tasks at once (each one's data is queued; all go on when there is room).
    std::vector<Ref> pending_sends_;
    bool watching_peer_ = false; // on_peer_closed asked of the sink
    bool trailers_expected_ = false;  // the start said "trailers": True
    bool awaiting_trailers_ = false;  // the body is complete; the trailers are to come
    std::vector<HttpHeader> trailer_fields_;
    Ref task_;                   // the app's task while it runs
    bool timed_out_ = false;     // cancelled by --timeout: its end is not an app error
};

PyObject* HttpExchange::next_body_message(GilHeld& gil) {
    RequestBody& body = call_->request.body;
    const MessageKeys& k = app_.keys();
    Ref m(message(gil, k, k.http_request));
    if (!m) return nullptr;
    std::string piece;
    bool more = false;
    if (body.in_memory()) {
        body_given_ = true;
        Ref b(bytes_of(gil, body.memory()));
        if (!b || PyDict_SetItem(m.get(), k.body.get(), b.get()) < 0) return nullptr;
    } else {
        // A spilled body: read in pieces, each an already complete receive (a local file read).
        std::uint64_t left = body.size() - std::min<std::uint64_t>(body_offset_, body.size());
        piece.resize(static_cast<std::size_t>(std::min<std::uint64_t>(left, kBodyPiece)));
        ssize_t n = 0;
        do {
            n = ::pread(body.file_descriptor(), piece.data(), piece.size(), static_cast<off_t>(body_offset_));
        } while (n < 0 && errno == EINTR);
        if (n < 0) return PyErr_SetFromErrno(PyExc_OSError);
        piece.resize(static_cast<std::size_t>(n));
        body_offset_ += static_cast<std::uint64_t>(n);
        more = n > 0 && body_offset_ < body.size();
        body_given_ = !more;
        Ref b(bytes_of(gil, piece));
        if (!b || PyDict_SetItem(m.get(), k.body.get(), b.get()) < 0) return nullptr;
    }
    if (PyDict_SetItem(m.get(), k.more_body.get(), more ? Py_True : Py_False) < 0) return nullptr;
    return app_.types().completed(gil, m.get());
}

PyObject* HttpExchange::streamed_body_message(GilHeld& gil, RequestBodyStream& stream) {
    RequestBodyStream::Piece piece = stream.take();
    const MessageKeys& k = app_.keys();
    if (piece.kind == RequestBodyStream::Piece::Kind::pending) return nullptr;
    if (piece.kind == RequestBodyStream::Piece::Kind::failed) {
        body_given_ = body_broken_ = true;
        return message(gil, k, k.http_disconnect);
    }
    Ref m(message(gil, k, k.http_request));
    Ref b(m ? bytes_of(gil, piece.bytes) : nullptr);
    if (!b || PyDict_SetItem(m.get(), k.body.get(), b.get()) < 0 ||
        PyDict_SetItem(m.get(), k.more_body.get(), piece.more ? Py_True : Py_False) < 0)
        return nullptr;
    if (!piece.more) body_given_ = true;
    return m.release();
}

std::function<void()> HttpExchange::body_ready_callback() {
    std::weak_ptr<HttpExchange> weak = weak_from_this();
    return [weak, post = app_.post()] {
        post([weak](GilHeld& gil) {
            if (auto exchange = weak.lock()) exchange->body_ready(gil);
        });
    };
}

void HttpExchange::body_ready(GilHeld& gil) {
    if (!pending_receive_ || !receive_waits_for_body_) return;
    RequestBodyStream& stream = *call_->request.body_stream;
    // A receive() the app cancelled (a timeout around it) must not take a piece: the next one gets it.
    Ref done(PyObject_CallMethod(pending_receive_.get(), "done", nullptr));
    if (!done || done.get() == Py_True) {
        if (!done) PyErr_Clear();
        pending_receive_.reset();
        receive_waits_for_body_ = false;
        return;
    }
    Ref m(streamed_body_message(gil, stream));
    if (!m && !PyErr_Occurred()) {
        if (stream.when_ready(body_ready_callback())) return;  // still nothing: woken again
        m = Ref(streamed_body_message(gil, stream));          // it came meanwhile
    }
    receive_waits_for_body_ = false;
    if (m) return resolve(gil, pending_receive_, m.get());
    PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    Ref t(type), v(value), b(tb);
    resolve(gil, pending_receive_, nullptr, v ? v.get() : PyExc_RuntimeError);
}

PyObject* HttpExchange::receive(GilHeld& gil) {
    if (pending_receive_) {
        // The last receive() was cancelled by the app (a timeout around it): this one replaces it.
        Ref done(PyObject_CallMethod(pending_receive_.get(), "done", nullptr));
        if (!done) return nullptr;
        if (done.get() == Py_True) pending_receive_.reset();
    }
    RequestBodyStream* stream = call_->request.body_stream.get();
    if (stream && !body_given_ && phase_ != Phase::complete) {
        if (pending_receive_) return PyErr_Format(PyExc_RuntimeError, "receive() called again before the last one returned");
        // Already read from the socket: a completed awaitable. Otherwise a Future, resolved when
        // the connection has read more (asking also lets it send 100 Continue).
        for (;;) {
            Ref m(streamed_body_message(gil, *stream));
            if (m) return app_.types().completed(gil, m.get());
            if (PyErr_Occurred()) return nullptr;
            if (stream->when_ready(body_ready_callback())) break;
        }
        Ref future(PyObject_CallMethod(app_.loop(), "create_future", nullptr));
        if (!future) return nullptr;
        pending_receive_ = Ref::borrow(future.get());
        receive_waits_for_body_ = true;
        return future.release();
    }
    if (!body_given_ && phase_ != Phase::complete) return next_body_message(gil);
    const auto& sink = phase_ == Phase::streaming ? stream_.sink() : call_->response.sink();
    if (phase_ == Phase::complete || body_broken_ || client_gone() || (sink && sink->peer_closed())) {
        Ref m(message(gil, app_.keys(), app_.keys().http_disconnect));
        return m ? app_.types().completed(gil, m.get()) : nullptr;
    }
    // Nothing more until the response is done or the client closes: a Future, resolved with
    // http.disconnect then.
    if (pending_receive_) return PyErr_Format(PyExc_RuntimeError, "receive() called again before the last one returned");
    Ref future(PyObject_CallMethod(app_.loop(), "create_future", nullptr));
    if (!future) return nullptr;
    pending_receive_ = Ref::borrow(future.get());
    receive_waits_for_body_ = false;
    if (sink && !watching_peer_) {
        watching_peer_ = true;
        std::weak_ptr<HttpExchange> weak = weak_from_this();
        sink->on_peer_closed([weak, post = app_.post()] {
            post([weak](GilHeld& gil) {
                if (auto exchange = weak.lock()) exchange->peer_went_away(gil);
            });
        });
    }
    return future.release();
}

PyObject* HttpExchange::send(GilHeld& gil, PyObject* m) {
    std::string_view type;
    PyObject* type_object = message_type(gil, app_.keys(), m, type);
    if (!type_object) return nullptr;
    if (phase_ != Phase::complete && client_gone()) {
        PyErr_SetString(app_.client_disconnected(), "the client has disconnected");
        return nullptr;
    }
    const MessageKeys& k = app_.keys();
    if (type_object == k.http_response_body.get() || type == "http.response.body") return body(gil, m);
    if (type_object == k.http_response_start.get() || type == "http.response.start") return start(gil, m);
    if (type_object == k.http_response_zerocopysend.get() || type == "http.response.zerocopysend") return zerocopy(gil, m);
    if (type_object == k.http_response_pathsend.get() || type == "http.response.pathsend") return pathsend(gil, m);
    if (type_object == k.http_response_trailers.get() || type == "http.response.trailers") return trailers(gil, m);
    return PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message type %R for an HTTP connection", type_object);
}

PyObject* HttpExchange::start(GilHeld& gil, PyObject* m) {
    const MessageKeys& k = app_.keys();
    if (phase_ != Phase::before_start) return unexpected_message(gil, "'http.response.body'", item(m, k.type));
    PyObject* status = item(m, k.status);
    long code = status && PyLong_Check(status) ? PyLong_AsLong(status) : -1;
    if (code < 100 || code > 999) {
        if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "http.response.start needs an int 'status' of 3 digits, got %R", status ? status : Py_None);
        return nullptr;
    }
    ResponseHead head;
    head.status = static_cast<int>(code);
    if (PyObject* headers = item(m, k.headers); headers && !read_headers(gil, headers, head.headers)) return nullptr;
    if (PyObject* t = item(m, k.trailers)) {
        int yes = PyObject_IsTrue(t);
        if (yes < 0) return nullptr;
        trailers_expected_ = yes == 1;
    }
    head_ = std::move(head);
    phase_ = Phase::head_held;  // sent with the first body message: a one-message body goes out whole
    return app_.types().completed(gil, nullptr);
}

PyObject* HttpExchange::trailers(GilHeld& gil, PyObject* m) {
    const MessageKeys& k = app_.keys();
    if (!awaiting_trailers_)
        return unexpected_message(gil, trailers_expected_ ? "'http.response.body'" : "no trailers (the start did not announce them)",
                                  item(m, k.type));
    if (PyObject* headers = item(m, k.headers); headers && !read_headers(gil, headers, trailer_fields_)) return nullptr;
    bool more = false;
    if (PyObject* mt = item(m, k.more_trailers)) {
        int t = PyObject_IsTrue(mt);
        if (t < 0) return nullptr;
        more = t == 1;
    }
    if (more) return app_.types().completed(gil, nullptr);
    awaiting_trailers_ = false;
    // RFC 9110 6.5: trailers only for a client that said it accepts them (TE: trailers).
    report_timing(gil);
    if (client_accepts_trailers()) std::move(stream_).finish_with_trailers(std::move(trailer_fields_));
    else std::move(stream_).finish();
    complete(gil);
    return app_.types().completed(gil, nullptr);
}

PyObject* HttpExchange::body(GilHeld& gil, PyObject* m) {
    const MessageKeys& k = app_.keys();
    if (phase_ == Phase::before_start) return unexpected_message(gil, "'http.response.start'", item(m, k.type));
    if (phase_ == Phase::complete)
        return PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message 'http.response.body' sent after the response was complete");
    std::string data;
    if (PyObject* b = item(m, k.body); b && !bytes_like(gil, b, data, "'body'")) return nullptr;
    bool more = false;
    if (PyObject* mb = item(m, k.more_body)) {
        int t = PyObject_IsTrue(mb);
        if (t < 0) return nullptr;
        more = t == 1;
    }
    if (awaiting_trailers_)
        return PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message 'http.response.body' sent after the last body message; expected 'http.response.trailers'");
    if (phase_ == Phase::head_held) {
        if (!more && !trailers_expected_) {
            report_timing(gil);
            std::move(call_->response).send_whole(std::move(head_), std::move(data));
            complete(gil);
            return app_.types().completed(gil, nullptr);
        }
        stream_ = std::move(call_->response).start_stream(std::move(head_));
        phase_ = Phase::streaming;
    }
    bool room = true;
    if (!data.empty()) room = stream_.write_chunk_nowait(std::move(data), space_callback());
    if (!more && trailers_expected_) {
        awaiting_trailers_ = true;  // the end goes out with the trailers
        more = true;
    }
    return after_part(gil, room, more);
}

bool HttpExchange::client_accepts_trailers() const {
    bool yes = false;
    for (const HttpHeader& h : call_->request.headers)
        if (iequals(h.name, "TE"))
            for_each_list_element(h.value, [&](std::string_view coding) {
                if (iequals(coding.substr(0, coding.find(';')), "trailers")) yes = true;
            });
    return yes;
}

std::function<void()> HttpExchange::space_callback() {
    std::weak_ptr<HttpExchange> weak = weak_from_this();
    return [weak, post = app_.post()] {
        post([weak](GilHeld& gil) {
            if (auto exchange = weak.lock()) exchange->space_available(gil);
        });
    };
}

PyObject* HttpExchange::pathsend(GilHeld& gil, PyObject* m) {
    // The whole body is the file (the pathsend extension): its Content-Length, then sendfile(2).
    const MessageKeys& k = app_.keys();
    if (phase_ != Phase::head_held)
        return phase_ == Phase::before_start ? unexpected_message(gil, "'http.response.start'", item(m, k.type))
                                             : unexpected_message(gil, "a body message (pathsend is the whole body)", item(m, k.type));
    PyObject* path = item(m, k.path);
    Ref encoded(path && PyUnicode_Check(path) ? PyUnicode_EncodeFSDefault(path) : nullptr);
    if (!encoded) {
        if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "http.response.pathsend needs a str 'path', got %R", path ? path : Py_None);
        return nullptr;
    }
    int fd = ::open(PyBytes_AS_STRING(encoded.get()), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return PyErr_Format(PyExc_ValueError, "http.response.pathsend: %R is not a regular file", path);
    }
    if (!find_field(head_.headers, "Content-Length")) head_.headers.push_back({"Content-Length", std::to_string(st.st_size)});
    stream_ = std::move(call_->response).start_stream(std::move(head_));
    phase_ = Phase::streaming;
    bool room = stream_.send_file_nowait(fd, 0, static_cast<std::size_t>(st.st_size), space_callback());
    return after_part(gil, room, false);
}

PyObject* HttpExchange::zerocopy(GilHeld& gil, PyObject* m) {
    // A part of the body from the app's open file (the zerocopysend extension), sent with
    // sendfile(2) from a duplicate of its descriptor: the app's file position is not moved.
    const MessageKeys& k = app_.keys();
    if (phase_ == Phase::before_start) return unexpected_message(gil, "'http.response.start'", item(m, k.type));
    if (phase_ == Phase::complete)
        return PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message 'http.response.zerocopysend' sent after the response was complete");
    PyObject* file = item(m, k.file);
    int fd = file ? PyObject_AsFileDescriptor(file) : -1;
    if (fd < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "http.response.zerocopysend needs a 'file' with a fileno()");
        return nullptr;
    }
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return PyErr_Format(PyExc_ValueError, "http.response.zerocopysend: the file is not a regular file");
    long long offset = -1, count = -1;
    if (PyObject* o = item(m, k.offset); o && o != Py_None && (offset = PyLong_AsLongLong(o)) < 0 && PyErr_Occurred()) return nullptr;
    if (PyObject* c = item(m, k.count); c && c != Py_None && (count = PyLong_AsLongLong(c)) < 0 && PyErr_Occurred()) return nullptr;
    if (offset < 0) offset = ::lseek(fd, 0, SEEK_CUR);  // omitted: from the file's position
    if (offset < 0) offset = 0;
    long long left = st.st_size > offset ? st.st_size - offset : 0;
    if (count < 0 || count > left) count = left;
    bool more = false;
    if (PyObject* mb = item(m, k.more_body)) {
        int t = PyObject_IsTrue(mb);
        if (t < 0) return nullptr;
        more = t == 1;
    }
    if (phase_ == Phase::head_held) {
        if (!more && !find_field(head_.headers, "Content-Length"))
            head_.headers.push_back({"Content-Length", std::to_string(count)});
        stream_ = std::move(call_->response).start_stream(std::move(head_));
        phase_ = Phase::streaming;
    }
    bool room = true;
    if (count > 0) {
        int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (own < 0) return PyErr_SetFromErrno(PyExc_OSError);
        room = stream_.send_file_nowait(own, static_cast<off_t>(offset), static_cast<std::size_t>(count), space_callback());
    }
    return after_part(gil, room, more);
}

PyObject* HttpExchange::after_part(GilHeld& gil, bool room, bool more) {
    if (!more) {
        report_timing(gil);
        std::move(stream_).finish();
        complete(gil);
        return app_.types().completed(gil, nullptr);
    }
    if (room) return app_.types().completed(gil, nullptr);
    if (client_gone()) {
        PyErr_SetString(app_.client_disconnected(), "the client has disconnected");
        return nullptr;
    }
    // The write buffer is full: this send waits until the connection has written some of it.
    Ref future(PyObject_CallMethod(app_.loop(), "create_future", nullptr));
    if (!future) return nullptr;
    pending_sends_.push_back(Ref::borrow(future.get()));
    return future.release();
}

void HttpExchange::peer_went_away(GilHeld& gil) {
    if (!pending_receive_) return;
    Ref m(message(gil, app_.keys(), app_.keys().http_disconnect));
    resolve(gil, pending_receive_, m.get());
}

void HttpExchange::space_available(GilHeld& gil) {
    if (pending_sends_.empty()) return;
    auto waiting = std::move(pending_sends_);
    pending_sends_.clear();
    Ref exc(client_gone() ? PyObject_CallFunction(app_.client_disconnected(), "s", "the client has disconnected") : nullptr);
    if (PyErr_Occurred()) PyErr_Clear();
    for (Ref& future : waiting) resolve(gil, future, nullptr, exc.get());
}

void HttpExchange::report_timing(GilHeld& gil) {
    const DjangoTiming* timing = app_.timing();
    if (!timing) return;
    const auto& sink = phase_ == Phase::streaming ? stream_.sink() : call_->response.sink();
    if (sink) timing->report(gil, *sink);
}

void HttpExchange::complete(GilHeld& gil) {
    phase_ = Phase::complete;
    if (pending_receive_) {
        Ref m(message(gil, app_.keys(), app_.keys().http_disconnect));
        resolve(gil, pending_receive_, m.get());
    }
}

void HttpExchange::answer_error(GilHeld&, const std::string& what, bool gone_quietly) {
    const HttpRequest& r = call_->request;
    if (phase_ == Phase::streaming) {
        if (!stream_.sink() || !stream_.sink()->client_gone())
            spdlog::error("Error handling request {} {} (after the response started: connection closed)\n{}", r.method,
                          r.target, what);
        std::move(stream_).fail();
    } else if (phase_ != Phase::complete) {
        // An app that returns without answering once told http.disconnect did what ASGI asks
        // (uvicorn does not log it either); an exception is still an error.
        if (gone_quietly && (body_broken_ || client_gone()))
            spdlog::debug("{} {}: the client left before the response", r.method, r.target);
        else
            spdlog::error("Error handling request {} {}\n{}", r.method, r.target, what);
        std::move(call_->response).fail();
    } else {
        spdlog::error("Error in the app after its response to {} {}\n{}", r.method, r.target, what);
    }
    phase_ = Phase::complete;
}

void HttpExchange::failed_to_start(GilHeld& gil) {
    answer_error(gil, py::take_exception_text(gil));
    app_.finished(gil, *this);
}

void HttpExchange::time_out(GilHeld& gil, double seconds, std::chrono::milliseconds limit) {
    if (!task_ || timed_out_) return;
    timed_out_ = true;
    std::string stack = app_.task_stack(gil, task_.get());
    spdlog::error("Request timeout: {} {} ran {:.1f} s, over --timeout {:g} s: its task is cancelled, the worker goes on. "
                  "Its coroutine stack (most recent call last):\n{}",
                  request().method, request().target, seconds, std::chrono::duration<double>(limit).count(), stack);
    Ref cancelled(PyObject_CallMethod(task_.get(), "cancel", nullptr));
    if (!cancelled) PyErr_Clear();
}

void HttpExchange::task_done(GilHeld& gil, PyObject* task) {
    Ref cancelled(PyObject_CallMethod(task, "cancelled", nullptr));
    if (cancelled && cancelled.get() == Py_True) {
        if (app_.cancelling() || timed_out_) {
            // Cancelled by the server (the worker stopping, or --timeout, logged then): not an app error.
            spdlog::debug("{} {}: cancelled {}", request().method, request().target,
                          timed_out_ ? "after --timeout" : "as the worker stopped");
            if (phase_ == Phase::streaming) std::move(stream_).fail();
            else if (phase_ != Phase::complete) std::move(call_->response).fail();
            phase_ = Phase::complete;
        } else {
            answer_error(gil, "the app's task was cancelled");
        }
    } else {
        Ref exc(cancelled ? PyObject_CallMethod(task, "exception", nullptr) : nullptr);
        if (!exc) {
            answer_error(gil, py::take_exception_text(gil));
        } else if (exc.get() != Py_None) {
            if (PyErr_GivenExceptionMatches(exc.get(), app_.client_disconnected())) {
                // The app stopped because the client left (spec 2.4): not an error.
                spdlog::debug("{} {}: the client disconnected", request().method, request().target);
                if (phase_ == Phase::streaming) std::move(stream_).fail();
                else if (phase_ != Phase::complete) std::move(call_->response).fail();
                phase_ = Phase::complete;
            } else {
                answer_error(gil, exception_text(gil, exc.get()));
            }
        } else if (timed_out_) {
            // The app caught the cancel and returned: the client has had its 504 already.
            if (phase_ == Phase::streaming) std::move(stream_).fail();
            else if (phase_ != Phase::complete) std::move(call_->response).fail();
            phase_ = Phase::complete;
        } else if (awaiting_trailers_) {
            // The body is whole; the promised trailers never came: the end goes out without them.
            spdlog::warn("{} {}: the app announced trailers and returned without sending them", request().method,
                         request().target);
            std::move(stream_).finish();
            phase_ = Phase::complete;
        } else if (phase_ != Phase::complete) {
            answer_error(gil, phase_ == Phase::streaming ? "ASGI callable returned without completing the response"
                                                         : "ASGI callable returned without sending a response",
                         true);
        }
    }
    if (PyErr_Occurred()) PyErr_Clear();
    // Nothing of the request may keep the task alive now (the futures reference its callbacks).
    Ref disconnect(message(gil, app_.keys(), app_.keys().http_disconnect));
    resolve(gil, pending_receive_, disconnect.get());
    // A send still waiting belongs to another task of the app (one the task did not await):
    // it is cancelled, not left pending for ever.
    for (Ref& future : pending_sends_) {
        Ref cancelled(PyObject_CallMethod(future.get(), "cancel", nullptr));
        if (!cancelled) PyErr_Clear();
    }
    pending_sends_.clear();
    task_.reset();  // the loop still holds the task while it calls this
    app_.finished(gil, *this);
}

// ---- the lifespan -------------------------------------------------------------------------------

class Lifespan final : public Channel, public std::enable_shared_from_this<Lifespan> {
public:
    Lifespan(AsgiApp& app, std::string mode, std::function<void(bool, std::string)> started, PyObject* unsupported)
        : app_(app), mode_(std::move(mode)), started_(std::move(started)), unsupported_(Ref::borrow(unsupported)) {}

    PyObject* receive(GilHeld& gil) override {
        if (!startup_sent_) {
            startup_sent_ = true;
            Ref m(message(gil, app_.keys(), app_.keys().lifespan_startup));
            return m ? app_.types().completed(gil, m.get()) : nullptr;
        }
        if (stopping_ && !shutdown_sent_) {
            shutdown_sent_ = true;
            Ref m(message(gil, app_.keys(), app_.keys().lifespan_shutdown));
            return m ? app_.types().completed(gil, m.get()) : nullptr;
        }
        Ref future(PyObject_CallMethod(app_.loop(), "create_future", nullptr));
        if (!future) return nullptr;
        pending_receive_ = Ref::borrow(future.get());
        return future.release();
    }

    PyObject* send(GilHeld& gil, PyObject* m) override {
        std::string_view type;
        PyObject* type_object = message_type(gil, app_.keys(), m, type);
        if (!type_object) return nullptr;
        if (type == "lifespan.startup.complete" || type == "lifespan.startup.failed") {
            if (startup_reported_) return unexpected_message(gil, "'lifespan.shutdown.complete'", type_object);
            bool ok = type == "lifespan.startup.complete";
            report_startup(ok, ok ? "" : text_of(gil, m));
        } else if (type == "lifespan.shutdown.complete" || type == "lifespan.shutdown.failed") {
            if (type == "lifespan.shutdown.failed") spdlog::error("ASGI lifespan shutdown failed: {}", text_of(gil, m));
            report_stopped();
        } else {
            return PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message type %R for the lifespan", type_object);
        }
        return app_.types().completed(gil, nullptr);
    }

    void task_done(GilHeld& gil, PyObject* task) override {
        done_ = true;
        Ref exc(PyObject_CallMethod(task, "exception", nullptr));  // a cancelled task raises here
        std::string text;
        if (!exc) text = py::take_exception_text(gil);
        else if (exc.get() != Py_None) text = exception_text(gil, exc.get());
        const bool failed = !exc || exc.get() != Py_None;
        if (!startup_reported_) {
            if (failed && mode_ == "on") {
                report_startup(false, text);
            } else {
                // An app without lifespan support raises at the first message, or returns.
                Ref why(failed && exc ? PyObject_CallOneArg(unsupported_.get(), exc.get()) : nullptr);
                const char* s = why ? PyUnicode_AsUTF8(why.get()) : nullptr;
                spdlog::info("{}", s ? s : "ASGI 'lifespan' protocol appears unsupported");
                report_startup(true, "");
            }
        } else if (failed) {
            spdlog::error("The ASGI lifespan task failed\n{}", text);
        }
        if (PyErr_Occurred()) PyErr_Clear();
        pending_receive_.reset();
        report_stopped();  // a shutdown asked for (or still to come) has nothing more to wait for
    }

    void shutdown(GilHeld& gil, std::function<void()> stopped) {
        stopped_ = std::move(stopped);
        if (done_ || !startup_ok_) return report_stopped();
        stopping_ = true;
        if (pending_receive_) {
            shutdown_sent_ = true;
            Ref m(message(gil, app_.keys(), app_.keys().lifespan_shutdown));
            resolve(gil, pending_receive_, m.get());
        }
    }

private:
    std::string text_of(GilHeld&, PyObject* m) {
        PyObject* text = item(m, app_.keys().message);
        const char* s = text && PyUnicode_Check(text) ? PyUnicode_AsUTF8(text) : nullptr;
        if (!s) PyErr_Clear();
        return s ? s : "";
    }
    void report_startup(bool ok, std::string text) {
        startup_reported_ = true;
        startup_ok_ = ok;
        if (auto started = std::move(started_)) started(ok, std::move(text));
    }
    void report_stopped() {
        if (!stopped_) return;
        auto stopped = std::move(stopped_);
        stopped_ = nullptr;
        stopped();
    }

    AsgiApp& app_;
    std::string mode_;
    std::function<void(bool, std::string)> started_;
    std::function<void()> stopped_;
    Ref unsupported_;
    Ref pending_receive_;
    bool startup_sent_ = false, startup_reported_ = false, startup_ok_ = false;
    bool stopping_ = false, shutdown_sent_ = false, done_ = false;
};

// ---- the app ------------------------------------------------------------------------------------

AsgiApp::AsgiApp(GilHeld& gil, PyObject* app, PyObject* loop, const ExecutorSettings& settings, PostToLoop post,
                 std::function<void(GilHeld&)> on_finished)
    : types_(gil), keys_(gil), app_(Ref::borrow(app)), loop_(Ref::borrow(loop)), root_path_(settings.root_path),
      lifespan_mode_(settings.lifespan), post_(std::move(post)), on_finished_(std::move(on_finished)) {
    if (settings.timing_full) timing_ = DjangoTiming::find(gil);
    auto fail = [&gil](const char* what) {
        throw AppLoadError(std::string("cannot start the ASGI executor (") + what + "):\n" + py::take_exception_text(gil));
    };
    if (!types_.ready()) fail("types");
    create_task_ = Ref(PyObject_GetAttrString(loop, "create_task"));
    Ref module(PyImport_ImportModule("gantry._asgi"));
    if (!create_task_ || !module) fail("import gantry._asgi");
    client_disconnected_ = Ref(PyObject_GetAttrString(module.get(), "ClientDisconnected"));
    unsupported_message_ = Ref(PyObject_GetAttrString(module.get(), "unsupported_lifespan_message"));
    task_stack_ = Ref(PyObject_GetAttrString(module.get(), "task_stack"));
    if (!client_disconnected_ || !unsupported_message_ || !task_stack_) fail("gantry._asgi");
    Ref prepared(PyObject_CallMethod(module.get(), "prepare", "O", app));  // e.g. Django's ASGIHandler
    if (!prepared) fail("gantry._asgi.prepare");
    state_ = Ref(PyDict_New());
    asgi_version_ = Ref(Py_BuildValue("{s:s,s:s}", "version", "3.0", "spec_version", "2.4"));
    // pathsend and zerocopysend: the file goes out with sendfile(2) from the I/O thread.
    // trailers: sent after the last chunk when the client asked for them (TE: trailers).
    extensions_ = Ref(Py_BuildValue("{s:{},s:{},s:{}}", "http.response.pathsend", "http.response.zerocopysend",
                                    "http.response.trailers"));
    // A WebSocket's app may deny the handshake with a response of its own.
    ws_extensions_ = Ref(Py_BuildValue("{s:{}}", "websocket.http.response"));
    if (!state_ || !asgi_version_ || !extensions_ || !ws_extensions_) fail("scope");
    k_type_ = intern(gil, "type");
    k_asgi_ = intern(gil, "asgi");
    k_http_version_ = intern(gil, "http_version");
    k_method_ = intern(gil, "method");
    k_scheme_ = intern(gil, "scheme");
    k_path_ = intern(gil, "path");
    k_raw_path_ = intern(gil, "raw_path");
    k_query_string_ = intern(gil, "query_string");
    k_root_path_ = intern(gil, "root_path");
    k_headers_ = intern(gil, "headers");
    k_client_ = intern(gil, "client");
    k_server_ = intern(gil, "server");
    k_subprotocols_ = intern(gil, "subprotocols");
    k_state_ = intern(gil, "state");
    k_extensions_ = intern(gil, "extensions");
    s_http_ = intern(gil, "http");
    s_https_ = intern(gil, "https");
    s_ws_ = intern(gil, "ws");
    s_wss_ = intern(gil, "wss");
    s_websocket_ = intern(gil, "websocket");
    s_10_ = intern(gil, "1.0");
    s_11_ = intern(gil, "1.1");
    for (const char* m : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) methods_.emplace(m, intern(gil, m));
    if (root_path_.empty())
        if (const char* sn = std::getenv("SCRIPT_NAME")) root_path_ = sn;  // as the WSGI side reads it
    while (!root_path_.empty() && root_path_.back() == '/') root_path_.pop_back();

    // Every key in the order a scope has them; the values that never change are set once. A
    // copy of this (a block copy of its table) and in-place replacement of the rest costs less
    // than a dict built key by key, which resizes twice on the way to 14 keys.
    scope_template_ = Ref(PyDict_New());
    if (!scope_template_) fail("scope");
    for (PyObject* key : {k_type_.get(), k_asgi_.get(), k_http_version_.get(), k_method_.get(), k_scheme_.get(),
                          k_path_.get(), k_raw_path_.get(), k_query_string_.get(), k_root_path_.get(), k_headers_.get(),
                          k_client_.get(), k_server_.get(), k_state_.get(), k_extensions_.get()})
        if (PyDict_SetItem(scope_template_.get(), key, Py_None) < 0) fail("scope");
    Ref root_path(latin1_str(gil, root_path_));
    if (!root_path || PyDict_SetItem(scope_template_.get(), k_type_.get(), s_http_.get()) < 0 ||
        PyDict_SetItem(scope_template_.get(), k_asgi_.get(), asgi_version_.get()) < 0 ||
        PyDict_SetItem(scope_template_.get(), k_root_path_.get(), root_path.get()) < 0)
        fail("scope");
    // A websocket scope: no method; the client's subprotocols after the server.
    ws_scope_template_ = Ref(PyDict_New());
    if (!ws_scope_template_) fail("scope");
    for (PyObject* key : {k_type_.get(), k_asgi_.get(), k_http_version_.get(), k_scheme_.get(), k_path_.get(),
                          k_raw_path_.get(), k_query_string_.get(), k_root_path_.get(), k_headers_.get(), k_client_.get(),
                          k_server_.get(), k_subprotocols_.get(), k_state_.get(), k_extensions_.get()})
        if (PyDict_SetItem(ws_scope_template_.get(), key, Py_None) < 0) fail("scope");
    if (PyDict_SetItem(ws_scope_template_.get(), k_type_.get(), s_websocket_.get()) < 0 ||
        PyDict_SetItem(ws_scope_template_.get(), k_asgi_.get(), asgi_version_.get()) < 0 ||
        PyDict_SetItem(ws_scope_template_.get(), k_root_path_.get(), root_path.get()) < 0)
        fail("scope");
}

AsgiApp::~AsgiApp() = default;

PyObject* AsgiApp::build_scope(GilHeld& gil, const HttpRequest& req, ScopeType type) {
    const bool websocket = type == ScopeType::websocket;
    // type, asgi and root_path are set there
    Ref scope(PyDict_Copy(websocket ? ws_scope_template_.get() : scope_template_.get()));
    if (!scope) return nullptr;
    PyObject* s = scope.get();
    if (PyDict_SetItem(s, k_http_version_.get(), req.version == 10 ? s_10_.get() : s_11_.get()) < 0) return nullptr;
    if (!websocket) {
        auto m = methods_.find(req.method);
        PyObject* method = m != methods_.end() ? Ref::borrow(m->second.get()).release() : latin1_str(gil, req.method);
        if (!set_steal(gil, s, k_method_.get(), method)) return nullptr;
    }
    // A WebSocket's scheme is ws or wss for the connection's http or https.
    const Ref& plain = websocket ? s_ws_ : s_http_;
    const Ref& secure = websocket ? s_wss_ : s_https_;
    PyObject* scheme = req.url_scheme == "https" ? Ref::borrow(secure.get()).release()
                       : req.url_scheme == "http" ? Ref::borrow(plain.get()).release()
                                                  : latin1_str(gil, req.url_scheme);
    if (!set_steal(gil, s, k_scheme_.get(), scheme)) return nullptr;

    // path: percent-decoded, read as UTF-8 (as uvicorn: bad sequences replaced); raw_path: as sent.
    TargetParts parts = split_target(req.target);
    std::string_view target = req.target;
    if (!target.empty() && target.front() != '/') {  // absolute-form: the path after the authority
        auto authority = target.find("://");
        auto slash = authority == std::string_view::npos ? std::string_view::npos : target.find('/', authority + 3);
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    std::string_view raw_path = target.substr(0, target.find('?'));
    if (!set_steal(gil, s, k_path_.get(), PyUnicode_DecodeUTF8(parts.path.data(), static_cast<Py_ssize_t>(parts.path.size()), "replace")) ||
        !set_steal(gil, s, k_raw_path_.get(), bytes_of(gil, raw_path)) ||
        !set_steal(gil, s, k_query_string_.get(), bytes_of(gil, parts.query)))
        return nullptr;

    Ref headers(PyList_New(static_cast<Py_ssize_t>(req.headers.size())));
    if (!headers) return nullptr;
    for (std::size_t i = 0; i < req.headers.size(); ++i) {
        const HttpHeader& h = req.headers[i];
        PyObject* name = nullptr;  // new reference
        if (auto it = header_names_.find(h.name); it != header_names_.end()) {
            name = Ref::borrow(it->second.get()).release();
        } else {
            name = bytes_of(gil, to_lower(h.name));
            if (name && header_names_.size() < kHeaderNameCacheLimit) header_names_.emplace(h.name, Ref::borrow(name));
        }
        PyObject* value = name ? bytes_of(gil, h.value) : nullptr;
        PyObject* pair = value ? PyTuple_New(2) : nullptr;
        if (!pair) {
            Py_XDECREF(name);
            Py_XDECREF(value);
            return nullptr;
        }
        PyTuple_SET_ITEM(pair, 0, name);
        PyTuple_SET_ITEM(pair, 1, value);
        PyList_SET_ITEM(headers.get(), static_cast<Py_ssize_t>(i), pair);
    }
    if (PyDict_SetItem(s, k_headers_.get(), headers.get()) < 0) return nullptr;

    const bool unix_socket = req.server_name.rfind("unix:", 0) == 0;
    PyObject* client = req.remote_addr.empty() ? Ref::borrow(Py_None).release()
                                               : Py_BuildValue("(si)", req.remote_addr.c_str(), int(req.remote_port));
    if (!server_ || server_name_ != req.server_name || server_port_ != req.server_port) {
        // A tuple of str and int is immutable: the listener's is made once and shared.
        server_ = Ref(unix_socket ? Py_BuildValue("(sO)", req.server_name.c_str() + 5, Py_None)
                                  : Py_BuildValue("(si)", req.server_name.c_str(), int(req.server_port)));
        if (!server_) return nullptr;
        server_name_ = req.server_name;
        server_port_ = req.server_port;
    }
    if (!set_steal(gil, s, k_client_.get(), client) || PyDict_SetItem(s, k_server_.get(), server_.get()) < 0) return nullptr;
    if (websocket) {
        // Every Sec-WebSocket-Protocol field, comma-split and trimmed, in the client's order.
        Ref subprotocols(PyList_New(0));
        if (!subprotocols) return nullptr;
        bool ok = true;
        for (const HttpHeader& h : req.headers)
            if (iequals(h.name, "Sec-WebSocket-Protocol"))
                for_each_list_element(h.value, [&](std::string_view token) {
                    Ref t(ok ? latin1_str(gil, token) : nullptr);
                    ok = t && PyList_Append(subprotocols.get(), t.get()) == 0;
                });
        if (!ok || PyDict_SetItem(s, k_subprotocols_.get(), subprotocols.get()) < 0) return nullptr;
    }
    if (!set_steal(gil, s, k_state_.get(), PyDict_Copy(state_.get())) ||
        !set_steal(gil, s, k_extensions_.get(), PyDict_Copy(websocket ? ws_extensions_.get() : extensions_.get())))
        return nullptr;
    return scope.release();
}

// Calls the app with (scope, channel.receive, channel.send) and runs the coroutine as a task whose
// end calls channel.done. The task, new reference; null with the error set.
PyObject* AsgiApp::run_task(GilHeld&, PyObject* scope, PyObject* channel) {
    Ref receive(PyObject_GetAttr(channel, keys_.a_receive.get()));
    Ref send(PyObject_GetAttr(channel, keys_.a_send.get()));
    Ref done(PyObject_GetAttr(channel, keys_.a_done.get()));
    if (!receive || !send || !done) return nullptr;
    Ref coroutine(PyObject_CallFunctionObjArgs(app_.get(), scope, receive.get(), send.get(), nullptr));
    if (!coroutine) return nullptr;
    if (!PyCoro_CheckExact(coroutine.get()) && !Py_TYPE(coroutine.get())->tp_as_async) {
        PyErr_Format(PyExc_TypeError, "the ASGI app returned %.100s, not an awaitable", Py_TYPE(coroutine.get())->tp_name);
        return nullptr;
    }
    Ref task(PyObject_CallOneArg(create_task_.get(), coroutine.get()));
    if (!task) return nullptr;
    Ref added(PyObject_CallMethodOneArg(task.get(), keys_.a_add_done_callback.get(), done.get()));
    if (!added) return nullptr;
    return task.release();
}

void AsgiApp::start_http(GilHeld& gil, std::unique_ptr<AppCall> call) {
    if (auto& sink = call->response.sink()) sink->app_started();
    std::shared_ptr<HttpExchange> exchange;
    {
        std::lock_guard lock(running_mutex_);
        auto running = running_.insert(running_.end(), Running{call->request.method + " " + call->request.target,
                                                               std::chrono::steady_clock::now(), call->response.sink(), {}});
        exchange = std::make_shared<HttpExchange>(*this, std::move(call), running);
        running->exchange = exchange;
    }
    ++active_;
    Ref scope(build_scope(gil, exchange->request(), ScopeType::http));
    Ref channel(scope ? types_.channel(gil, exchange) : nullptr);
    Ref task(channel ? run_task(gil, scope.get(), channel.get()) : nullptr);
    if (!task) exchange->failed_to_start(gil);
    else exchange->started(std::move(task));
}

void AsgiApp::start_websocket(GilHeld& gil, std::unique_ptr<AppCall> call) {
    // Not in running_: --timeout does not apply to a WebSocket, which lives as long as it is open.
    auto exchange = std::make_shared<WebSocketExchange>(*this, std::move(call));
    ++active_;
    Ref scope(build_scope(gil, exchange->request(), ScopeType::websocket));
    Ref channel(scope ? types_.channel(gil, exchange) : nullptr);
    Ref task(channel ? run_task(gil, scope.get(), channel.get()) : nullptr);
    if (!task) exchange->failed_to_start(gil);
}

void AsgiApp::finished(GilHeld& gil, HttpExchange& exchange) {
    {
        std::lock_guard lock(running_mutex_);
        running_.erase(exchange.running());
    }
    ended(gil);
}

void AsgiApp::finished(GilHeld& gil, WebSocketExchange&) { ended(gil); }

void AsgiApp::ended(GilHeld& gil) {
    --active_;
    if (on_finished_) on_finished_(gil);
}

std::vector<AsgiApp::Expired> AsgiApp::expire_overdue(std::chrono::milliseconds limit) {
    std::vector<Expired> expired;
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(running_mutex_);
    for (auto& r : running_) {
        if (r.expired || now - r.started < limit) continue;
        r.expired = true;
        if (r.sink) r.sink->fail_timeout();  // the client hears at once, whatever the loop is doing
        double seconds = std::chrono::duration<double>(now - r.started).count();
        post_([exchange = r.exchange, seconds, limit](GilHeld& gil) {
            if (auto e = exchange.lock()) e->time_out(gil, seconds, limit);
        });
        expired.push_back(Expired{r.request_line, seconds});
    }
    return expired;
}

std::string AsgiApp::task_stack(GilHeld& gil, PyObject* task) {
    Ref text(PyObject_CallOneArg(task_stack_.get(), task));
    const char* s = text ? PyUnicode_AsUTF8(text.get()) : nullptr;
    if (!s) return "  (no stack: " + py::take_exception_text(gil) + ")\n";
    return s;
}

void AsgiApp::start_lifespan(GilHeld& gil, std::function<void(bool, std::string)> started) {
    if (lifespan_mode_ == "off") return started(true, "");
    auto lifespan = std::make_shared<Lifespan>(*this, lifespan_mode_, std::move(started), unsupported_message_.get());
    lifespan_ = lifespan;
    Ref scope(Py_BuildValue("{s:s,s:O,s:O}", "type", "lifespan", "asgi", asgi_version_.get(), "state", state_.get()));
    Ref channel(scope ? types_.channel(gil, lifespan) : nullptr);
    Ref task(channel ? run_task(gil, scope.get(), channel.get()) : nullptr);
    if (task) lifespan_task_ = std::move(task);
    else {
        // The app raised as it was called: as an exception in the task.
        PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (value && tb) PyException_SetTraceback(value, tb);
        Ref t(type), v(value), b(tb);
        Ref future(PyObject_CallMethod(loop_.get(), "create_future", nullptr));
        Ref set(future && v ? PyObject_CallMethod(future.get(), "set_exception", "O", v.get()) : nullptr);
        if (set) lifespan->task_done(gil, future.get());
        else lifespan->task_done(gil, Py_None);
        if (PyErr_Occurred()) PyErr_Clear();
    }
}

void AsgiApp::cancel_requests(GilHeld& gil) {
    cancelling_ = true;
    Ref asyncio(PyImport_ImportModule("asyncio"));
    Ref tasks(asyncio ? PyObject_CallMethod(asyncio.get(), "all_tasks", "O", loop_.get()) : nullptr);
    Ref list(tasks ? PySequence_List(tasks.get()) : nullptr);
    if (!list) return PyErr_Clear();
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list.get()); ++i) {
        PyObject* task = PyList_GET_ITEM(list.get(), i);
        if (task == lifespan_task_.get()) continue;
        Ref cancelled(PyObject_CallMethod(task, "cancel", nullptr));
        if (!cancelled) PyErr_Clear();
    }
    (void)gil;
}

void AsgiApp::shutdown_lifespan(GilHeld& gil, std::function<void()> stopped) {
    if (!lifespan_) return stopped();
    lifespan_->shutdown(gil, std::move(stopped));
}

}  // namespace gantry::asgi
