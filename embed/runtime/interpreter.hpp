#pragma once
// Internal to embed/: the interpreter behind a PythonRuntime, as the protocol executors
// (embed/wsgi, embed/asgi) see it when they start.
#include <optional>

#include "embed/runtime/gil.hpp"
#include "embed/runtime/py_util.hpp"
#include "embed/runtime/python_runtime.hpp"

namespace gantry {

class Interpreter {
public:
    explicit Interpreter(RuntimeSettings settings) : settings_(std::move(settings)) {}
    ~Interpreter();  // gives the starting thread the GIL back, then finalises Python

    const RuntimeSettings& settings() const { return settings_; }
    void set_settings(RuntimeSettings settings) { settings_ = std::move(settings); }

    // The starting thread's hold on the GIL: valid until release_starting_thread().
    GilHeld& starting_thread() { return start_gil_; }
    // The loaded application (null before load_app()).
    PyObject* app(GilHeld&) const { return app_.get(); }
    bool has_app() const { return static_cast<bool>(app_); }
    void set_app(GilHeld&, py::Ref app) { app_ = std::move(app); }

    // An executor's threads are running: the starting thread gives up the GIL until the
    // interpreter is finalised. Once only (AppLoadError on the second call).
    void release_starting_thread();
    bool executor_started() const { return released_.has_value(); }

private:
    RuntimeSettings settings_;
    InterpreterStartGil start_gil_;
    py::Ref app_;
    std::optional<GilReleased> released_;
};

}  // namespace gantry
