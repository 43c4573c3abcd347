#pragma once
// Internal to embed/wsgi: calling the app for one request - the environ from the interned-key
// template, the app call with start_response, the response iterable (a list in one piece, a file
// wrapper as sendfile, anything else streamed) and its close().
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include "embed/runtime/django_timing.hpp"
#include "embed/runtime/gil.hpp"
#include "embed/runtime/py_util.hpp"
#include "embed/runtime/python_runtime.hpp"
#include "embed/wsgi/io.hpp"
#include "http/app_dispatcher.hpp"

namespace gantry::wsgi {

// The app and everything made once for it when the executor starts. Only touched with the GIL
// held (built with it, and dropped with it: the executor's destructor takes it for that).
class WsgiApp {
public:
    // `nothing_queued`: whether no other call waits for a Python thread (read after a whole
    // answer, to let the I/O thread write it first). Throws AppLoadError.
    WsgiApp(GilHeld& gil, PyObject* app, const ExecutorSettings& settings, std::function<bool()> nothing_queued);

    // Calls the app for `call` and answers it through call.response, once. A C++ exception may
    // leave (a sink's, bad_alloc): the response is then failed by the handle it was in.
    void call(GilHeld& gil, AppCall& call);

private:
    PyObject* build_environ(GilHeld& gil, AppCall& call, py::Ref& input);
    PyObject* header_key(GilHeld& gil, const std::string& name);
    bool respond(GilHeld& gil, ResponseState& response, PyObject* result);
    bool try_send_file(GilHeld& gil, ResponseState& response, PyObject* result, bool& handled);
    bool iterate(GilHeld& gil, ResponseState& response, PyObject* result);

    py::Ref app_;
    py::Ref environ_template_;
    py::Ref bytes_io_;           // io.BytesIO
    py::Ref io_open_;            // io.open
    py::Ref file_wrapper_type_;  // gantry._wsgi.FileWrapper
    std::optional<StartResponseType> start_response_type_;
    std::optional<DjangoTiming> timing_;  // --timing full, when gantry.django_timing is there
    std::function<bool()> nothing_queued_;

    py::Ref k_method_, k_script_name_, k_path_info_, k_query_string_, k_raw_uri_, k_protocol_, k_server_name_,
        k_server_port_, k_remote_addr_, k_remote_port_, k_content_type_, k_content_length_, k_url_scheme_,
        k_input_;
    py::Ref s_http10_, s_http11_, s_http_, s_https_, s_empty_;
    py::Ref a_close_, a_fileno_, a_tell_, a_filelike_;
    std::string script_name_;
    std::unordered_map<std::string, py::Ref> header_keys_;
    std::unordered_map<std::string, py::Ref> methods_;
};

}  // namespace gantry::wsgi
