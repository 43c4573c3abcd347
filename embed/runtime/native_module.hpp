#pragma once
// Internal to embed/: the `_gantry` native module, what Python code needs from the server
// (log_error, log). Registered before Py_Initialize.
namespace gantry {
bool register_native_module();
}  // namespace gantry
