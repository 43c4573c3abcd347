// The `_gantry` native module: the server's logs for Python code.
#include "embed/runtime/native_module.hpp"

#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "embed/runtime/gil.hpp"

namespace gantry {

namespace {

// Logs through the default logger with the GIL released: sinks may block on I/O.
void log_released(GilHeld& gil, spdlog::level::level_enum level, std::string message) {
    GilReleased released(gil);
    spdlog::default_logger()->log(level, "{}", message);
}

PyObject* native_log_error(PyObject*, PyObject* arg) {
    GilHeld gil = GilHeld::from_python_call();
    Py_ssize_t size = 0;
    const char* text = PyUnicode_AsUTF8AndSize(arg, &size);
    if (!text) return nullptr;
    log_released(gil, spdlog::level::err, std::string(text, static_cast<std::size_t>(size)));
    Py_RETURN_NONE;
}

PyObject* native_log(PyObject*, PyObject* args) {
    GilHeld gil = GilHeld::from_python_call();
    const char* level_name = nullptr;
    const char* text = nullptr;
    Py_ssize_t size = 0;
    if (!PyArg_ParseTuple(args, "ss#:log", &level_name, &text, &size)) return nullptr;
    auto level = spdlog::level::from_str(level_name);  // unknown names give "off"
    if (level == spdlog::level::off && std::string_view(level_name) != "off") {
        PyErr_Format(PyExc_ValueError, "unknown log level %s", level_name);
        return nullptr;
    }
    log_released(gil, level, std::string(text, static_cast<std::size_t>(size)));
    Py_RETURN_NONE;
}

PyMethodDef native_methods[] = {
    {"log_error", native_log_error, METH_O, "log_error(text): one record in the server's error log"},
    {"log", native_log, METH_VARARGS, "log(level, text): level is debug/info/warning/error/critical"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef native_module = {PyModuleDef_HEAD_INIT, "_gantry", "gantry's native side", -1,
                             native_methods, nullptr, nullptr, nullptr, nullptr};

PyObject* PyInit__gantry() { return PyModule_Create(&native_module); }

}  // namespace

bool register_native_module() { return PyImport_AppendInittab("_gantry", &PyInit__gantry) == 0; }

}  // namespace gantry
