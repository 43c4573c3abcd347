// The WSGI (PEP 3333) executor: Python threads that take AppCalls from a lock-free queue, call the
// app with the GIL held once per request, and hand the response to the call's ResponseSink.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <concurrentqueue/blockingconcurrentqueue.h>
#include <fcntl.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "embed/runtime_state.hpp"
#include "http/text.hpp"

#include <sys/mman.h>

// faulthandler's own dumper (exported by libpython; its header, internal/pycore_traceback.h, needs
// Py_BUILD_CORE). Signal-safe, reads another thread's frames without the GIL.
extern "C" void _Py_DumpTraceback(int fd, PyThreadState* tstate);

namespace gantry {
namespace {

// The Python stack of another thread, as faulthandler writes it: read without the GIL (the thread
// may be stuck holding it), so only for a thread that is not going to move much - a stuck one.
std::string dump_python_stack(PyThreadState* tstate) {
    if (!tstate) return "  (no Python thread state)\n";
    int fd = ::memfd_create("gantry-stack", MFD_CLOEXEC);
    if (fd < 0) return "  (cannot dump: memfd_create failed)\n";
    _Py_DumpTraceback(fd, tstate);
    std::string text;
    char buf[4096];
    ::lseek(fd, 0, SEEK_SET);
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return text;
}

using py::Ref;

constexpr std::size_t kWholeResponseLimit = 1 << 20;  // Content-Length up to this: one send_whole
constexpr std::size_t kHeaderKeyCacheLimit = 1024;    // distinct HTTP_* keys kept interned

// Field values: visible latin-1, SP and HTAB; no CR, LF, NUL or other controls.
bool is_field_value(std::string_view s) {
    for (unsigned char c : s)
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    return true;
}

// A str whose code points are all < 256, as its latin-1 bytes (PEP 3333 "native strings").
bool latin1_of(PyObject* s, std::string& out) {
    if (!PyUnicode_Check(s)) return false;
    if (PyUnicode_READY(s) < 0) return false;
    if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) return false;
    out.assign(reinterpret_cast<const char*>(PyUnicode_1BYTE_DATA(s)),
               static_cast<std::size_t>(PyUnicode_GET_LENGTH(s)));
    return true;
}

Ref intern(const char* s) { return Ref(PyUnicode_InternFromString(s)); }

// An idle Python thread sleeps at once instead of spinning 10000 times first (moodycamel's
// default): the I/O thread that would post the next call, and the one that must write the
// answer just posted, often share its core, and a spinning waiter only delays them.
struct CallQueueTraits : moodycamel::ConcurrentQueueDefaultTraits {
    static const int MAX_SEMA_SPINS = 1;
};

// Everything made once when the executor starts. Only touched with the GIL held.
struct Shared {
    Ref app;
    Ref environ_template;
    Ref bytes_io;           // io.BytesIO
    Ref io_open;            // io.open
    Ref file_wrapper_type;  // gantry._wsgi.FileWrapper
    PyTypeObject* start_response_type = nullptr;

    Ref k_method, k_script_name, k_path_info, k_query_string, k_raw_uri, k_protocol, k_server_name,
        k_server_port, k_remote_addr, k_remote_port, k_content_type, k_content_length, k_url_scheme,
        k_input;
    Ref s_http10, s_http11, s_http, s_https, s_empty;
    Ref a_close, a_fileno, a_tell, a_filelike;
    std::string script_name;
    std::unordered_map<std::string, Ref> header_keys;
    std::unordered_map<std::string, Ref> methods;
    Ref timing_take;  // gantry.django_timing.take_raw, with --timing full
};

// --timing full: the final call of a response waits until the app's breakdown has been taken
// (after the iterable's close(), where Django's timing record ends), so the breakdown reaches
// the connection before the response completes. Everything else goes straight through.
class DeferredFinish final : public ResponseSink {
public:
    explicit DeferredFinish(ResponseSink& real) : real_(real) {}
    void send_whole(ResponseHead head, std::string body) override {
        final_ = Final::whole;
        head_ = std::move(head);
        body_ = std::move(body);
    }
    void start_stream(ResponseHead head) override { real_.start_stream(std::move(head)); }
    bool write_chunk(std::string data) override { return real_.write_chunk(std::move(data)); }
    bool send_file(int fd, off_t offset, std::size_t count) override { return real_.send_file(fd, offset, count); }
    void finish_stream() override { final_ = Final::finish; }
    void fail() override { final_ = Final::fail; }
    bool client_gone() const override { return real_.client_gone(); }
    void app_started() override { real_.app_started(); }
    void app_breakdown(AppBreakdown breakdown) override { real_.app_breakdown(std::move(breakdown)); }

    void flush() {
        switch (final_) {
        case Final::whole: real_.send_whole(std::move(head_), std::move(body_)); break;
        case Final::finish: real_.finish_stream(); break;
        case Final::fail: real_.fail(); break;
        case Final::none: break;
        }
        final_ = Final::none;
    }

private:
    enum class Final { none, whole, finish, fail };
    ResponseSink& real_;
    Final final_ = Final::none;
    ResponseHead head_;
    std::string body_;
};

// gantry.django_timing.take_raw()'s tuple -> AppBreakdown: (layers, ns, view, view_ns, queries,
// db_ns, repeated), layers ((name, i), ...) outermost first, a layer's own time being
// ns[i] - ns[i-1] + ns[n+i]. Odd fields are skipped: the breakdown is a report, never a reason to
// fail a request.
std::int64_t as_int64(PyObject* v) {
    long long n = v ? PyLong_AsLongLong(v) : -1;
    if (n == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return n;
}

bool breakdown_from(PyObject* raw, AppBreakdown& out) {
    if (!raw || !PyTuple_Check(raw) || PyTuple_GET_SIZE(raw) != 7) return false;
    PyObject* layers = PyTuple_GET_ITEM(raw, 0);
    PyObject* ns = PyTuple_GET_ITEM(raw, 1);
    if (PyTuple_Check(layers) && PyList_Check(ns)) {
        Py_ssize_t n = PyList_GET_SIZE(ns) / 2;
        auto at = [&](Py_ssize_t i) { return i >= 0 && i < 2 * n ? as_int64(PyList_GET_ITEM(ns, i)) : 0; };
        out.middleware_ns.reserve(static_cast<std::size_t>(PyTuple_GET_SIZE(layers)));
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(layers); ++k) {
            PyObject* item = PyTuple_GET_ITEM(layers, k);
            if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) continue;
            const char* name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(item, 0));
            Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 1));
            if (!name || PyErr_Occurred()) {
                PyErr_Clear();
                continue;
            }
            out.middleware_ns.emplace_back(name, at(i) - at(i - 1) + at(n + i));
        }
    }
    if (PyObject* view = PyTuple_GET_ITEM(raw, 2); view != Py_None) {
        if (const char* name = PyUnicode_AsUTF8(view)) out.view = name;
        else PyErr_Clear();
        out.view_ns = as_int64(PyTuple_GET_ITEM(raw, 3));
    }
    out.db_queries = as_int64(PyTuple_GET_ITEM(raw, 4));
    out.db_ns = as_int64(PyTuple_GET_ITEM(raw, 5));
    out.db_repeated = as_int64(PyTuple_GET_ITEM(raw, 6));
    return true;
}

// Runs a blocking sink call with the GIL released: a C++ exception must not skip re-taking the
// GIL, so it counts as the connection being gone.
template <class F>
bool guarded(F&& f) noexcept {
    try {
        return f();
    } catch (const std::exception& e) {
        spdlog::default_logger()->error("response sink failed: {}", e.what());
    } catch (...) {
        spdlog::default_logger()->error("response sink failed");
    }
    return false;
}

// One request's response state; lives on the executor thread's stack for the call.
struct RequestCtx {
    Shared* shared = nullptr;
    AppCall* call = nullptr;
    ResponseSink* sink = nullptr;
    bool headers_set = false;
    ResponseHead head;
    std::optional<std::size_t> content_length;
    enum class Phase { kNone, kStreaming, kDone } phase = Phase::kNone;
    bool client_gone = false;

    bool headers_sent() const { return phase != Phase::kNone; }
    void start_stream() {
        sink->start_stream(std::move(head));
        phase = Phase::kStreaming;
    }
    // Sends with the GIL released: write_chunk may block on the connection's bounded buffer.
    bool write_chunk(std::string data) {
        bool ok;
        Py_BEGIN_ALLOW_THREADS
        ok = guarded([&] { return sink->write_chunk(std::move(data)); });
        Py_END_ALLOW_THREADS
        if (!ok) client_gone = true;
        return ok;
    }
};

// ---- start_response and write: a small C type, one instance per request ----------------------

struct StartResponseObject {
    PyObject_HEAD
    RequestCtx* ctx;  // null once the request is over: late calls raise
};

PyObject* write_impl(PyObject* self, PyObject* data) {
    RequestCtx* ctx = reinterpret_cast<StartResponseObject*>(self)->ctx;
    if (!ctx || ctx->phase == RequestCtx::Phase::kDone) {
        PyErr_SetString(PyExc_RuntimeError, "write() called after the response was finished");
        return nullptr;
    }
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "write() argument must be bytes, not %.100s", Py_TYPE(data)->tp_name);
        return nullptr;
    }
    if (!ctx->headers_set) {
        PyErr_SetString(PyExc_RuntimeError, "write() called before start_response()");
        return nullptr;
    }
    if (ctx->client_gone) {
        PyErr_SetString(PyExc_ConnectionResetError, "client disconnected");
        return nullptr;
    }
    if (!ctx->headers_sent()) ctx->start_stream();
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    if (n > 0 && !ctx->write_chunk(std::string(PyBytes_AS_STRING(data), static_cast<std::size_t>(n)))) {
        PyErr_SetString(PyExc_ConnectionResetError, "client disconnected");
        return nullptr;
    }
    Py_RETURN_NONE;
}

PyMethodDef write_def = {"write", write_impl, METH_O, "write(data): send bytes before the iterable's"};

PyObject* start_response_call(PyObject* self, PyObject* args, PyObject* kwargs) {
    RequestCtx* ctx = reinterpret_cast<StartResponseObject*>(self)->ctx;
    static const char* kwlist[] = {"status", "headers", "exc_info", nullptr};
    PyObject *status = nullptr, *headers = nullptr, *exc_info = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:start_response", const_cast<char**>(kwlist),
                                     &status, &headers, &exc_info))
        return nullptr;
    if (!ctx) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called after the request finished");
        return nullptr;
    }
    if (exc_info != Py_None) {
        if (ctx->headers_sent()) {
            // PEP 3333: too late to change the response, re-raise the app's error.
            PyObject *t, *v, *tb;
            if (!PyArg_ParseTuple(exc_info, "OOO:exc_info", &t, &v, &tb)) return nullptr;
            Py_INCREF(t);
            Py_INCREF(v);
            Py_INCREF(tb);
            PyErr_Restore(t, v, tb == Py_None ? (Py_DECREF(tb), nullptr) : tb);
            return nullptr;
        }
    } else if (ctx->headers_set) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called a second time without exc_info");
        return nullptr;
    }

    // Status: "NNN reason".
    std::string status_line;
    if (!latin1_of(status, status_line)) {
        if (PyErr_Occurred()) return nullptr;
        PyErr_Format(PyExc_TypeError, "status must be a latin-1 str, not %.100s", Py_TYPE(status)->tp_name);
        return nullptr;
    }
    if (status_line.size() < 3 || !std::isdigit(static_cast<unsigned char>(status_line[0])) ||
        !std::isdigit(static_cast<unsigned char>(status_line[1])) ||
        !std::isdigit(static_cast<unsigned char>(status_line[2])) || status_line[0] == '0' ||
        (status_line.size() > 3 && status_line[3] != ' ') || !is_field_value(status_line)) {
        PyErr_Format(PyExc_ValueError, "invalid status %R: must be 'NNN reason'", status);
        return nullptr;
    }
    ResponseHead head;
    head.status = std::stoi(status_line.substr(0, 3));
    head.reason = status_line.size() > 4 ? status_line.substr(4) : std::string();

    // PEP 3333 says a list; any sequence of 2-sequences is accepted, as gunicorn does.
    Ref header_seq(PySequence_Fast(headers, "headers must be a list of (name, value) tuples"));
    if (!header_seq) return nullptr;
    std::optional<std::size_t> content_length;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(header_seq.get());
    PyObject** header_items = PySequence_Fast_ITEMS(header_seq.get());
    head.headers.reserve(static_cast<std::size_t>(count));
    for (Py_ssize_t i = 0; i < count; ++i) {
        PyObject* item = header_items[i];
        PyObject* pair[2];
        if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 2) {
            pair[0] = PyTuple_GET_ITEM(item, 0);
            pair[1] = PyTuple_GET_ITEM(item, 1);
        } else if (PyList_Check(item) && PyList_GET_SIZE(item) == 2) {
            pair[0] = PyList_GET_ITEM(item, 0);
            pair[1] = PyList_GET_ITEM(item, 1);
        } else {
            PyErr_Format(PyExc_TypeError, "header %R must be a (name, value) tuple", item);
            return nullptr;
        }
        HttpHeader h;
        if (!latin1_of(pair[0], h.name) || !is_token(h.name)) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "invalid header name %R", pair[0]);
            return nullptr;
        }
        if (!latin1_of(pair[1], h.value) || !is_field_value(h.value)) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "invalid value for header %s: %R", h.name.c_str(), pair[1]);
            return nullptr;
        }
        if (iequals(h.name, "content-length")) {
            std::size_t v = 0;
            bool digits = !h.value.empty() && h.value.size() < 19;
            for (char c : h.value) {
                if (c < '0' || c > '9') { digits = false; break; }
                v = v * 10 + static_cast<std::size_t>(c - '0');
            }
            if (!digits) {
                PyErr_Format(PyExc_ValueError, "invalid Content-Length %s", h.value.c_str());
                return nullptr;
            }
            content_length = v;
        }
        head.headers.push_back(std::move(h));
    }
    ctx->head = std::move(head);
    ctx->content_length = content_length;
    ctx->headers_set = true;
    return PyCFunction_New(&write_def, self);
}

void start_response_dealloc(PyObject* self) {
    PyTypeObject* type = Py_TYPE(self);
    type->tp_free(self);
    Py_DECREF(type);  // heap type
}

PyType_Slot start_response_slots[] = {
    {Py_tp_call, reinterpret_cast<void*>(start_response_call)},
    {Py_tp_dealloc, reinterpret_cast<void*>(start_response_dealloc)},
    {Py_tp_doc, const_cast<char*>("start_response(status, headers, exc_info=None) -> write")},
    {0, nullptr},
};
PyType_Spec start_response_spec = {"gantry.StartResponse", sizeof(StartResponseObject), 0,
                                   Py_TPFLAGS_DEFAULT, start_response_slots};

// ---- the executor ------------------------------------------------------------------------

class WsgiExecutor final : public PythonRuntime::Executor {
public:
    WsgiExecutor(const ExecutorSettings& config, PyObject* app) : threads_count_(std::max(1, config.threads)) {
        init_shared(config, app);  // GIL held by the caller
        for (int i = 0; i < threads_count_; ++i) running_.push_back(std::make_unique<Running>());
        for (int i = 0; i < threads_count_; ++i) threads_.emplace_back([this, i] { thread_main(*running_[i]); });
    }

    ~WsgiExecutor() override {
        stop();
        // The shared objects go with the GIL held.
        PyGILState_STATE g = PyGILState_Ensure();
        Py_XDECREF(reinterpret_cast<PyObject*>(shared_.start_response_type));
        shared_ = Shared{};
        PyGILState_Release(g);
    }

    void dispatch(std::unique_ptr<AppCall> call) override {
        if (stopping_.load(std::memory_order_acquire)) {
            call->sink->fail();
            return;
        }
        waiting_.fetch_add(1, std::memory_order_relaxed);
        queue_.enqueue(std::move(call));
    }

    std::size_t waiting() const override { return waiting_.load(std::memory_order_relaxed); }
    std::uint64_t completed() const override { return completed_.load(std::memory_order_relaxed); }
    void on_completed(std::uint64_t after, std::function<void()> notify) override {
        completed_notify_ = std::move(notify);  // set before any call runs (the worker does it at start)
        completed_limit_ = after;
    }

    std::vector<std::string> expire_overdue(std::chrono::milliseconds limit) override {
        std::vector<std::string> reports;
        auto now = std::chrono::steady_clock::now();
        for (auto& slot : running_) {
            std::lock_guard lock(slot->mutex);
            if (!slot->call || slot->expired || now - slot->started < limit) continue;
            slot->expired = true;
            slot->call->sink->fail_timeout();
            double seconds = std::chrono::duration<double>(now - slot->started).count();
            std::string report = fmt::format("{} {} ran {:.1f} s; its thread's Python stack (most recent call first):\n",
                                             slot->call->request.method, slot->call->request.target, seconds);
            report += dump_python_stack(slot->tstate);
            reports.push_back(std::move(report));
        }
        return reports;
    }

    void abandon() override {
        stopping_.store(true, std::memory_order_release);
        std::unique_ptr<AppCall> call;
        while (queue_.try_dequeue(call))
            if (call) call->sink->fail();
        for (auto& t : threads_) t.detach();
    }

    void stop() override {
        if (stopping_.exchange(true)) {
            join();
            return;
        }
        for (int i = 0; i < threads_count_; ++i) queue_.enqueue(nullptr);  // wake the idle ones
        join();
    }

private:
    void join() {
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }

    // What one Python thread is running, for the --timeout watchdog (another thread).
    struct Running {
        std::mutex mutex;
        AppCall* call = nullptr;
        std::chrono::steady_clock::time_point started;
        PyThreadState* tstate = nullptr;
        bool expired = false;
    };

    void init_shared(const ExecutorSettings& config, PyObject* app);
    void thread_main(Running& slot);
    void handle(AppCall& call);
    PyObject* build_environ(AppCall& call, Ref& input);
    bool respond(RequestCtx& ctx, PyObject* result);
    bool try_send_file(RequestCtx& ctx, PyObject* result, bool& handled);
    bool iterate(RequestCtx& ctx, PyObject* result);
    void on_error(RequestCtx& ctx);
    PyObject* header_key(const std::string& name);

    int threads_count_;
    Shared shared_;
    moodycamel::BlockingConcurrentQueue<std::unique_ptr<AppCall>, CallQueueTraits> queue_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> waiting_{0};
    std::atomic<std::uint64_t> completed_{0};
    std::uint64_t completed_limit_ = UINT64_MAX;
    std::function<void()> completed_notify_;
    std::vector<std::unique_ptr<Running>> running_;
    std::vector<std::thread> threads_;
};

void WsgiExecutor::init_shared(const ExecutorSettings& config, PyObject* app) {
    Shared& s = shared_;
    s.app = Ref::borrow(app);
    if (config.timing_full) {
        // load_app() enabled it before the app was imported; here we only need take().
        Ref module(PyImport_ImportModule("gantry.django_timing"));
        if (module) s.timing_take = Ref(PyObject_GetAttrString(module.get(), "take_raw"));
        if (!s.timing_take) {
            spdlog::default_logger()->error("--timing full: gantry.django_timing unavailable:\n{}", py::take_exception_text());
        }
    }
    auto fail = [](const char* what) {
        throw AppLoadError(std::string("cannot start the WSGI executor (") + what + "):\n" +
                           py::take_exception_text());
    };

    Ref io(PyImport_ImportModule("io"));
    if (!io) fail("import io");
    s.bytes_io = Ref(PyObject_GetAttrString(io.get(), "BytesIO"));
    s.io_open = Ref(PyObject_GetAttrString(io.get(), "open"));
    Ref wsgi_mod(PyImport_ImportModule("gantry._wsgi"));
    if (!wsgi_mod || !s.bytes_io || !s.io_open) fail("import gantry._wsgi");
    s.file_wrapper_type = Ref(PyObject_GetAttrString(wsgi_mod.get(), "FileWrapper"));
    Ref errors(s.file_wrapper_type ? PyObject_CallMethod(wsgi_mod.get(), "ErrorStream", nullptr) : nullptr);
    if (!errors) fail("wsgi.errors");
    s.start_response_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&start_response_spec));
    if (!s.start_response_type) fail("StartResponse type");

    s.k_method = intern("REQUEST_METHOD");
    s.k_script_name = intern("SCRIPT_NAME");
    s.k_path_info = intern("PATH_INFO");
    s.k_query_string = intern("QUERY_STRING");
    s.k_raw_uri = intern("RAW_URI");
    s.k_protocol = intern("SERVER_PROTOCOL");
    s.k_server_name = intern("SERVER_NAME");
    s.k_server_port = intern("SERVER_PORT");
    s.k_remote_addr = intern("REMOTE_ADDR");
    s.k_remote_port = intern("REMOTE_PORT");
    s.k_content_type = intern("CONTENT_TYPE");
    s.k_content_length = intern("CONTENT_LENGTH");
    s.k_url_scheme = intern("wsgi.url_scheme");
    s.k_input = intern("wsgi.input");
    s.s_http10 = intern("HTTP/1.0");
    s.s_http11 = intern("HTTP/1.1");
    s.s_http = intern("http");
    s.s_https = intern("https");
    s.s_empty = intern("");
    s.a_close = intern("close");
    s.a_fileno = intern("fileno");
    s.a_tell = intern("tell");
    s.a_filelike = intern("filelike");
    for (const char* m : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) s.methods.emplace(m, intern(m));

    // SCRIPT_NAME comes from the environment, as in gunicorn.
    if (const char* sn = std::getenv("SCRIPT_NAME")) s.script_name = sn;
    while (!s.script_name.empty() && s.script_name.back() == '/') s.script_name.pop_back();

    Ref gantry_mod(PyImport_ImportModule("gantry"));
    Ref version(gantry_mod ? PyObject_GetAttrString(gantry_mod.get(), "__version__") : nullptr);
    if (!version) fail("gantry.__version__");
    Ref software(PyUnicode_FromFormat("gantry/%U", version.get()));

    Ref env(PyDict_New());
    auto put = [&](const char* key, PyObject* value) {
        if (!value || PyDict_SetItem(env.get(), intern(key).get(), value) < 0) fail(key);
    };
    Ref wsgi_version(Py_BuildValue("(ii)", 1, 0));
    put("wsgi.version", wsgi_version.get());
    put("wsgi.multithread", config.threads > 1 ? Py_True : Py_False);
    put("wsgi.multiprocess", config.multiprocess ? Py_True : Py_False);
    put("wsgi.run_once", Py_False);
    put("wsgi.input_terminated", Py_True);  // bodies are buffered whole before the app runs
    put("wsgi.errors", errors.get());
    put("wsgi.file_wrapper", s.file_wrapper_type.get());
    put("SERVER_SOFTWARE", software.get());
    Ref script_name(PyUnicode_DecodeLatin1(s.script_name.data(), static_cast<Py_ssize_t>(s.script_name.size()), nullptr));
    put("SCRIPT_NAME", script_name.get());
    put("QUERY_STRING", s.s_empty.get());
    s.environ_template = std::move(env);
}

PyObject* WsgiExecutor::header_key(const std::string& name) {
    auto it = shared_.header_keys.find(name);
    if (it != shared_.header_keys.end()) return Ref::borrow(it->second.get()).release();
    PyObject* key = PyUnicode_DecodeLatin1(name.data(), static_cast<Py_ssize_t>(name.size()), nullptr);
    if (key && shared_.header_keys.size() < kHeaderKeyCacheLimit) {
        PyUnicode_InternInPlace(&key);
        shared_.header_keys.emplace(name, Ref::borrow(key));
    }
    return key;
}

// Sets env[key] = value, stealing value. False with a Python error set.
bool set_steal(PyObject* env, PyObject* key, PyObject* value) {
    if (!value) return false;
    int rc = PyDict_SetItem(env, key, value);
    Py_DECREF(value);
    return rc == 0;
}

PyObject* latin1_str(std::string_view s) {
    return PyUnicode_DecodeLatin1(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr);
}

PyObject* WsgiExecutor::build_environ(AppCall& call, Ref& input) {
    const Shared& s = shared_;
    HttpRequest& req = call.request;
    Ref env(PyDict_Copy(s.environ_template.get()));
    if (!env) return nullptr;
    PyObject* e = env.get();

    auto m = s.methods.find(req.method);
    PyObject* method = m != s.methods.end() ? Ref::borrow(m->second.get()).release() : latin1_str(req.method);
    if (!set_steal(e, s.k_method.get(), method)) return nullptr;

    TargetParts parts = split_target(req.target);
    std::string_view path = parts.path;
    if (!s.script_name.empty() && path.substr(0, s.script_name.size()) == s.script_name &&
        (path.size() == s.script_name.size() || path[s.script_name.size()] == '/'))
        path.remove_prefix(s.script_name.size());
    if (!set_steal(e, s.k_path_info.get(), latin1_str(path))) return nullptr;
    if (!parts.query.empty() && !set_steal(e, s.k_query_string.get(), latin1_str(parts.query))) return nullptr;
    if (!set_steal(e, s.k_raw_uri.get(), latin1_str(req.target))) return nullptr;
    if (PyDict_SetItem(e, s.k_protocol.get(), req.version == 10 ? s.s_http10.get() : s.s_http11.get()) < 0)
        return nullptr;
    if (PyDict_SetItem(e, s.k_url_scheme.get(),
                       req.url_scheme == "https" ? s.s_https.get()
                       : req.url_scheme == "http" ? s.s_http.get()
                                                  : Ref(latin1_str(req.url_scheme)).get()) < 0)
        return nullptr;
    bool unix_socket = req.server_name.rfind("unix:", 0) == 0;
    if (!set_steal(e, s.k_server_name.get(), latin1_str(req.server_name))) return nullptr;
    if (!set_steal(e, s.k_server_port.get(),
                   unix_socket ? Ref::borrow(s.s_empty.get()).release()
                               : PyUnicode_FromFormat("%u", unsigned(req.server_port))))
        return nullptr;
    if (!set_steal(e, s.k_remote_addr.get(), latin1_str(req.remote_addr))) return nullptr;
    if (!set_steal(e, s.k_remote_port.get(),
                   req.remote_addr.empty() ? Ref::borrow(s.s_empty.get()).release()
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
        PyObject* k = key == "CONTENT_TYPE"     ? Ref::borrow(s.k_content_type.get()).release()
                      : key == "CONTENT_LENGTH" ? Ref::borrow(s.k_content_length.get()).release()
                                                : header_key(key);
        Ref kref(k);
        if (!k || !set_steal(e, k, latin1_str(value))) return nullptr;
    }

    // wsgi.input: BytesIO over the body in memory, or the spilled file as a binary file object.
    if (req.body.in_memory()) {
        Ref bytes(PyBytes_FromStringAndSize(req.body.memory().data(), static_cast<Py_ssize_t>(req.body.size())));
        if (!bytes) return nullptr;
        input = Ref(PyObject_CallOneArg(s.bytes_io.get(), bytes.get()));
    } else {
        int fd = req.body.release_file();
        input = Ref(PyObject_CallFunction(s.io_open.get(), "is", fd, "rb"));
        if (!input) ::close(fd);
    }
    if (!input || PyDict_SetItem(e, s.k_input.get(), input.get()) < 0) return nullptr;
    return env.release();
}

void WsgiExecutor::on_error(RequestCtx& ctx) {
    std::string text = py::take_exception_text();
    const HttpRequest& req = ctx.call->request;
    if (ctx.client_gone) {
        spdlog::default_logger()->debug("{} {}: client went away: {}", req.method, req.target, text);
        if (ctx.phase == RequestCtx::Phase::kStreaming) ctx.sink->finish_stream();
    } else {
        spdlog::default_logger()->error("Error handling request {} {}\n{}", req.method, req.target, text);
        ctx.sink->fail();
    }
    ctx.phase = RequestCtx::Phase::kDone;
}

bool WsgiExecutor::try_send_file(RequestCtx& ctx, PyObject* result, bool& handled) {
    handled = false;
    if (ctx.headers_sent() || !ctx.headers_set) return true;
    // Any failure below means "not a real file": fall back to iterating the wrapper.
    Ref filelike(PyObject_GetAttr(result, shared_.a_filelike.get()));
    Ref fdobj(filelike ? PyObject_CallMethodNoArgs(filelike.get(), shared_.a_fileno.get()) : nullptr);
    long fd_long = fdobj ? PyLong_AsLong(fdobj.get()) : -1;
    int fd = fd_long >= 0 && fd_long <= INT32_MAX ? static_cast<int>(fd_long) : -1;
    if (fd < 0) {
        PyErr_Clear();
        return true;
    }
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return true;
    Ref pos(PyObject_CallMethodNoArgs(filelike.get(), shared_.a_tell.get()));
    long long offset = pos ? PyLong_AsLongLong(pos.get()) : -1;
    if (offset < 0) {
        PyErr_Clear();
        offset = ::lseek(fd, 0, SEEK_CUR);
        if (offset < 0) return true;
    }
    std::size_t remaining = st.st_size > offset ? static_cast<std::size_t>(st.st_size - offset) : 0;
    std::size_t count = ctx.content_length ? std::min(*ctx.content_length, remaining) : remaining;
    int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) return true;
    handled = true;
    ctx.start_stream();
    bool ok;
    Py_BEGIN_ALLOW_THREADS
    ok = guarded([&] { return ctx.sink->send_file(own, static_cast<off_t>(offset), count); });
    Py_END_ALLOW_THREADS
    if (!ok) ctx.client_gone = true;
    return true;
}

bool WsgiExecutor::iterate(RequestCtx& ctx, PyObject* result) {
    using Phase = RequestCtx::Phase;
    Ref it(PyObject_GetIter(result));
    if (!it) return false;
    std::string pending;  // buffered toward a whole response of Content-Length bytes
    for (;;) {
        Ref chunk(PyIter_Next(it.get()));
        if (!chunk) break;
        if (!PyBytes_Check(chunk.get())) {
            PyErr_Format(PyExc_TypeError, "the response iterable must yield bytes, not %.100s",
                         Py_TYPE(chunk.get())->tp_name);
            return false;
        }
        auto n = static_cast<std::size_t>(PyBytes_GET_SIZE(chunk.get()));
        if (n == 0) continue;
        if (!ctx.headers_set) {
            PyErr_SetString(PyExc_RuntimeError, "the application produced data before calling start_response()");
            return false;
        }
        const char* data = PyBytes_AS_STRING(chunk.get());
        if (ctx.phase == Phase::kNone && ctx.content_length && *ctx.content_length <= kWholeResponseLimit) {
            pending.append(data, n);
            if (pending.size() >= *ctx.content_length) {
                pending.resize(*ctx.content_length);  // never more than announced
                ctx.sink->send_whole(std::move(ctx.head), std::move(pending));
                ctx.phase = Phase::kDone;
                return true;
            }
            continue;
        }
        if (ctx.phase == Phase::kNone) ctx.start_stream();
        if (!ctx.write_chunk(std::string(data, n))) return true;  // client gone: stop producing
    }
    if (PyErr_Occurred()) return false;
    if (ctx.phase == Phase::kNone) {
        if (!ctx.headers_set) {
            PyErr_SetString(PyExc_RuntimeError, "the application returned without calling start_response()");
            return false;
        }
        ctx.sink->send_whole(std::move(ctx.head), std::move(pending));
        ctx.phase = Phase::kDone;
    }
    return true;
}

bool WsgiExecutor::respond(RequestCtx& ctx, PyObject* result) {
    using Phase = RequestCtx::Phase;
    bool is_list = PyList_CheckExact(result), is_tuple = PyTuple_CheckExact(result);
    if ((is_list || is_tuple) && ctx.phase == Phase::kNone) {
        Py_ssize_t n = is_list ? PyList_GET_SIZE(result) : PyTuple_GET_SIZE(result);
        PyObject** items = is_list ? reinterpret_cast<PyListObject*>(result)->ob_item
                                   : reinterpret_cast<PyTupleObject*>(result)->ob_item;
        std::size_t total = 0;
        for (Py_ssize_t i = 0; i < n; ++i) {
            if (!PyBytes_Check(items[i])) {
                PyErr_Format(PyExc_TypeError, "the response iterable must yield bytes, not %.100s",
                             Py_TYPE(items[i])->tp_name);
                return false;
            }
            total += static_cast<std::size_t>(PyBytes_GET_SIZE(items[i]));
        }
        if (!ctx.headers_set) {
            PyErr_SetString(PyExc_RuntimeError, "the application returned without calling start_response()");
            return false;
        }
        if (ctx.content_length && total > *ctx.content_length) total = *ctx.content_length;
        std::string body;
        body.reserve(total);
        for (Py_ssize_t i = 0; i < n && body.size() < total; ++i) {
            std::size_t take = std::min(static_cast<std::size_t>(PyBytes_GET_SIZE(items[i])), total - body.size());
            body.append(PyBytes_AS_STRING(items[i]), take);
        }
        ctx.sink->send_whole(std::move(ctx.head), std::move(body));
        ctx.phase = Phase::kDone;
        return true;
    }
    if (Py_TYPE(result) == reinterpret_cast<PyTypeObject*>(shared_.file_wrapper_type.get())) {
        bool handled = false;
        if (!try_send_file(ctx, result, handled)) return false;
        if (handled) return true;
    }
    return iterate(ctx, result);
}

void WsgiExecutor::handle(AppCall& call) {
    using Phase = RequestCtx::Phase;
    call.sink->app_started();  // the end of the wait for a Python thread (timing)
    std::optional<DeferredFinish> deferred;
    if (shared_.timing_take) deferred.emplace(*call.sink);
    RequestCtx ctx;
    ctx.shared = &shared_;
    ctx.call = &call;
    ctx.sink = deferred ? static_cast<ResponseSink*>(&*deferred) : call.sink.get();
    // However handle() returns, a deferred final call goes out, after the breakdown.
    struct Finish {
        WsgiExecutor* self;
        std::optional<DeferredFinish>& deferred;
        ~Finish() {
            if (!deferred) return;
            Ref record(PyObject_CallNoArgs(self->shared_.timing_take.get()));
            AppBreakdown breakdown;
            if (!record) {
                PyErr_Clear();
            } else if (breakdown_from(record.get(), breakdown)) {
                deferred->app_breakdown(std::move(breakdown));
            }
            guarded([&] {
                deferred->flush();
                return true;
            });
        }
    } finish{this, deferred};
    Ref input;
    Ref environ(build_environ(call, input));
    if (!environ) {
        on_error(ctx);
        return;
    }
    Ref start_response(PyType_GenericAlloc(shared_.start_response_type, 0));
    if (!start_response) {
        on_error(ctx);
        return;
    }
    reinterpret_cast<StartResponseObject*>(start_response.get())->ctx = &ctx;
    // The app may keep start_response/write past this call: they must not reach the dead ctx,
    // even if a C++ exception leaves early.
    struct Detach {
        PyObject* sr;
        ~Detach() { reinterpret_cast<StartResponseObject*>(sr)->ctx = nullptr; }
    } detach{start_response.get()};

    PyObject* args[] = {environ.get(), start_response.get()};
    Ref result(PyObject_Vectorcall(shared_.app.get(), args, 2, nullptr));
    bool ok = result && respond(ctx, result.get());
    if (ok && ctx.phase == Phase::kDone && queue_.size_approx() == 0) {
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
        Ref close(PyObject_GetAttr(result.get(), shared_.a_close.get()));
        if (!close) {
            PyErr_Clear();
        } else if (!Ref(PyObject_CallNoArgs(close.get()))) {
            if (ok && ctx.phase != Phase::kDone) {
                ok = false;
            } else {
                spdlog::default_logger()->error("Error closing the response of {} {}\n{}", call.request.method,
                                                call.request.target, py::take_exception_text());
            }
        }
        if (!ok && pending_type) PyErr_Restore(pending_type, pending_value, pending_tb);
    }
    if (!ok) {
        on_error(ctx);
    } else if (ctx.phase == Phase::kStreaming) {
        ctx.sink->finish_stream();
        ctx.phase = Phase::kDone;
    }

    if (input) {
        Ref closed(PyObject_CallMethodNoArgs(input.get(), shared_.a_close.get()));
        if (!closed) PyErr_Clear();
    }
}

void WsgiExecutor::thread_main(Running& slot) {
    // This thread's own PyThreadState; the GIL is held only while a call runs.
    PyGILState_STATE gil = PyGILState_Ensure();
    PyThreadState* tstate = PyEval_SaveThread();
    {
        std::lock_guard lock(slot.mutex);
        slot.tstate = tstate;
    }
    std::unique_ptr<AppCall> call;
    auto run = [&] {
        waiting_.fetch_sub(1, std::memory_order_relaxed);
        {
            std::lock_guard lock(slot.mutex);
            slot.call = call.get();
            slot.started = std::chrono::steady_clock::now();
            slot.expired = false;
        }
        // Nothing may escape and end the thread: a C++ exception (from a sink, or bad_alloc)
        // fails the request.
        try {
            handle(*call);
        } catch (const std::exception& e) {
            spdlog::default_logger()->error("Error handling request {} {}: {}", call->request.method,
                                            call->request.target, e.what());
            PyErr_Clear();
            guarded([&] { call->sink->fail(); return true; });
        }
        {
            std::lock_guard lock(slot.mutex);  // before the call goes: the watchdog reads it
            slot.call = nullptr;
        }
        if (completed_.fetch_add(1, std::memory_order_relaxed) + 1 >= completed_limit_ && completed_notify_)
            completed_notify_();
        call.reset();
    };
    for (;;) {
        if (!queue_.wait_dequeue_timed(call, std::chrono::milliseconds(200))) {
            if (stopping_.load(std::memory_order_acquire)) break;
            continue;
        }
        if (!call) {
            if (!stopping_.load(std::memory_order_acquire)) continue;
            // Stopping: finish what is queued, then leave.
            PyEval_RestoreThread(tstate);
            while (queue_.try_dequeue(call))
                if (call) run();
            PyEval_SaveThread();
            break;
        }
        PyEval_RestoreThread(tstate);
        run();
        // Take the next call without giving up the GIL when one is already waiting.
        while (queue_.try_dequeue(call) && call) run();
        PyEval_SaveThread();
    }
    PyEval_RestoreThread(tstate);
    PyGILState_Release(gil);
}

}  // namespace

std::unique_ptr<PythonRuntime::Executor> make_wsgi_executor(const ExecutorSettings& settings, PyObject* app) {
    return std::make_unique<WsgiExecutor>(settings, app);
}

}  // namespace gantry
