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
    // Not "%.*s": PyUnicode_FromFormat takes no '*' precision before 3.12 and stops formatting there.
    py::Ref what(PyUnicode_FromStringAndSize(expected.data(), static_cast<Py_ssize_t>(expected.size())));
    if (what) PyErr_Format(PyExc_RuntimeError, "Expected ASGI message %U, but got %R", what.get(), got ? got : Py_None);
    return nullptr;
}

}  // namespace gantry::asgi
