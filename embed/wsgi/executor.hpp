#pragma once
// The WSGI (PEP 3333) executor: what the worker starts to serve the loaded app. No Python.h here.
#include <memory>

#include "embed/runtime/python_runtime.hpp"

namespace gantry {

// Starts settings.threads Python threads serving runtime's loaded app, and releases the GIL from
// the calling thread (the one that started the runtime) until the runtime is destroyed. Destroy
// the executor before the runtime. Throws AppLoadError (no app loaded, an executor already
// running, or the WSGI objects could not be made).
std::unique_ptr<AppExecutor> start_wsgi_executor(PythonRuntime& runtime, const ExecutorSettings& settings);

}  // namespace gantry
