#include "embed/runtime/django_timing.hpp"

#include <cstdint>

#include <spdlog/spdlog.h>

#include "http/app_breakdown.hpp"

namespace gantry {

namespace {

std::int64_t as_int64(GilHeld&, PyObject* v) {
    long long n = v ? PyLong_AsLongLong(v) : -1;
    if (n == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return n;
}

// take_raw()'s tuple -> AppBreakdown: (layers, ns, view, view_ns, queries, db_ns, repeated),
// layers ((name, i), ...) outermost first, a layer's own time being ns[i] - ns[i-1] + ns[n+i].
// Odd fields are skipped.
bool breakdown_from(GilHeld& gil, PyObject* raw, AppBreakdown& out) {
    if (!raw || !PyTuple_Check(raw) || PyTuple_GET_SIZE(raw) != 7) return false;
    PyObject* layers = PyTuple_GET_ITEM(raw, 0);
    PyObject* ns = PyTuple_GET_ITEM(raw, 1);
    if (PyTuple_Check(layers) && PyList_Check(ns)) {
        Py_ssize_t n = PyList_GET_SIZE(ns) / 2;
        auto at = [&](Py_ssize_t i) { return i >= 0 && i < 2 * n ? as_int64(gil, PyList_GET_ITEM(ns, i)) : 0; };
        out.middleware_ns.reserve(static_cast<std::size_t>(PyTuple_GET_SIZE(layers)));
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(layers); ++k) {
            PyObject* item = PyTuple_GET_ITEM(layers, k);
            if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) continue;
            const char* name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(item, 0));
            Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 1));
            if (!name || PyErr_Occurred()) {
                PyErr_Clear();
                continue;
            }
            out.middleware_ns.emplace_back(name, at(i) - at(i - 1) + at(n + i));
        }
    }
    if (PyObject* view = PyTuple_GET_ITEM(raw, 2); view != Py_None) {
        if (const char* name = PyUnicode_AsUTF8(view)) out.view = name;
        else PyErr_Clear();
        out.view_ns = as_int64(gil, PyTuple_GET_ITEM(raw, 3));
    }
    out.db_queries = as_int64(gil, PyTuple_GET_ITEM(raw, 4));
    out.db_ns = as_int64(gil, PyTuple_GET_ITEM(raw, 5));
    out.db_repeated = as_int64(gil, PyTuple_GET_ITEM(raw, 6));
    return true;
}

}  // namespace

std::optional<DjangoTiming> DjangoTiming::find(GilHeld& gil) {
    // load_app() enabled the module before the app was imported; here we only need take_raw().
    py::Ref module(PyImport_ImportModule("gantry.django_timing"));
    py::Ref take_raw(module ? PyObject_GetAttrString(module.get(), "take_raw") : nullptr);
    if (!take_raw) {
        spdlog::default_logger()->error("--timing full: gantry.django_timing unavailable:\n{}",
                                        py::take_exception_text(gil));
        return std::nullopt;
    }
    return DjangoTiming(std::move(take_raw));
}

void DjangoTiming::report(GilHeld& gil, ResponseSink& sink) const {
    py::Ref record(PyObject_CallNoArgs(take_raw_.get()));
    AppBreakdown breakdown;
    if (!record) {
        PyErr_Clear();
    } else if (breakdown_from(gil, record.get(), breakdown)) {
        sink.app_breakdown(std::move(breakdown));
    }
}

}  // namespace gantry
