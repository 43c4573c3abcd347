#pragma once
// Internal to embed/: another thread's Python stack, for the --timeout report.
#include <string>

#include "embed/runtime/gil.hpp"

namespace gantry {

// The Python stack of `thread`, as faulthandler writes it (most recent call first). Read without
// the GIL (the thread may be stuck holding it), so only for a thread that is not going to move
// much - a stuck one. No GilHeld: this is the one reader of Python state that must not wait for it.
std::string dump_python_stack(PyThreadState* thread);

}  // namespace gantry
