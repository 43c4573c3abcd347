// Reading the app's ASGI messages and making the server's (see messages.hpp).
#include "embed/asgi/messages.hpp"

#include "http/text.hpp"

namespace gantry::asgi {

using py::Ref;

Ref intern(GilHeld&, const char* s) { return Ref(PyUnicode_InternFromString(s)); }

MessageKeys::MessageKeys(GilHeld& gil)
    : type(intern(gil, "type")), body(intern(gil, "body")), more_body(intern(gil, "more_body")),
      status(intern(gil, "status")), headers(intern(gil, "headers")), message(intern(gil, "message")),
      http_request(intern(gil, "http.request")), http_disconnect(intern(gil, "http.disconnect")),
      http_response_start(intern(gil, "http.response.start")), http_response_body(intern(gil, "http.response.body")),
      http_response_pathsend(intern(gil, "http.response.pathsend")),
      http_response_zerocopysend(intern(gil, "http.response.zerocopysend")), path(intern(gil, "path")),
      file(intern(gil, "file")), offset(intern(gil, "offset")), count(intern(gil, "count")),
      http_response_trailers(intern(gil, "http.response.trailers")), trailers(intern(gil, "trailers")),
      more_trailers(intern(gil, "more_trailers")),
      lifespan_startup(intern(gil, "lifespan.startup")), lifespan_shutdown(intern(gil, "lifespan.shutdown")),
      websocket_connect(intern(gil, "websocket.connect")), websocket_receive(intern(gil, "websocket.receive")),
      websocket_disconnect(intern(gil, "websocket.disconnect")), websocket_accept(intern(gil, "websocket.accept")),
      websocket_send(intern(gil, "websocket.send")), websocket_close(intern(gil, "websocket.close")),
      websocket_http_response_start(intern(gil, "websocket.http.response.start")),
      websocket_http_response_body(intern(gil, "websocket.http.response.body")), bytes(intern(gil, "bytes")),
      text(intern(gil, "text")), code(intern(gil, "code")), reason(intern(gil, "reason")),
      subprotocol(intern(gil, "subprotocol")),
      a_receive(intern(gil, "receive")), a_send(intern(gil, "send")), a_done(intern(gil, "done")),
      a_add_done_callback(intern(gil, "add_done_callback")) {}

PyObject* latin1_str(GilHeld&, std::string_view s) {
    return PyUnicode_DecodeLatin1(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr);
}

PyObject* bytes_of(GilHeld&, std::string_view s) {
    return PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
}

bool set_steal(GilHeld&, PyObject* d, PyObject* key, PyObject* value) {
    if (!value) return false;
    int rc = PyDict_SetItem(d, key, value);
    Py_DECREF(value);
    return rc == 0;
}

PyObject* message(GilHeld&, const MessageKeys& k, const Ref& type) {
    Ref d(PyDict_New());
    if (!d || PyDict_SetItem(d.get(), k.type.get(), type.get()) < 0) return nullptr;
    return d.release();
}

PyObject* message_type(GilHeld&, const MessageKeys& k, PyObject* m, std::string_view& type) {
    if (!PyDict_Check(m)) {
        PyErr_Format(PyExc_TypeError, "an ASGI message must be a dict, not %.100s", Py_TYPE(m)->tp_name);
        return nullptr;
    }
    PyObject* t = item(m, k.type);
    Py_ssize_t n = 0;
    const char* s = t && PyUnicode_Check(t) ? PyUnicode_AsUTF8AndSize(t, &n) : nullptr;
    if (!s) {
        if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "an ASGI message needs a 'type' str: %R", m);
        return nullptr;
    }
    type = std::string_view(s, static_cast<std::size_t>(n));
    return t;
}

bool bytes_like(GilHeld&, PyObject* o, std::string& out, const char* what) {
    if (PyBytes_Check(o)) {
        out.assign(PyBytes_AS_STRING(o), static_cast<std::size_t>(PyBytes_GET_SIZE(o)));
        return true;
    }
    if (PyByteArray_Check(o)) {
        out.assign(PyByteArray_AS_STRING(o), static_cast<std::size_t>(PyByteArray_GET_SIZE(o)));
        return true;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(o, &view, PyBUF_SIMPLE) == 0) {
        out.assign(static_cast<const char*>(view.buf), static_cast<std::size_t>(view.len));
        PyBuffer_Release(&view);
        return true;
    }
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError, "%s must be bytes, not %.100s", what, Py_TYPE(o)->tp_name);
    return false;
}

bool truth(GilHeld&, PyObject* m, const Ref& key, bool& out) {
    PyObject* v = item(m, key);
    if (!v) return !PyErr_Occurred();
    int t = PyObject_IsTrue(v);
    if (t < 0) return false;
    out = t == 1;
    return true;
}

bool read_headers(GilHeld& gil, PyObject* headers, std::vector<HttpHeader>& out) {
    Ref iterator(PyObject_GetIter(headers));
    if (!iterator) return false;
    while (Ref pair{PyIter_Next(iterator.get())}) {
        Ref items(PySequence_Fast(pair.get(), "each header must be a [name, value] pair"));
        if (!items) return false;
        if (PySequence_Fast_GET_SIZE(items.get()) != 2) {
            PyErr_Format(PyExc_ValueError, "each header must be a [name, value] pair, got %R", pair.get());
            return false;
        }
        HttpHeader h;
        if (!bytes_like(gil, PySequence_Fast_GET_ITEM(items.get(), 0), h.name, "a header name") ||
            !bytes_like(gil, PySequence_Fast_GET_ITEM(items.get(), 1), h.value, "a header value"))
            return false;
        h.value.assign(trim(h.value));  // as for WSGI (and gunicorn): no padding around values
        if (!is_token(h.name)) {
            PyErr_Format(PyExc_ValueError, "invalid header name %R", pair.get());
            return false;
        }
        if (!is_field_value(h.value)) {
            PyErr_Format(PyExc_ValueError, "invalid header value %R", pair.get());
            return false;
        }
        out.push_back(std::move(h));
    }
    return !PyErr_Occurred();
}

void resolve(GilHeld&, Ref& future, PyObject* value, PyObject* exception) {
    if (!future) return;
    Ref f = std::move(future);
    Ref done(PyObject_CallMethod(f.get(), "done", nullptr));
    if (!done) {
        PyErr_Clear();
        return;
    }
    if (done.get() == Py_True) return;  // cancelled by the app
    Ref r(exception ? PyObject_CallMethod(f.get(), "set_exception", "O", exception)
                    : PyObject_CallMethod(f.get(), "set_result", "O", value ? value : Py_None));
    if (!r) PyErr_Clear();
}

}  // namespace gantry::asgi
