// One WebSocket's ASGI side: receive() and send() over its WebSocketChannel (see the header).
#include "embed/asgi/websocket_exchange.hpp"

#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

#include "embed/asgi/errors.hpp"
#include "embed/asgi/messages.hpp"
#include "http/text.hpp"

namespace gantry::asgi {

using py::Ref;

namespace {

constexpr std::size_t kMaxCloseReason = 123;  // a close frame's payload is 125 bytes, 2 of them the code

// A close code an endpoint may send (RFC 6455 7.4: 1004-1006 and 1015 are reserved, 1016-2999
// are for the protocol's extensions, 3000-4999 for libraries and apps).
bool sendable_close_code(long code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

// m[key] as UTF-8, or `fallback` when absent or None. False with a TypeError for anything but a str.
bool optional_str(GilHeld&, PyObject* m, const Ref& key, std::string& out, const char* what) {
    PyObject* v = item(m, key);
    if (!v || v == Py_None) return !PyErr_Occurred();
    if (!PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str, not %.100s", what, Py_TYPE(v)->tp_name);
        return false;
    }
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(v, &n);
    if (!s) return false;
    out.assign(s, static_cast<std::size_t>(n));
    return true;
}

}  // namespace

// ---- receive -------------------------------------------------------------------------------------

PyObject* WebSocketExchange::receive(GilHeld& gil) {
    const MessageKeys& k = app_.keys();
    if (!connect_given_) {
        connect_given_ = true;
        Ref m(message(gil, k, k.websocket_connect));
        return m ? app_.types().completed(gil, m.get()) : nullptr;
    }
    if (pending_receive_) {
        // The last receive() was cancelled by the app (a timeout around it): this one replaces it.
        Ref done(PyObject_CallMethod(pending_receive_.get(), "done", nullptr));
        if (!done) return nullptr;
        if (done.get() != Py_True) return PyErr_Format(PyExc_RuntimeError, "receive() called again before the last one returned");
        pending_receive_.reset();
    }
    if (phase_ == Phase::refused) {
        // No WebSocket came of the handshake: the connection will tell nothing more (uvicorn: 1006).
        Ref m(disconnect_message(gil, kWsCloseAbnormal, ""));
        return m ? app_.types().completed(gil, m.get()) : nullptr;
    }
    // Already received: a completed awaitable. Otherwise a Future, resolved when the channel has
    // a message or the disconnect.
    for (;;) {
        Ref m(next_event(gil));
        if (m) return app_.types().completed(gil, m.get());
        if (PyErr_Occurred()) return nullptr;
        if (channel().when_ready(ready_callback())) break;
    }
    Ref future(PyObject_CallMethod(app_.loop(), "create_future", nullptr));
    if (!future) return nullptr;
    pending_receive_ = Ref::borrow(future.get());
    return future.release();
}

PyObject* WebSocketExchange::next_event(GilHeld& gil) {
    WebSocketChannel::Event event = channel().take();
    const MessageKeys& k = app_.keys();
    if (event.kind == WebSocketChannel::Event::Kind::pending) return nullptr;
    if (event.kind == WebSocketChannel::Event::Kind::disconnected) return disconnect_message(gil, event.code, event.reason);
    // Only the key of the message's kind, as uvicorn and daphne send it (the spec allows the
    // other one absent; some apps test for the key rather than for None).
    Ref m(message(gil, k, k.websocket_receive));
    if (!m) return nullptr;
    const std::string& data = event.message.data;
    if (event.message.text) {
        // Valid UTF-8: the connection checked it (a text message that is not was closed 1007).
        if (!set_steal(gil, m.get(), k.text.get(), PyUnicode_DecodeUTF8(data.data(), static_cast<Py_ssize_t>(data.size()), nullptr)))
            return nullptr;
    } else if (!set_steal(gil, m.get(), k.bytes.get(), bytes_of(gil, data))) {
        return nullptr;
    }
    return m.release();
}

PyObject* WebSocketExchange::disconnect_message(GilHeld& gil, int code, const std::string& reason) {
    const MessageKeys& k = app_.keys();
    Ref m(message(gil, k, k.websocket_disconnect));
    if (!m || !set_steal(gil, m.get(), k.code.get(), PyLong_FromLong(code)) ||
        !set_steal(gil, m.get(), k.reason.get(), PyUnicode_DecodeUTF8(reason.data(), static_cast<Py_ssize_t>(reason.size()), "replace")))
        return nullptr;
    return m.release();
}

std::function<void()> WebSocketExchange::ready_callback() {
    std::weak_ptr<WebSocketExchange> weak = weak_from_this();
    return [weak, post = app_.post()] {
        post([weak](GilHeld& gil) {
            if (auto exchange = weak.lock()) exchange->event_ready(gil);
        });
    };
}

void WebSocketExchange::event_ready(GilHeld& gil) {
    if (!pending_receive_) return;
    // A receive() the app cancelled must not take the message: the next receive() gets it.
    Ref done(PyObject_CallMethod(pending_receive_.get(), "done", nullptr));
    if (!done || done.get() == Py_True) {
        if (!done) PyErr_Clear();
        pending_receive_.reset();
        return;
    }
    Ref m(next_event(gil));
    if (!m && !PyErr_Occurred()) {
        if (channel().when_ready(ready_callback())) return;  // still nothing: woken again
        m = Ref(next_event(gil));                            // it came meanwhile
    }
    if (m) return resolve(gil, pending_receive_, m.get());
    PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    Ref t(type), v(value), b(tb);
    resolve(gil, pending_receive_, nullptr, v ? v.get() : PyExc_RuntimeError);
}

// ---- send ----------------------------------------------------------------------------------------

PyObject* WebSocketExchange::send(GilHeld& gil, PyObject* m) {
    const MessageKeys& k = app_.keys();
    std::string_view type;
    PyObject* t = message_type(gil, k, m, type);
    if (!t) return nullptr;
    // By identity first: an app's literals are interned as ours are.
    auto is = [&](const Ref& key) { return t == key.get() || PyUnicode_Compare(t, key.get()) == 0; };
    switch (phase_) {
        case Phase::connecting:
            if (is(k.websocket_accept)) return accept(gil, m);
            if (is(k.websocket_close)) return close(gil, m);
            if (is(k.websocket_http_response_start)) return response_start(gil, m);
            return unexpected_message(gil, "'websocket.accept', 'websocket.close' or 'websocket.http.response.start'", t);
        case Phase::responding:
            if (is(k.websocket_http_response_body)) return response_body(gil, m);
            return unexpected_message(gil, "'websocket.http.response.body'", t);
        case Phase::open:
            if (is(k.websocket_send)) return send_message(gil, m);
            if (is(k.websocket_close)) return close(gil, m);
            return unexpected_message(gil, "'websocket.send' or 'websocket.close'", t);
        case Phase::closed:
        case Phase::refused:
            break;
    }
    Ref when(PyUnicode_FromString(ended_by_));
    if (when) PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message %R, %U.", t, when.get());
    return nullptr;
}

PyObject* WebSocketExchange::client_disconnected(GilHeld&) {
    PyErr_SetString(app_.client_disconnected(), "the WebSocket is closed");
    return nullptr;
}

PyObject* WebSocketExchange::accept(GilHeld& gil, PyObject* m) {
    const MessageKeys& k = app_.keys();
    if (channel().gone()) return client_disconnected(gil);
    std::string subprotocol;
    if (!optional_str(gil, m, k.subprotocol, subprotocol, "websocket.accept's 'subprotocol'")) return nullptr;
    if (!subprotocol.empty() && !is_token(subprotocol))
        return PyErr_Format(PyExc_ValueError, "websocket.accept: invalid 'subprotocol' %R", item(m, k.subprotocol));
    std::vector<HttpHeader> headers;
    if (PyObject* h = item(m, k.headers); h && h != Py_None && !read_headers(gil, h, headers)) return nullptr;
    if (PyErr_Occurred()) return nullptr;
    for (const HttpHeader& h : headers)
        if (iequals(h.name, "Sec-WebSocket-Protocol"))
            return PyErr_Format(PyExc_ValueError, "websocket.accept: the subprotocol goes in 'subprotocol', not in a "
                                                  "sec-websocket-protocol header (ASGI spec)");
    if (!channel().accept(std::move(subprotocol), std::move(headers))) return client_disconnected(gil);
    phase_ = Phase::open;
    return app_.types().completed(gil, nullptr);
}

PyObject* WebSocketExchange::close(GilHeld& gil, PyObject* m) {
    const MessageKeys& k = app_.keys();
    if (channel().gone()) return client_disconnected(gil);
    long code = kWsCloseNormal;
    if (PyObject* c = item(m, k.code); c && c != Py_None) {
        code = PyLong_Check(c) ? PyLong_AsLong(c) : -1;
        if (!sendable_close_code(code)) {
            if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_OverflowError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "websocket.close: 'code' must be an int close code an endpoint may send "
                                               "(1000-1003, 1007-1014, 3000-4999), got %R", c);
            }
            return nullptr;
        }
    }
    if (PyErr_Occurred()) return nullptr;
    std::string reason;
    if (!optional_str(gil, m, k.reason, reason, "websocket.close's 'reason'")) return nullptr;
    if (reason.size() > kMaxCloseReason)
        return PyErr_Format(PyExc_ValueError, "websocket.close: 'reason' is %zu bytes in UTF-8, over the %zu a close frame holds",
                            reason.size(), kMaxCloseReason);
    ended_by_ = "after sending 'websocket.close'";
    if (phase_ == Phase::connecting) {
        // Before accept: the handshake is refused with a 403 (the spec; uvicorn sends no body).
        phase_ = Phase::refused;
        ResponseHead head;
        head.status = 403;
        if (!channel().deny(std::move(head), {})) return client_disconnected(gil);
        return app_.types().completed(gil, nullptr);
    }
    phase_ = Phase::closed;
    if (!channel().close(static_cast<int>(code), std::move(reason))) return client_disconnected(gil);
    return app_.types().completed(gil, nullptr);
}

PyObject* WebSocketExchange::send_message(GilHeld& gil, PyObject* m) {
    const MessageKeys& k = app_.keys();
    PyObject* b = item(m, k.bytes);
    if (!b && PyErr_Occurred()) return nullptr;
    PyObject* t = item(m, k.text);
    if (!t && PyErr_Occurred()) return nullptr;
    if (b == Py_None) b = nullptr;
    if (t == Py_None) t = nullptr;
    if (!b == !t)
        return PyErr_Format(PyExc_ValueError, "websocket.send needs exactly one of 'bytes' and 'text' (not None), got %R", m);
    WebSocketMessage message;
    if (t) {
        if (!PyUnicode_Check(t))
            return PyErr_Format(PyExc_TypeError, "websocket.send's 'text' must be a str, not %.100s", Py_TYPE(t)->tp_name);
        Py_ssize_t n = 0;
        const char* s = PyUnicode_AsUTF8AndSize(t, &n);  // a lone surrogate raises UnicodeEncodeError
        if (!s) return nullptr;
        message.text = true;
        message.data.assign(s, static_cast<std::size_t>(n));
    } else if (!bytes_like(gil, b, message.data, "websocket.send's 'bytes'")) {
        return nullptr;
    }
    if (channel().send(std::move(message), space_callback())) return app_.types().completed(gil, nullptr);
    if (channel().gone()) return client_disconnected(gil);
    // The outbox is full: this send waits until the connection has written some of it.
    Ref future(PyObject_CallMethod(app_.loop(), "create_future", nullptr));
    if (!future) return nullptr;
    pending_sends_.push_back(Ref::borrow(future.get()));
    return future.release();
}

PyObject* WebSocketExchange::response_start(GilHeld& gil, PyObject* m) {
    const MessageKeys& k = app_.keys();
    if (channel().gone()) return client_disconnected(gil);
    PyObject* status = item(m, k.status);
    long code = status && PyLong_Check(status) ? PyLong_AsLong(status) : -1;
    // A final status: the handshake's answer is this response (101 is the handshake itself).
    if (code < 200 || code > 999) {
        if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "websocket.http.response.start needs an int 'status' from 200 to 999, got %R",
                         status ? status : Py_None);
        }
        return nullptr;
    }
    ResponseHead head;
    head.status = static_cast<int>(code);
    if (PyObject* h = item(m, k.headers); h && h != Py_None && !read_headers(gil, h, head.headers)) return nullptr;
    if (PyErr_Occurred()) return nullptr;
    denial_head_ = std::move(head);
    phase_ = Phase::responding;
    return app_.types().completed(gil, nullptr);
}

PyObject* WebSocketExchange::response_body(GilHeld& gil, PyObject* m) {
    const MessageKeys& k = app_.keys();
    if (channel().gone()) return client_disconnected(gil);
    std::string piece;
    if (PyObject* b = item(m, k.body); b && !bytes_like(gil, b, piece, "websocket.http.response.body's 'body'")) return nullptr;
    bool more = false;
    if (PyErr_Occurred() || !truth(gil, m, k.more_body, more)) return nullptr;
    denial_body_ += piece;
    if (more) return app_.types().completed(gil, nullptr);
    // The whole response, at its last piece.
    phase_ = Phase::refused;
    ended_by_ = "after the 'websocket.http.response' that denied the handshake";
    if (!channel().deny(std::move(denial_head_), std::move(denial_body_))) return client_disconnected(gil);
    return app_.types().completed(gil, nullptr);
}

WebSocketChannel::SpaceCallback WebSocketExchange::space_callback() {
    std::weak_ptr<WebSocketExchange> weak = weak_from_this();
    return [weak, post = app_.post()](bool room) {
        post([weak, room](GilHeld& gil) {
            if (auto exchange = weak.lock()) exchange->space_available(gil, room);
        });
    };
}

void WebSocketExchange::space_available(GilHeld& gil, bool room) {
    if (pending_sends_.empty()) return;
    auto waiting = std::move(pending_sends_);
    pending_sends_.clear();
    // Woken because the WebSocket ended before there was room: those sends' messages went nowhere.
    // Not channel().gone(): by the time the loop runs this, a peer that read everything and then
    // closed has made it true, and a send that was written would raise.
    Ref exc(!room ? PyObject_CallFunction(app_.client_disconnected(), "s", "the WebSocket is closed") : nullptr);
    if (PyErr_Occurred()) PyErr_Clear();
    for (Ref& future : waiting) resolve(gil, future, nullptr, exc.get());
}

// ---- the app's end -------------------------------------------------------------------------------

void WebSocketExchange::fail(GilHeld&, const std::string& what) {
    const std::string& target = call_->request.target;
    if (phase_ == Phase::closed || phase_ == Phase::refused) {
        spdlog::error("Error in the app after its WebSocket {} ended\n{}", target, what);
        return;
    }
    spdlog::error("Error handling WebSocket {} ({})\n{}", target,
                  phase_ == Phase::open ? "after accept: closed 1011" : "before the handshake: 500", what);
    phase_ = phase_ == Phase::open ? Phase::closed : Phase::refused;
    channel().fail();
}

void WebSocketExchange::end_quietly(GilHeld&, int close_code) {
    if (phase_ == Phase::open) channel().close(close_code, {});
    else if (phase_ == Phase::connecting || phase_ == Phase::responding) channel().fail();
    phase_ = phase_ == Phase::open ? Phase::closed : Phase::refused;
}

void WebSocketExchange::failed_to_start(GilHeld& gil) {
    fail(gil, py::take_exception_text(gil));
    app_.finished(gil, *this);
}

void WebSocketExchange::task_done(GilHeld& gil, PyObject* task) {
    const std::string& target = call_->request.target;
    Ref cancelled(PyObject_CallMethod(task, "cancelled", nullptr));
    if (cancelled && cancelled.get() == Py_True) {
        if (app_.cancelling() || channel().gone()) {
            // Cancelled by the server (the worker stopping: its client was told 1001 first): no error.
            spdlog::debug("WebSocket {}: cancelled as the worker stopped", target);
            end_quietly(gil, kWsCloseGoingAway);
        } else {
            fail(gil, "the app's task was cancelled");
        }
    } else {
        Ref exc(cancelled ? PyObject_CallMethod(task, "exception", nullptr) : nullptr);
        if (!exc) {
            fail(gil, py::take_exception_text(gil));
        } else if (exc.get() != Py_None) {
            if (PyErr_GivenExceptionMatches(exc.get(), app_.client_disconnected())) {
                // The app stopped because its client left (spec 2.4): not an error.
                spdlog::debug("WebSocket {}: the client disconnected", target);
                end_quietly(gil, kWsCloseNormal);
            } else {
                fail(gil, exception_text(gil, exc.get()));
            }
        } else if (phase_ == Phase::connecting) {
            spdlog::error("WebSocket {}: ASGI callable returned without sending handshake.", target);
            phase_ = Phase::refused;
            channel().fail();
        } else if (phase_ == Phase::responding) {
            spdlog::error("WebSocket {}: ASGI callable returned without completing the response "
                          "(its last 'websocket.http.response.body' had more_body).", target);
            phase_ = Phase::refused;
            channel().fail();
        } else if (phase_ == Phase::open) {
            phase_ = Phase::closed;  // returned while open: closed normally, as uvicorn does
            channel().close(kWsCloseNormal, {});
        }
    }
    if (PyErr_Occurred()) PyErr_Clear();
    // Nothing of the WebSocket may keep the task alive now (the futures reference its callbacks).
    if (pending_receive_) {
        Ref disconnect(disconnect_message(gil, kWsCloseAbnormal, ""));
        resolve(gil, pending_receive_, disconnect.get());
        if (PyErr_Occurred()) PyErr_Clear();
    }
    // A send still waiting belongs to another task of the app (one the task did not await).
    for (Ref& future : pending_sends_) {
        Ref done(PyObject_CallMethod(future.get(), "cancel", nullptr));
        if (!done) PyErr_Clear();
    }
    pending_sends_.clear();
    app_.finished(gil, *this);
}

}  // namespace gantry::asgi
