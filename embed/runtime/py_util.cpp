#include "embed/runtime/py_util.hpp"

namespace gantry::py {

std::string take_exception_text(GilHeld&) {
    PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
    PyErr_Fetch(&type, &value, &tb);
    if (!type) return "(no Python exception set)";
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value) PyException_SetTraceback(value, tb);
    Ref t(type), v(value), b(tb);

    std::string text;
    Ref mod(PyImport_ImportModule("traceback"));
    Ref lines;
    if (mod) lines = Ref(PyObject_CallMethod(mod.get(), "format_exception", "OOO", type,
                                             value ? value : Py_None, tb ? tb : Py_None));
    if (lines) {
        Ref joined(PyUnicode_Join(Ref(PyUnicode_FromString("")).get(), lines.get()));
        if (joined) {
            if (const char* s = PyUnicode_AsUTF8(joined.get())) text = s;
        }
    }
    if (text.empty()) {
        // Formatting failed too: at least the exception's repr.
        PyErr_Clear();
        Ref r(PyObject_Repr(value ? value : type));
        const char* s = r ? PyUnicode_AsUTF8(r.get()) : nullptr;
        text = s ? s : "(unprintable Python exception)";
    }
    PyErr_Clear();
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}

}  // namespace gantry::py
