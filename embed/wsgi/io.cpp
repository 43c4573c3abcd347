#include "embed/wsgi/io.hpp"

#include <cctype>
#include <string_view>

#include "embed/wsgi/errors.hpp"
#include "http/text.hpp"

namespace gantry::wsgi {

namespace {

// A str whose code points are all < 256, as its latin-1 bytes (PEP 3333 "native strings").
bool latin1_of(GilHeld&, PyObject* s, std::string& out) {
    if (!PyUnicode_Check(s)) return false;
    if (PyUnicode_READY(s) < 0) return false;
    if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) return false;
    out.assign(reinterpret_cast<const char*>(PyUnicode_1BYTE_DATA(s)),
               static_cast<std::size_t>(PyUnicode_GET_LENGTH(s)));
    return true;
}

struct StartResponseObject {
    PyObject_HEAD
    ResponseState* response;  // null once the request is over: late calls raise
};

PyObject* write_impl(PyObject* self, PyObject* data) {
    GilHeld gil = GilHeld::from_python_call();
    ResponseState* response = reinterpret_cast<StartResponseObject*>(self)->response;
    if (!response || response->outlet.done()) return raise_misuse(gil, Misuse::write_after_finish);
    if (!PyBytes_Check(data)) return raise_not_bytes(gil, Part::write_argument, data);
    if (!response->headers_set) return raise_misuse(gil, Misuse::write_before_start_response);
    if (response->client_gone) return raise_client_gone(gil);
    if (!response->outlet.head_sent()) response->start_stream();
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    if (n > 0 && !response->write_chunk(std::string(PyBytes_AS_STRING(data), static_cast<std::size_t>(n))))
        return raise_client_gone(gil);
    Py_RETURN_NONE;
}

PyMethodDef write_def = {"write", write_impl, METH_O, "write(data): send bytes before the iterable's"};

PyObject* start_response_call(PyObject* self, PyObject* args, PyObject* kwargs) {
    GilHeld gil = GilHeld::from_python_call();
    ResponseState* response = reinterpret_cast<StartResponseObject*>(self)->response;
    static const char* kwlist[] = {"status", "headers", "exc_info", nullptr};
    PyObject *status = nullptr, *headers = nullptr, *exc_info = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:start_response", const_cast<char**>(kwlist),
                                     &status, &headers, &exc_info))
        return nullptr;
    if (!response) return raise_misuse(gil, Misuse::start_response_after_request);
    if (exc_info != Py_None) {
        if (response->outlet.head_sent()) {
            // PEP 3333: too late to change the response, re-raise the app's error.
            PyObject *t, *v, *tb;
            if (!PyArg_ParseTuple(exc_info, "OOO:exc_info", &t, &v, &tb)) return nullptr;
            Py_INCREF(t);
            Py_INCREF(v);
            Py_INCREF(tb);
            PyErr_Restore(t, v, tb == Py_None ? (Py_DECREF(tb), nullptr) : tb);
            return nullptr;
        }
    } else if (response->headers_set) {
        return raise_misuse(gil, Misuse::start_response_twice);
    }

    // Status: "NNN reason".
    std::string status_line;
    if (!latin1_of(gil, status, status_line)) {
        if (PyErr_Occurred()) return nullptr;
        PyErr_Format(PyExc_TypeError, "status must be a latin-1 str, not %.100s", Py_TYPE(status)->tp_name);
        return nullptr;
    }
    if (status_line.size() < 3 || !std::isdigit(static_cast<unsigned char>(status_line[0])) ||
        !std::isdigit(static_cast<unsigned char>(status_line[1])) ||
        !std::isdigit(static_cast<unsigned char>(status_line[2])) || status_line[0] == '0' ||
        (status_line.size() > 3 && status_line[3] != ' ') || !is_field_value(status_line)) {
        PyErr_Format(PyExc_ValueError, "invalid status %R: must be 'NNN reason'", status);
        return nullptr;
    }
    ResponseHead head;
    head.status = std::stoi(status_line.substr(0, 3));
    head.reason = status_line.size() > 4 ? status_line.substr(4) : std::string();

    // PEP 3333 says a list; any sequence of 2-sequences is accepted, as gunicorn does.
    py::Ref header_seq(PySequence_Fast(headers, "headers must be a list of (name, value) tuples"));
    if (!header_seq) return nullptr;
    std::optional<std::size_t> content_length;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(header_seq.get());
    PyObject** header_items = PySequence_Fast_ITEMS(header_seq.get());
    head.headers.reserve(static_cast<std::size_t>(count));
    for (Py_ssize_t i = 0; i < count; ++i) {
        PyObject* item = header_items[i];
        PyObject* pair[2];
        if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 2) {
            pair[0] = PyTuple_GET_ITEM(item, 0);
            pair[1] = PyTuple_GET_ITEM(item, 1);
        } else if (PyList_Check(item) && PyList_GET_SIZE(item) == 2) {
            pair[0] = PyList_GET_ITEM(item, 0);
            pair[1] = PyList_GET_ITEM(item, 1);
        } else {
            PyErr_Format(PyExc_TypeError, "header %R must be a (name, value) tuple", item);
            return nullptr;
        }
        HttpHeader h;
        if (!latin1_of(gil, pair[0], h.name) || !is_token(h.name)) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "invalid header name %R", pair[0]);
            return nullptr;
        }
        // Leading and trailing spaces and tabs are not part of a field value (RFC 9110 5.5); gunicorn
        // strips them too. Django's SimpleCookie.output(header="") starts with one.
        const bool latin1 = latin1_of(gil, pair[1], h.value);
        if (latin1) h.value.assign(trim(h.value));
        if (!latin1 || !is_field_value(h.value)) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "invalid value for header %s: %R", h.name.c_str(), pair[1]);
            return nullptr;
        }
        if (iequals(h.name, "content-length")) {
            std::size_t v = 0;
            bool digits = !h.value.empty() && h.value.size() < 19;
            for (char c : h.value) {
                if (c < '0' || c > '9') { digits = false; break; }
                v = v * 10 + static_cast<std::size_t>(c - '0');
            }
            if (!digits) {
                PyErr_Format(PyExc_ValueError, "invalid Content-Length %s", h.value.c_str());
                return nullptr;
            }
            content_length = v;
        }
        head.headers.push_back(std::move(h));
    }
    response->head = std::move(head);
    response->content_length = content_length;
    response->headers_set = true;
    return PyCFunction_New(&write_def, self);
}

void start_response_dealloc(PyObject* self) {
    PyTypeObject* type = Py_TYPE(self);
    type->tp_free(self);
    Py_DECREF(type);  // heap type
}

PyType_Slot start_response_slots[] = {
    {Py_tp_call, reinterpret_cast<void*>(start_response_call)},
    {Py_tp_dealloc, reinterpret_cast<void*>(start_response_dealloc)},
    {Py_tp_doc, const_cast<char*>("start_response(status, headers, exc_info=None) -> write")},
    {0, nullptr},
};
PyType_Spec start_response_spec = {"gantry.StartResponse", sizeof(StartResponseObject), 0,
                                   Py_TPFLAGS_DEFAULT, start_response_slots};

}  // namespace

StartResponseType::StartResponseType(GilHeld&)
    : type_(PyType_FromSpec(&start_response_spec)) {}

StartResponseType::Bound StartResponseType::bind(GilHeld&, ResponseState& response) const {
    py::Ref object(PyType_GenericAlloc(reinterpret_cast<PyTypeObject*>(type_.get()), 0));
    return Bound(std::move(object), response);
}

StartResponseType::Bound::Bound(py::Ref object, ResponseState& response) : object_(std::move(object)) {
    if (object_) reinterpret_cast<StartResponseObject*>(object_.get())->response = &response;
}

StartResponseType::Bound::~Bound() {
    if (object_) reinterpret_cast<StartResponseObject*>(object_.get())->response = nullptr;
}

}  // namespace gantry::wsgi
