#include "embed/wsgi/errors.hpp"

#include <spdlog/spdlog.h>

#include "embed/runtime/py_util.hpp"
#include "embed/wsgi/io.hpp"

namespace gantry::wsgi {

PyObject* raise_misuse(GilHeld&, Misuse misuse) {
    const char* message = "";
    switch (misuse) {
    case Misuse::write_after_finish: message = "write() called after the response was finished"; break;
    case Misuse::write_before_start_response: message = "write() called before start_response()"; break;
    case Misuse::start_response_after_request: message = "start_response() called after the request finished"; break;
    case Misuse::start_response_twice: message = "start_response() called a second time without exc_info"; break;
    case Misuse::data_before_start_response:
        message = "the application produced data before calling start_response()";
        break;
    case Misuse::returned_without_start_response:
        message = "the application returned without calling start_response()";
        break;
    }
    PyErr_SetString(PyExc_RuntimeError, message);
    return nullptr;
}

PyObject* raise_not_bytes(GilHeld&, Part part, PyObject* obj) {
    if (part == Part::write_argument)
        PyErr_Format(PyExc_TypeError, "write() argument must be bytes, not %.100s", Py_TYPE(obj)->tp_name);
    else
        PyErr_Format(PyExc_TypeError, "the response iterable must yield bytes, not %.100s", Py_TYPE(obj)->tp_name);
    return nullptr;
}

PyObject* raise_client_gone(GilHeld&) {
    PyErr_SetString(PyExc_ConnectionResetError, "client disconnected");
    return nullptr;
}

void answer_app_error(GilHeld& gil, ResponseState& response, const HttpRequest& request) {
    std::string text = py::take_exception_text(gil);
    if (response.client_gone) {
        spdlog::default_logger()->debug("{} {}: client went away: {}", request.method, request.target, text);
        response.outlet.finish();  // the stream the client left
    } else {
        spdlog::default_logger()->error("Error handling request {} {}\n{}", request.method, request.target, text);
        response.outlet.fail();
    }
}

void log_close_error(GilHeld& gil, const HttpRequest& request) {
    spdlog::default_logger()->error("Error closing the response of {} {}\n{}", request.method, request.target,
                                    py::take_exception_text(gil));
}

void log_call_exception(GilHeld&, const HttpRequest& request, const std::exception& e) {
    spdlog::default_logger()->error("Error handling request {} {}: {}", request.method, request.target, e.what());
    PyErr_Clear();
}

}  // namespace gantry::wsgi
