// Interpreter start, app loading and fork support. The executors are in embed/wsgi/ (and embed/asgi/).
#include "embed/runtime/python_runtime.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "embed/runtime/cache_module.hpp"
#include "embed/runtime/interpreter.hpp"
#include "embed/runtime/native_module.hpp"

namespace gantry {

namespace fs = std::filesystem;

namespace {

// ---- start ---------------------------------------------------------------------------------

void check_status(PyStatus status, PyConfig* config, const char* what) {
    if (PyStatus_Exception(status)) {
        std::string msg = std::string("Python initialisation failed (") + what + "): " +
                          (status.err_msg ? status.err_msg : "unknown error");
        PyConfig_Clear(config);
        throw AppLoadError(msg);
    }
}

std::string gantry_python_dir() {
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        fs::path installed = exe.parent_path() / ".." / "lib" / "gantry" / "python";
        if (fs::is_directory(installed / "gantry", ec)) return fs::weakly_canonical(installed, ec).string();
    }
    return GANTRY_SOURCE_PYTHON_DIR;
}

// The interpreter a virtualenv would run: <venv>/bin/python, so pyvenv.cfg is read by getpath.
std::string venv_python(const std::string& venv) {
    for (const char* name : {"python", "python3"}) {
        fs::path p = fs::path(venv) / "bin" / name;
        if (::access(p.c_str(), X_OK) == 0) return fs::absolute(p).string();
    }
    throw AppLoadError("virtualenv " + venv + " has no bin/python");
}

bool list_insert_str(GilHeld&, PyObject* list, Py_ssize_t index, const std::string& s) {
    py::Ref item(PyUnicode_DecodeFSDefault(s.c_str()));
    if (!item) return false;
    if (index < 0) return PyList_Append(list, item.get()) == 0;
    return PyList_Insert(list, index, item.get()) == 0;
}

}  // namespace

Interpreter::~Interpreter() {
    released_.reset();  // the starting thread holds the GIL again
    app_.reset();
    if (Py_FinalizeEx() < 0) spdlog::default_logger()->warn("errors while finalising Python");
}

void Interpreter::release_starting_thread() {
    if (released_) throw AppLoadError("the executor is already running");
    released_.emplace(start_gil_);
}

PythonRuntime::PythonRuntime(std::unique_ptr<Interpreter> interpreter) : interpreter_(std::move(interpreter)) {}

std::unique_ptr<PythonRuntime> PythonRuntime::start(const RuntimeSettings& config) {
    if (Py_IsInitialized()) throw AppLoadError("the Python interpreter is already running in this process");

    // -e/--env first: the interpreter reads PYTHON* variables at start, and the app os.environ.
    for (const auto& [key, value] : config.env) ::setenv(key.c_str(), value.c_str(), 1);

    std::string workdir;
    if (!config.chdir.empty()) {
        if (::chdir(config.chdir.c_str()) != 0)
            throw AppLoadError("cannot chdir to " + config.chdir + ": " + std::strerror(errno));
    }
    {
        std::error_code ec;
        workdir = fs::current_path(ec).string();
    }

    std::string venv = config.virtualenv;
    if (venv.empty()) {
        if (const char* v = std::getenv("VIRTUAL_ENV")) venv = v;
    }
    std::string program = venv.empty() ? std::string(GANTRY_PYTHON_EXECUTABLE) : venv_python(venv);

    if (!register_native_module()) throw AppLoadError("cannot register the _gantry module");
    if (!register_cache_module()) throw AppLoadError("cannot register the _gantry_cache module");

    PyConfig pc;
    PyConfig_InitPythonConfig(&pc);
    pc.isolated = 0;
    pc.parse_argv = 0;               // our argv is gantry's, not python's
    pc.install_signal_handlers = 0;  // the server owns the signals
    check_status(PyConfig_SetBytesString(&pc, &pc.program_name, program.c_str()), &pc, "program_name");
    check_status(PyConfig_SetBytesString(&pc, &pc.executable, program.c_str()), &pc, "executable");
    char* argv[] = {const_cast<char*>("gantry")};
    check_status(PyConfig_SetBytesArgv(&pc, 1, argv), &pc, "argv");
    check_status(Py_InitializeFromConfig(&pc), &pc, "Py_InitializeFromConfig");
    PyConfig_Clear(&pc);

    // From here on this thread holds the GIL, and the runtime finalises Python if start fails.
    std::unique_ptr<PythonRuntime> runtime(new PythonRuntime(std::make_unique<Interpreter>(config)));
    GilHeld& gil = runtime->interpreter_->starting_thread();

    // sys.path as gunicorn leaves it: --pythonpath entries, then the working directory, then
    // the interpreter's own entries; gantry's package last so it never shadows the app.
    PyObject* path = PySys_GetObject("path");  // borrowed
    bool ok = path && PyList_Check(path);
    if (ok) {
        py::Ref wd(PyUnicode_DecodeFSDefault(workdir.c_str()));
        int present = wd ? PySequence_Contains(path, wd.get()) : -1;
        ok = present == 1 || (present == 0 && PyList_Insert(path, 0, wd.get()) == 0);
    }
    for (auto it = config.pythonpath.rbegin(); ok && it != config.pythonpath.rend(); ++it) {
        if (it->empty()) continue;
        std::error_code ec;
        ok = list_insert_str(gil, path, 0, fs::absolute(*it, ec).string());
    }
    if (ok) ok = list_insert_str(gil, path, -1, gantry_python_dir());
    if (ok) {
        py::Ref gantry_pkg(PyImport_ImportModule("gantry"));
        ok = static_cast<bool>(gantry_pkg);
    }
    if (!ok) throw AppLoadError("cannot set up sys.path for gantry:\n" + py::take_exception_text(gil));
    spdlog::default_logger()->debug("Python {} started as {}", Py_GetVersion(), program);
    return runtime;
}

PythonRuntime::~PythonRuntime() = default;  // the interpreter finalises Python

void PythonRuntime::load_app() {
    GilHeld& gil = interpreter_->starting_thread();
    const std::string& spec = interpreter_->settings().app;
    if (interpreter_->settings().timing_full) {
        // Django's middleware chain is wrapped as it is built: before the app's import builds it.
        py::Ref timing(PyImport_ImportModule("gantry.django_timing"));
        py::Ref enabled(timing ? PyObject_CallMethod(timing.get(), "enable", nullptr) : nullptr);
        if (!enabled) throw AppLoadError("--timing full: cannot enable gantry.django_timing:\n" + py::take_exception_text(gil));
    }
    py::Ref loader(PyImport_ImportModule("gantry._loader"));
    py::Ref app;
    if (loader) app = py::Ref(PyObject_CallMethod(loader.get(), "load", "s", spec.c_str()));
    if (!app) throw AppLoadError(py::take_exception_text(gil));
    if (interpreter_->settings().import_django_urls) {
        py::Ref urls(PyObject_CallMethod(loader.get(), "import_django_urls", nullptr));
        if (!urls) throw AppLoadError(py::take_exception_text(gil));
    }
    interpreter_->set_app(gil, std::move(app));
}

bool PythonRuntime::app_loaded() const { return interpreter_->has_app(); }

bool PythonRuntime::app_is_asgi() {
    GilHeld& gil = interpreter_->starting_thread();
    py::Ref module(PyImport_ImportModule("gantry._asgi"));
    py::Ref answer(module ? PyObject_CallMethod(module.get(), "is_asgi", "O", interpreter_->app(gil)) : nullptr);
    if (!answer) throw AppLoadError("cannot tell whether the app is ASGI:\n" + py::take_exception_text(gil));
    return answer.get() == Py_True;
}

namespace {

bool str_item(GilHeld&, PyObject* tuple, Py_ssize_t i, std::string& out) {
    PyObject* item = PyTuple_GetItem(tuple, i);  // borrowed
    if (!item || !PyUnicode_Check(item)) return false;
    py::Ref bytes(PyUnicode_EncodeFSDefault(item));
    if (!bytes) return false;
    out.assign(PyBytes_AS_STRING(bytes.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(bytes.get())));
    return true;
}

}  // namespace

DjangoStaticSettings PythonRuntime::django_static_settings() {
    GilHeld& gil = interpreter_->starting_thread();
    DjangoStaticSettings out;
    py::Ref module(PyImport_ImportModule("gantry._static"));
    py::Ref result(module ? PyObject_CallMethod(module.get(), "describe", nullptr) : nullptr);
    if (!result) {
        out.notes.push_back("cannot read Django's static settings:\n" + py::take_exception_text(gil));
        return out;
    }
    if (result.get() == Py_None) return out;
    // (found, debug, static_url, static_root, [(dir, sub_prefix)], [notes])
    PyObject* t = result.get();
    bool ok = PyTuple_Check(t) && PyTuple_GET_SIZE(t) == 6;
    if (ok) {
        out.found = PyObject_IsTrue(PyTuple_GET_ITEM(t, 0)) == 1;
        out.debug = PyObject_IsTrue(PyTuple_GET_ITEM(t, 1)) == 1;
        ok = str_item(gil, t, 2, out.static_url) && str_item(gil, t, 3, out.static_root);
    }
    if (ok) {
        PyObject* sources = PyTuple_GET_ITEM(t, 4);
        ok = PyList_Check(sources);
        for (Py_ssize_t i = 0; ok && i < PyList_GET_SIZE(sources); ++i) {
            PyObject* pair = PyList_GET_ITEM(sources, i);
            StaticSource source;
            ok = PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2 && str_item(gil, pair, 0, source.dir) &&
                 str_item(gil, pair, 1, source.sub_prefix);
            if (ok) out.finder_sources.push_back(std::move(source));
        }
    }
    if (ok) {
        PyObject* notes = PyTuple_GET_ITEM(t, 5);
        ok = PyList_Check(notes);
        for (Py_ssize_t i = 0; ok && i < PyList_GET_SIZE(notes); ++i) {
            PyObject* note = PyList_GET_ITEM(notes, i);
            const char* text = PyUnicode_Check(note) ? PyUnicode_AsUTF8(note) : nullptr;
            if (text) out.notes.emplace_back(text);
        }
    }
    if (!ok) {
        PyErr_Clear();
        DjangoStaticSettings failed;
        failed.notes.push_back("gantry._static.describe() returned an unexpected value");
        return failed;
    }
    return out;
}

void PythonRuntime::before_fork() { PyOS_BeforeFork(); }
void PythonRuntime::after_fork_parent() { PyOS_AfterFork_Parent(); }
void PythonRuntime::after_fork_child() { PyOS_AfterFork_Child(); }

}  // namespace gantry
