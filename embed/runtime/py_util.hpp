#pragma once
// Internal to embed/: small helpers over the CPython API.
#include <string>
#include <utility>

#include "embed/runtime/gil.hpp"

namespace gantry::py {

// An owned reference. Made, moved and dropped only where the GIL is held (by code that has a
// GilHeld, or in a type built with one).
class Ref {
public:
    Ref() = default;
    explicit Ref(PyObject* p) : p_(p) {}  // steals
    static Ref borrow(PyObject* p) { Py_XINCREF(p); return Ref(p); }
    Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    Ref& operator=(Ref&& o) noexcept { if (this != &o) { Py_XDECREF(p_); p_ = std::exchange(o.p_, nullptr); } return *this; }
    Ref(const Ref&) = delete;
    Ref& operator=(const Ref&) = delete;
    ~Ref() { Py_XDECREF(p_); }
    PyObject* get() const { return p_; }
    PyObject* release() { return std::exchange(p_, nullptr); }
    explicit operator bool() const { return p_ != nullptr; }
    void reset(PyObject* p = nullptr) { Py_XDECREF(p_); p_ = p; }

private:
    PyObject* p_ = nullptr;
};

// Takes the pending Python exception (clearing it) and returns its full traceback text.
std::string take_exception_text(GilHeld& gil);

}  // namespace gantry::py
