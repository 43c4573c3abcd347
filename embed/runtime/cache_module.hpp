#pragma once
// Internal to embed/: registers the `_gantry_cache` module (before Py_Initialize).
namespace gantry {
bool register_cache_module();
}  // namespace gantry
