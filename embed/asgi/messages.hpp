#pragma once
// Internal to embed/asgi: reading the app's messages and making the server's, shared by the HTTP
// exchange, the WebSocket exchange and the lifespan. Each function that can fail returns null (or
// false) with a Python error set, the message's own wording for a value of the wrong type.
#include <string>
#include <string_view>
#include <vector>

#include "embed/runtime/gil.hpp"
#include "embed/runtime/py_util.hpp"
#include "http/request.hpp"

namespace gantry::asgi {

// The strings every message uses, interned once: dict lookups and type checks by identity first
// (an app's literal "http.response.start" is interned too), no str made per request.
struct MessageKeys {
    explicit MessageKeys(GilHeld& gil);
    py::Ref type, body, more_body, status, headers, message;
    py::Ref http_request, http_disconnect, http_response_start, http_response_body;
    py::Ref http_response_pathsend, http_response_zerocopysend, path, file, offset, count;
    py::Ref http_response_trailers, trailers, more_trailers;
    py::Ref lifespan_startup, lifespan_shutdown;
    py::Ref websocket_connect, websocket_receive, websocket_disconnect, websocket_accept, websocket_send,
        websocket_close, websocket_http_response_start, websocket_http_response_body;
    py::Ref bytes, text, code, reason, subprotocol;
    py::Ref a_receive, a_send, a_done, a_add_done_callback;
};

// An interned str (made once, at start): its dict lookups and type checks go by identity first.
py::Ref intern(GilHeld& gil, const char* s);
PyObject* latin1_str(GilHeld& gil, std::string_view s);
PyObject* bytes_of(GilHeld& gil, std::string_view s);
// Sets d[key] = value, stealing value. False with a Python error set (or value null).
bool set_steal(GilHeld& gil, PyObject* d, PyObject* key, PyObject* value);

// A message {"type": type} as a new dict.
PyObject* message(GilHeld& gil, const MessageKeys& k, const py::Ref& type);
// m[key], borrowed; null when absent (check PyErr_Occurred for a failed lookup).
inline PyObject* item(PyObject* m, const py::Ref& key) { return PyDict_GetItemWithError(m, key.get()); }
// The message's "type", borrowed from it, its text in `type`; null with a TypeError for anything
// but a dict with a str "type".
PyObject* message_type(GilHeld& gil, const MessageKeys& k, PyObject* m, std::string_view& type);
// The bytes of a bytes-like object (bytes, bytearray, memoryview) into `out`; `what` names it in
// the TypeError.
bool bytes_like(GilHeld& gil, PyObject* o, std::string& out, const char* what);
// m[key]'s truth into `out` (unchanged when the key is absent).
bool truth(GilHeld& gil, PyObject* m, const py::Ref& key, bool& out);
// A message's header list ([name, value] pairs of bytes-likes) appended to `out`: names tokens,
// values field values (no CR/LF), trimmed as gunicorn does.
bool read_headers(GilHeld& gil, PyObject* headers, std::vector<HttpHeader>& out);

// Resolves `future` (if still pending: an app may have cancelled it) with `value`, or with
// `exception` when that is given. The reference is dropped in every case.
void resolve(GilHeld& gil, py::Ref& future, PyObject* value, PyObject* exception = nullptr);

}  // namespace gantry::asgi
