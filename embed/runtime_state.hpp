#pragma once
// Internal to embed/: the state behind PythonRuntime, shared with the WSGI executor.
#include <memory>

#include "embed/py_util.hpp"
#include "embed/python_runtime.hpp"

namespace gantry {

// Builds the WSGI executor serving `app` (borrowed; the executor takes its own reference). The GIL
// is held by the caller. Defined in wsgi_executor.cpp.
std::unique_ptr<PythonRuntime::Executor> make_wsgi_executor(const ExecutorSettings& settings, PyObject* app);

// The `_gantry` native module's init function (registered before Py_Initialize).
PyObject* init_gantry_native_module();

}  // namespace gantry
