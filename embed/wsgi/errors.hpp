#pragma once
// Internal to embed/wsgi: how an app's errors and misuse of the WSGI protocol become a log entry
// and a 500 (or, once the head went, a closed connection). Misuse is raised into the app as a
// Python exception; whatever reaches the server then goes through answer_app_error.
#include <exception>

#include "embed/runtime/gil.hpp"
#include "http/request.hpp"

namespace gantry::wsgi {

struct ResponseState;

enum class Misuse {
    write_after_finish,             // write() once the response is complete
    write_before_start_response,    // write() before start_response()
    start_response_after_request,   // start_response() kept and called after the request
    start_response_twice,           // a second start_response() without exc_info
    data_before_start_response,     // the iterable yielded bytes before start_response()
    returned_without_start_response,
};

// Sets the RuntimeError for `misuse`; returns nullptr, for a C function's `return raise_misuse(...)`.
PyObject* raise_misuse(GilHeld& gil, Misuse misuse);
// Sets the TypeError for a response part that is not bytes: write()'s argument, or an item of
// the response iterable.
enum class Part { write_argument, iterable_item };
PyObject* raise_not_bytes(GilHeld& gil, Part part, PyObject* obj);
// Sets ConnectionResetError: write() found the client gone.
PyObject* raise_client_gone(GilHeld& gil);

// The pending Python exception of a request that failed: its traceback goes to the error log and
// the response fails; when the client went away first, a debug line and the stream is finished.
void answer_app_error(GilHeld& gil, ResponseState& response, const HttpRequest& request);
// The iterable's close() raised after the response was complete: logged only.
void log_close_error(GilHeld& gil, const HttpRequest& request);
// A C++ exception left the call (a sink, bad_alloc): logged (the pending Python error dropped);
// the request's handle fails it.
void log_call_exception(GilHeld& gil, const HttpRequest& request, const std::exception& e);

}  // namespace gantry::wsgi
