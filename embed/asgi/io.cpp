// The objects Python sees: the completed awaitable and the channel (see io.hpp).
#include "embed/asgi/io.hpp"

namespace gantry::asgi {

using py::Ref;

namespace {

// ---- the completed awaitable --------------------------------------------------------------------
// `await x` asks for x.__await__() (am_await: itself) and then sends into it (am_send): the first
// send returns the value. Nothing is scheduled on the loop; the coroutine goes on at once.

struct CompletedObject {
    PyObject_HEAD
    PyObject* value;  // owned; null for None
};

PyObject* completed_await(PyObject* self) {
    Py_INCREF(self);
    return self;
}

PySendResult completed_send(PyObject* self, PyObject*, PyObject** result) {
    auto* c = reinterpret_cast<CompletedObject*>(self);
    *result = c->value ? c->value : Py_None;
    Py_INCREF(*result);
    return PYGEN_RETURN;
}

// For callers that iterate instead of sending (a generator-based coroutine's `yield from`).
PyObject* completed_next(PyObject* self) {
    auto* c = reinterpret_cast<CompletedObject*>(self);
    if (c->value) {
        Ref exc(PyObject_CallOneArg(PyExc_StopIteration, c->value));
        if (exc) PyErr_SetObject(PyExc_StopIteration, exc.get());
    }
    return nullptr;  // no error set: StopIteration(None)
}

void completed_dealloc(PyObject* self) {
    PyTypeObject* type = Py_TYPE(self);
    Py_XDECREF(reinterpret_cast<CompletedObject*>(self)->value);
    type->tp_free(self);
    Py_DECREF(type);
}

PyType_Slot completed_slots[] = {
    {Py_am_await, reinterpret_cast<void*>(completed_await)},
    {Py_am_send, reinterpret_cast<void*>(completed_send)},
    {Py_tp_iter, reinterpret_cast<void*>(completed_await)},
    {Py_tp_iternext, reinterpret_cast<void*>(completed_next)},
    {Py_tp_dealloc, reinterpret_cast<void*>(completed_dealloc)},
    {Py_tp_doc, const_cast<char*>("An awaitable that is already complete.")},
    {0, nullptr},
};
PyType_Spec completed_spec = {"gantry.Completed", sizeof(CompletedObject), 0, Py_TPFLAGS_DEFAULT, completed_slots};

// ---- the channel ----------------------------------------------------------------------------------

struct ChannelObject {
    PyObject_HEAD
    std::shared_ptr<Channel>* target;  // owned; null once dropped
};

Channel* target_of(PyObject* self) {
    auto* c = reinterpret_cast<ChannelObject*>(self);
    return c->target ? c->target->get() : nullptr;
}

PyObject* channel_receive(PyObject* self, PyObject*) {
    GilHeld gil = GilHeld::from_python_call();
    Channel* t = target_of(self);
    if (!t) return PyErr_Format(PyExc_RuntimeError, "receive() on a finished channel");
    return t->receive(gil);
}

PyObject* channel_send(PyObject* self, PyObject* message) {
    GilHeld gil = GilHeld::from_python_call();
    Channel* t = target_of(self);
    if (!t) return PyErr_Format(PyExc_RuntimeError, "send() on a finished channel");
    return t->send(gil, message);
}

PyObject* channel_done(PyObject* self, PyObject* task) {
    GilHeld gil = GilHeld::from_python_call();
    if (Channel* t = target_of(self)) t->task_done(gil, task);
    if (PyErr_Occurred()) return nullptr;
    Py_RETURN_NONE;
}

void channel_dealloc(PyObject* self) {
    PyTypeObject* type = Py_TYPE(self);
    delete std::exchange(reinterpret_cast<ChannelObject*>(self)->target, nullptr);
    type->tp_free(self);
    Py_DECREF(type);
}

PyMethodDef channel_methods[] = {
    {"receive", channel_receive, METH_NOARGS, "receive() -> awaitable: the next event for the app"},
    {"send", channel_send, METH_O, "send(message) -> awaitable"},
    {"done", channel_done, METH_O, "done(task): the app's task ended"},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot channel_slots[] = {
    {Py_tp_methods, channel_methods},
    {Py_tp_dealloc, reinterpret_cast<void*>(channel_dealloc)},
    {Py_tp_doc, const_cast<char*>("One ASGI connection's receive and send.")},
    {0, nullptr},
};
PyType_Spec channel_spec = {"gantry.AsgiChannel", sizeof(ChannelObject), 0, Py_TPFLAGS_DEFAULT, channel_slots};

}  // namespace

AsgiTypes::AsgiTypes(GilHeld&)
    : completed_type_(PyType_FromSpec(&completed_spec)), channel_type_(PyType_FromSpec(&channel_spec)) {
    if (completed_type_) completed_none_ = Ref(PyType_GenericAlloc(reinterpret_cast<PyTypeObject*>(completed_type_.get()), 0));
}

PyObject* AsgiTypes::completed(GilHeld&, PyObject* value) const {
    if (!value && completed_none_) return Ref::borrow(completed_none_.get()).release();
    PyObject* object = PyType_GenericAlloc(reinterpret_cast<PyTypeObject*>(completed_type_.get()), 0);
    if (!object) return nullptr;
    Py_XINCREF(value);
    reinterpret_cast<CompletedObject*>(object)->value = value;
    return object;
}

PyObject* AsgiTypes::channel(GilHeld&, std::shared_ptr<Channel> target) const {
    PyObject* object = PyType_GenericAlloc(reinterpret_cast<PyTypeObject*>(channel_type_.get()), 0);
    if (!object) return nullptr;
    reinterpret_cast<ChannelObject*>(object)->target = new std::shared_ptr<Channel>(std::move(target));
    return object;
}

}  // namespace gantry::asgi
