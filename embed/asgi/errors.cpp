#include "embed/asgi/errors.hpp"

#include "embed/runtime/py_util.hpp"

namespace gantry::asgi {

std::string exception_text(GilHeld& gil, PyObject* exc) {
    PyObject* tb = PyException_GetTraceback(exc);  // new reference, or null
    Py_INCREF(Py_TYPE(exc));
    Py_INCREF(exc);
    PyErr_Restore(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc, tb);  // steals all three
    return py::take_exception_text(gil);
}

PyObject* unexpected_message(GilHeld&, std::string_view expected, PyObject* got) {
    PyErr_Format(PyExc_RuntimeError, "Expected ASGI message %.*s, but got %R", static_cast<int>(expected.size()),
                 expected.data(), got);
    return nullptr;
}

}  // namespace gantry::asgi
