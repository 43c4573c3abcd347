// Calling the app: environ, start_response, the response iterable, close().
#include "embed/wsgi/callbacks.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "embed/wsgi/errors.hpp"
#include "http/text.hpp"

namespace gantry::wsgi {

using py::Ref;

namespace {

constexpr std::size_t kWholeResponseLimit = 1 << 20;  // Content-Length up to this: one send_whole
constexpr std::size_t kHeaderKeyCacheLimit = 1024;    // distinct HTTP_* keys kept interned

Ref intern(GilHeld&, const char* s) { return Ref(PyUnicode_InternFromString(s)); }

// Sets env[key] = value, stealing value. False with a Python error set.
bool set_steal(GilHeld&, PyObject* env, PyObject* key, PyObject* value) {
    if (!value) return false;
    int rc = PyDict_SetItem(env, key, value);
    Py_DECREF(value);
    return rc == 0;
}

PyObject* latin1_str(GilHeld&, std::string_view s) {
    return PyUnicode_DecodeLatin1(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr);
}

}  // namespace

WsgiApp::WsgiApp(GilHeld& gil, PyObject* app, const ExecutorSettings& config, std::function<bool()> nothing_queued)
    : app_(Ref::borrow(app)), nothing_queued_(std::move(nothing_queued)) {
    if (config.timing_full) timing_ = DjangoTiming::find(gil);
    auto fail = [&gil](const char* what) {
        throw AppLoadError(std::string("cannot start the WSGI executor (") + what + "):\n" +
                           py::take_exception_text(gil));
    };

    Ref io(PyImport_ImportModule("io"));
    if (!io) fail("import io");
    bytes_io_ = Ref(PyObject_GetAttrString(io.get(), "BytesIO"));
    io_open_ = Ref(PyObject_GetAttrString(io.get(), "open"));
    Ref wsgi_mod(PyImport_ImportModule("gantry._wsgi"));
    if (!wsgi_mod || !bytes_io_ || !io_open_) fail("import gantry._wsgi");
    file_wrapper_type_ = Ref(PyObject_GetAttrString(wsgi_mod.get(), "FileWrapper"));
    Ref errors(file_wrapper_type_ ? PyObject_CallMethod(wsgi_mod.get(), "ErrorStream", nullptr) : nullptr);
    if (!errors) fail("wsgi.errors");
    start_response_type_.emplace(gil);
    if (!start_response_type_->ready()) fail("StartResponse type");

    k_method_ = intern(gil, "REQUEST_METHOD");
    k_script_name_ = intern(gil, "SCRIPT_NAME");
    k_path_info_ = intern(gil, "PATH_INFO");
    k_query_string_ = intern(gil, "QUERY_STRING");
    k_raw_uri_ = intern(gil, "RAW_URI");
    k_protocol_ = intern(gil, "SERVER_PROTOCOL");
    k_server_name_ = intern(gil, "SERVER_NAME");
    k_server_port_ = intern(gil, "SERVER_PORT");
    k_remote_addr_ = intern(gil, "REMOTE_ADDR");
    k_remote_port_ = intern(gil, "REMOTE_PORT");
    k_content_type_ = intern(gil, "CONTENT_TYPE");
    k_content_length_ = intern(gil, "CONTENT_LENGTH");
    k_url_scheme_ = intern(gil, "wsgi.url_scheme");
    k_input_ = intern(gil, "wsgi.input");
    s_http10_ = intern(gil, "HTTP/1.0");
    s_http11_ = intern(gil, "HTTP/1.1");
    s_http_ = intern(gil, "http");
    s_https_ = intern(gil, "https");
    s_empty_ = intern(gil, "");
    a_close_ = intern(gil, "close");
    a_fileno_ = intern(gil, "fileno");
    a_tell_ = intern(gil, "tell");
    a_filelike_ = intern(gil, "filelike");
    for (const char* m : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) methods_.emplace(m, intern(gil, m));

    // SCRIPT_NAME comes from the environment, as in gunicorn.
    if (const char* sn = std::getenv("SCRIPT_NAME")) script_name_ = sn;
    while (!script_name_.empty() && script_name_.back() == '/') script_name_.pop_back();

    Ref gantry_mod(PyImport_ImportModule("gantry"));
    Ref version(gantry_mod ? PyObject_GetAttrString(gantry_mod.get(), "__version__") : nullptr);
    if (!version) fail("gantry.__version__");
    Ref software(PyUnicode_FromFormat("gantry/%U", version.get()));

    Ref env(PyDict_New());
    auto put = [&](const char* key, PyObject* value) {
        if (!value || PyDict_SetItem(env.get(), intern(gil, key).get(), value) < 0) fail(key);
    };
    Ref wsgi_version(Py_BuildValue("(ii)", 1, 0));
    put("wsgi.version", wsgi_version.get());
    put("wsgi.multithread", config.threads > 1 ? Py_True : Py_False);
    put("wsgi.multiprocess", config.multiprocess ? Py_True : Py_False);
    put("wsgi.run_once", Py_False);
    put("wsgi.input_terminated", Py_True);  // bodies are buffered whole before the app runs
    put("wsgi.errors", errors.get());
    put("wsgi.file_wrapper", file_wrapper_type_.get());
    put("SERVER_SOFTWARE", software.get());
    Ref script_name(PyUnicode_DecodeLatin1(script_name_.data(), static_cast<Py_ssize_t>(script_name_.size()), nullptr));
    put("SCRIPT_NAME", script_name.get());
    put("QUERY_STRING", s_empty_.get());
    environ_template_ = std::move(env);
}

PyObject* WsgiApp::header_key(GilHeld&, const std::string& name) {
    auto it = header_keys_.find(name);
    if (it != header_keys_.end()) return Ref::borrow(it->second.get()).release();
    PyObject* key = PyUnicode_DecodeLatin1(name.data(), static_cast<Py_ssize_t>(name.size()), nullptr);
    if (key && header_keys_.size() < kHeaderKeyCacheLimit) {
        PyUnicode_InternInPlace(&key);
        header_keys_.emplace(name, Ref::borrow(key));
    }
    return key;
}

PyObject* WsgiApp::build_environ(GilHeld& gil, AppCall& call, Ref& input) {
    HttpRequest& req = call.request;
    Ref env(PyDict_Copy(environ_template_.get()));
    if (!env) return nullptr;
    PyObject* e = env.get();

    auto m = methods_.find(req.method);
    PyObject* method = m != methods_.end() ? Ref::borrow(m->second.get()).release() : latin1_str(gil, req.method);
    if (!set_steal(gil, e, k_method_.get(), method)) return nullptr;

    TargetParts parts = split_target(req.target);
    std::string_view path = parts.path;
    if (!script_name_.empty() && path.substr(0, script_name_.size()) == script_name_ &&
        (path.size() == script_name_.size() || path[script_name_.size()] == '/'))
        path.remove_prefix(script_name_.size());
    if (!set_steal(gil, e, k_path_info_.get(), latin1_str(gil, path))) return nullptr;
    if (!parts.query.empty() && !set_steal(gil, e, k_query_string_.get(), latin1_str(gil, parts.query))) return nullptr;
    if (!set_steal(gil, e, k_raw_uri_.get(), latin1_str(gil, req.target))) return nullptr;
    if (PyDict_SetItem(e, k_protocol_.get(), req.version == 10 ? s_http10_.get() : s_http11_.get()) < 0)
        return nullptr;
    if (PyDict_SetItem(e, k_url_scheme_.get(),
                       req.url_scheme == "https" ? s_https_.get()
                       : req.url_scheme == "http" ? s_http_.get()
                                                  : Ref(latin1_str(gil, req.url_scheme)).get()) < 0)
        return nullptr;
    bool unix_socket = req.server_name.rfind("unix:", 0) == 0;
    if (!set_steal(gil, e, k_server_name_.get(), latin1_str(gil, req.server_name))) return nullptr;
    if (!set_steal(gil, e, k_server_port_.get(),
                   unix_socket ? Ref::borrow(s_empty_.get()).release()
                               : PyUnicode_FromFormat("%u", unsigned(req.server_port))))
        return nullptr;
    if (!set_steal(gil, e, k_remote_addr_.get(), latin1_str(gil, req.remote_addr))) return nullptr;
    if (!set_steal(gil, e, k_remote_port_.get(),
                   req.remote_addr.empty() ? Ref::borrow(s_empty_.get()).release()
                                           : PyUnicode_FromFormat("%u", unsigned(req.remote_port))))
        return nullptr;

    // Headers: merged in C++ first (repeats joined), then one str per key and value.
    std::vector<std::pair<std::string, std::string>> fields;
    fields.reserve(req.headers.size());
    bool has_content_length = false;
    for (const HttpHeader& h : req.headers) {
        if (h.name.find('_') != std::string::npos) continue;  // HTTP_X_USER vs X-User spoofing
        std::string key;
        if (iequals(h.name, "content-type")) {
            key = "CONTENT_TYPE";
        } else if (iequals(h.name, "content-length")) {
            key = "CONTENT_LENGTH";
            has_content_length = true;
        } else {
            key.reserve(5 + h.name.size());
            key = "HTTP_";
            for (char c : h.name) key.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
        }
        auto it = std::find_if(fields.begin(), fields.end(), [&](const auto& f) { return f.first == key; });
        if (it == fields.end()) {
            fields.emplace_back(std::move(key), h.value);
        } else {
            it->second += key == "HTTP_COOKIE" ? "; " : ", ";
            it->second += h.value;
        }
    }
    if (!has_content_length && (req.body.size() > 0 || req.find_header("transfer-encoding")))
        fields.emplace_back("CONTENT_LENGTH", std::to_string(req.body.size()));  // chunked, buffered whole
    for (auto& [key, value] : fields) {
        PyObject* k = key == "CONTENT_TYPE"     ? Ref::borrow(k_content_type_.get()).release()
                      : key == "CONTENT_LENGTH" ? Ref::borrow(k_content_length_.get()).release()
                                                : header_key(gil, key);
        Ref kref(k);
        if (!k || !set_steal(gil, e, k, latin1_str(gil, value))) return nullptr;
    }

    // wsgi.input: BytesIO over the body in memory, or the spilled file as a binary file object.
    if (req.body.in_memory()) {
        Ref bytes(PyBytes_FromStringAndSize(req.body.memory().data(), static_cast<Py_ssize_t>(req.body.size())));
        if (!bytes) return nullptr;
        input = Ref(PyObject_CallOneArg(bytes_io_.get(), bytes.get()));
    } else {
        int fd = req.body.release_file();
        input = Ref(PyObject_CallFunction(io_open_.get(), "is", fd, "rb"));
        if (!input) ::close(fd);
    }
    if (!input || PyDict_SetItem(e, k_input_.get(), input.get()) < 0) return nullptr;
    return env.release();
}

bool WsgiApp::try_send_file(GilHeld& gil, ResponseState& response, PyObject* result, bool& handled) {
    handled = false;
    if (response.outlet.head_sent() || !response.headers_set) return true;
    // Any failure below means "not a real file": fall back to iterating the wrapper.
    Ref filelike(PyObject_GetAttr(result, a_filelike_.get()));
    Ref fdobj(filelike ? PyObject_CallMethodNoArgs(filelike.get(), a_fileno_.get()) : nullptr);
    long fd_long = fdobj ? PyLong_AsLong(fdobj.get()) : -1;
    int fd = fd_long >= 0 && fd_long <= INT32_MAX ? static_cast<int>(fd_long) : -1;
    if (fd < 0) {
        PyErr_Clear();
        return true;
    }
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return true;
    Ref pos(PyObject_CallMethodNoArgs(filelike.get(), a_tell_.get()));
    long long offset = pos ? PyLong_AsLongLong(pos.get()) : -1;
    if (offset < 0) {
        PyErr_Clear();
        offset = ::lseek(fd, 0, SEEK_CUR);
        if (offset < 0) return true;
    }
    std::size_t remaining = st.st_size > offset ? static_cast<std::size_t>(st.st_size - offset) : 0;
    std::size_t count = response.content_length ? std::min(*response.content_length, remaining) : remaining;
    int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) return true;
    handled = true;
    response.start_stream();
    response.send_file(own, static_cast<off_t>(offset), count);  // GIL released inside
    return true;
}

bool WsgiApp::iterate(GilHeld& gil, ResponseState& response, PyObject* result) {
    Ref it(PyObject_GetIter(result));
    if (!it) return false;
    std::string pending;  // buffered toward a whole response of Content-Length bytes
    for (;;) {
        Ref chunk(PyIter_Next(it.get()));
        if (!chunk) break;
        if (!PyBytes_Check(chunk.get())) {
            raise_not_bytes(gil, Part::iterable_item, chunk.get());
            return false;
        }
        auto n = static_cast<std::size_t>(PyBytes_GET_SIZE(chunk.get()));
        if (n == 0) continue;
        if (!response.headers_set) {
            raise_misuse(gil, Misuse::data_before_start_response);
            return false;
        }
        const char* data = PyBytes_AS_STRING(chunk.get());
        if (!response.outlet.head_sent() && response.content_length && *response.content_length <= kWholeResponseLimit) {
            pending.append(data, n);
            if (pending.size() >= *response.content_length) {
                pending.resize(*response.content_length);  // never more than announced
                response.outlet.send_whole(std::move(response.head), std::move(pending));
                return true;
            }
            continue;
        }
        if (!response.outlet.head_sent()) response.start_stream();
        if (!response.write_chunk(std::string(data, n))) return true;  // client gone: stop producing
    }
    if (PyErr_Occurred()) return false;
    if (!response.outlet.head_sent()) {
        if (!response.headers_set) {
            raise_misuse(gil, Misuse::returned_without_start_response);
            return false;
        }
        response.outlet.send_whole(std::move(response.head), std::move(pending));
    }
    return true;
}

bool WsgiApp::respond(GilHeld& gil, ResponseState& response, PyObject* result) {
    bool is_list = PyList_CheckExact(result), is_tuple = PyTuple_CheckExact(result);
    if ((is_list || is_tuple) && !response.outlet.head_sent()) {
        Py_ssize_t n = is_list ? PyList_GET_SIZE(result) : PyTuple_GET_SIZE(result);
        PyObject** items = is_list ? reinterpret_cast<PyListObject*>(result)->ob_item
                                   : reinterpret_cast<PyTupleObject*>(result)->ob_item;
        std::size_t total = 0;
        for (Py_ssize_t i = 0; i < n; ++i) {
            if (!PyBytes_Check(items[i])) {
                raise_not_bytes(gil, Part::iterable_item, items[i]);
                return false;
            }
            total += static_cast<std::size_t>(PyBytes_GET_SIZE(items[i]));
        }
        if (!response.headers_set) {
            raise_misuse(gil, Misuse::returned_without_start_response);
            return false;
        }
        if (response.content_length && total > *response.content_length) total = *response.content_length;
        std::string body;
        body.reserve(total);
        for (Py_ssize_t i = 0; i < n && body.size() < total; ++i) {
            std::size_t take = std::min(static_cast<std::size_t>(PyBytes_GET_SIZE(items[i])), total - body.size());
            body.append(PyBytes_AS_STRING(items[i]), take);
        }
        response.outlet.send_whole(std::move(response.head), std::move(body));
        return true;
    }
    if (Py_TYPE(result) == reinterpret_cast<PyTypeObject*>(file_wrapper_type_.get())) {
        bool handled = false;
        if (!try_send_file(gil, response, result, handled)) return false;
        if (handled) return true;
    }
    return iterate(gil, response, result);
}

void WsgiApp::call(GilHeld& gil, AppCall& call) {
    if (ResponseSink* sink = call.response.sink().get()) sink->app_started();  // the wait for a Python thread ends
    // Declared first, so it goes last: with --timing full, the held-back final call goes out
    // once everything below is dropped, after the breakdown.
    ResponseState response(gil, std::move(call.response), timing_ ? &*timing_ : nullptr);
    Ref input;
    Ref environ(build_environ(gil, call, input));
    if (!environ) {
        answer_app_error(gil, response, call.request);
        return;
    }
    StartResponseType::Bound start_response = start_response_type_->bind(gil, response);
    if (!start_response) {
        answer_app_error(gil, response, call.request);
        return;
    }

    PyObject* args[] = {environ.get(), start_response.get()};
    Ref result(PyObject_Vectorcall(app_.get(), args, 2, nullptr));
    bool ok = result && respond(gil, response, result.get());
    if (ok && response.outlet.done() && nothing_queued_()) {
        // The answer is queued for the I/O thread and nothing else waits: let the I/O thread
        // write it now, before this thread's clean-up (close(), Django's request_finished, freeing
        // the request), which under SCHED_BATCH would otherwise delay the response. The GIL stays
        // held: the I/O thread does not need it, and no other Python code may run between the
        // response and its close().
        ::sched_yield();
    }
    if (result) {
        // PEP 3333: close() always, whatever happened; its error counts if nothing failed before.
        PyObject* pending_type = nullptr, *pending_value = nullptr, *pending_tb = nullptr;
        if (!ok) PyErr_Fetch(&pending_type, &pending_value, &pending_tb);
        Ref close(PyObject_GetAttr(result.get(), a_close_.get()));
        if (!close) {
            PyErr_Clear();
        } else if (!Ref(PyObject_CallNoArgs(close.get()))) {
            if (ok && !response.outlet.done()) {
                ok = false;
            } else {
                log_close_error(gil, call.request);
            }
        }
        if (!ok && pending_type) PyErr_Restore(pending_type, pending_value, pending_tb);
    }
    if (!ok) {
        answer_app_error(gil, response, call.request);
    } else {
        response.outlet.finish();  // a streamed response; a whole one is complete already
    }

    if (input) {
        Ref closed(PyObject_CallMethodNoArgs(input.get(), a_close_.get()));
        if (!closed) PyErr_Clear();
    }
}

}  // namespace gantry::wsgi
