#pragma once
// The ASGI 3.0 executor: one asyncio (or uvloop) event loop on a thread of its own, serving the
// loaded app. No Python.h here.
#include <memory>

#include "embed/runtime/python_runtime.hpp"

namespace gantry {

// Starts the loop thread and, per settings.lifespan, runs the app's lifespan startup before it
// returns; releases the GIL from the calling thread as start_wsgi_executor does. Destroy the
// executor before the runtime: its stop() runs the lifespan shutdown. Throws AppLoadError (no app
// loaded, the loop could not be made, or startup failed).
std::unique_ptr<AppExecutor> start_asgi_executor(PythonRuntime& runtime, const ExecutorSettings& settings);

}  // namespace gantry
