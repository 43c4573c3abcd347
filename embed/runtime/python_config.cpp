// The master's interpreter for a gunicorn config file: reading the file (gantry/_config.py), then
// applying the settings it led to, as start() would have.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "embed/runtime/interpreter.hpp"
#include "embed/runtime/python_runtime.hpp"

namespace gantry {

namespace fs = std::filesystem;

namespace {

std::string text_of(PyObject* s) {
    py::Ref bytes(PyUnicode_Check(s) ? PyUnicode_EncodeFSDefault(s) : nullptr);
    if (!bytes) {
        PyErr_Clear();
        return {};
    }
    return std::string(PyBytes_AS_STRING(bytes.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(bytes.get())));
}

// sys.path.insert(0, dir) unless it is there already (gunicorn's rule for --chdir and --pythonpath).
bool put_first_on_path(GilHeld&, const std::string& dir) {
    PyObject* path = PySys_GetObject("path");  // borrowed
    py::Ref item(PyUnicode_DecodeFSDefault(dir.c_str()));
    if (!path || !PyList_Check(path) || !item) return false;
    int present = PySequence_Contains(path, item.get());
    return present == 1 || (present == 0 && PyList_Insert(path, 0, item.get()) == 0);
}

}  // namespace

void PythonRuntime::configure(const RuntimeSettings& settings) {
    GilHeld& gil = interpreter_->starting_thread();
    bool ok = true;
    if (!settings.env.empty()) {
        py::Ref os(PyImport_ImportModule("os"));
        py::Ref environ(os ? PyObject_GetAttrString(os.get(), "environ") : nullptr);
        ok = static_cast<bool>(environ);
        for (const auto& [key, value] : settings.env) {
            if (!ok) break;
            // os.environ's __setitem__ calls putenv as well: C code and subprocesses see it.
            py::Ref k(PyUnicode_DecodeFSDefault(key.c_str())), v(PyUnicode_DecodeFSDefault(value.c_str()));
            ok = k && v && PyObject_SetItem(environ.get(), k.get(), v.get()) == 0;
        }
    }
    if (!ok) throw AppLoadError("cannot set the --env variables:\n" + py::take_exception_text(gil));
    if (!settings.chdir.empty()) {
        if (::chdir(settings.chdir.c_str()) != 0)
            throw AppLoadError("cannot chdir to " + settings.chdir + ": " + std::strerror(errno));
        std::error_code ec;
        ok = put_first_on_path(gil, fs::current_path(ec).string());
    }
    for (auto it = settings.pythonpath.rbegin(); ok && it != settings.pythonpath.rend(); ++it) {
        if (it->empty()) continue;
        std::error_code ec;
        ok = put_first_on_path(gil, fs::absolute(*it, ec).string());
    }
    if (!ok) throw AppLoadError("cannot set up sys.path:\n" + py::take_exception_text(gil));
    RuntimeSettings kept = settings;
    kept.virtualenv = interpreter_->settings().virtualenv;  // the interpreter it started as
    interpreter_->set_settings(std::move(kept));
}

std::vector<std::pair<std::string, std::vector<std::string>>> PythonRuntime::read_config_file(
    const std::string& location, const std::vector<std::pair<std::string, std::string>>& forms) {
    GilHeld& gil = interpreter_->starting_thread();
    py::Ref form_map(PyDict_New());
    bool ok = static_cast<bool>(form_map);
    for (const auto& [name, form] : forms) {
        if (!ok) break;
        py::Ref v(PyUnicode_FromString(form.c_str()));
        ok = v && PyDict_SetItemString(form_map.get(), name.c_str(), v.get()) == 0;
    }
    py::Ref module(ok ? PyImport_ImportModule("gantry._config") : nullptr);
    py::Ref found(module ? PyObject_CallMethod(module.get(), "read", "sO", location.c_str(), form_map.get()) : nullptr);
    if (!found) {
        // A value gunicorn's validators refuse is one line; a failing file is its traceback.
        PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        py::Ref t(type), v(value), b(tb);
        py::Ref error_class(module ? PyObject_GetAttrString(module.get(), "ConfigFileError") : nullptr);
        if (error_class && v && PyObject_IsInstance(v.get(), error_class.get()) == 1) {
            py::Ref text(PyObject_Str(v.get()));
            throw AppLoadError(text ? text_of(text.get()) : "invalid config file");
        }
        PyErr_Restore(t.release(), v.release(), b.release());
        throw AppLoadError("Failed to read config file: " + location + "\n" + py::take_exception_text(gil));
    }
    std::vector<std::pair<std::string, std::vector<std::string>>> out;
    // [(name, [values])]: built by gantry/_config.py, so its shape is known.
    for (Py_ssize_t i = 0; PyList_Check(found.get()) && i < PyList_GET_SIZE(found.get()); ++i) {
        PyObject* pair = PyList_GET_ITEM(found.get(), i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) continue;
        std::vector<std::string> values;
        PyObject* list = PyTuple_GET_ITEM(pair, 1);
        for (Py_ssize_t j = 0; PyList_Check(list) && j < PyList_GET_SIZE(list); ++j)
            values.push_back(text_of(PyList_GET_ITEM(list, j)));
        out.emplace_back(text_of(PyTuple_GET_ITEM(pair, 0)), std::move(values));
    }
    return out;
}

bool PythonRuntime::defines_hook(const std::string& name) {
    GilHeld& gil = interpreter_->starting_thread();
    py::Ref hooks(PyImport_ImportModule("gantry._hooks"));
    py::Ref answer(hooks ? PyObject_CallMethod(hooks.get(), "defined", "s", name.c_str()) : nullptr);
    if (!answer) {
        spdlog::default_logger()->error("cannot look up the {} hook:\n{}", name, py::take_exception_text(gil));
        return false;
    }
    return answer.get() == Py_True;
}

bool PythonRuntime::call_hook(const std::string& name, const HookCall& c) {
    GilHeld& gil = interpreter_->starting_thread();
    py::Ref hooks(PyImport_ImportModule("gantry._hooks"));
    py::Ref answer(hooks ? PyObject_CallMethod(hooks.get(), "call", "siiiiii", name.c_str(), c.master_pid, c.workers,
                                               c.worker_pid, c.worker_age, c.new_value, c.old_value)
                         : nullptr);
    if (!answer) {
        // gantry._hooks catches what a hook raises; this is gantry's own failure.
        spdlog::default_logger()->error("cannot call the {} hook:\n{}", name, py::take_exception_text(gil));
        return false;
    }
    return answer.get() == Py_True;
}

}  // namespace gantry
