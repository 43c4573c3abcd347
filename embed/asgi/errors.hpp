#pragma once
// Internal to embed/asgi: how an app's errors and misuse of the ASGI protocol become a Python
// exception raised into the app, or a log entry and a 500 (a closed connection once the head went).
#include <string>
#include <string_view>

#include "embed/runtime/gil.hpp"

namespace gantry::asgi {

// The traceback of `exc` (an exception object) as text, as the error log shows it.
std::string exception_text(GilHeld& gil, PyObject* exc);

// Sets RuntimeError("Expected ASGI message ..., but got ...") and returns nullptr, for a C
// function's `return unexpected_message(...)`: a message out of order.
PyObject* unexpected_message(GilHeld& gil, std::string_view expected, PyObject* got);

}  // namespace gantry::asgi
