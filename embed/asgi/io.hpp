#pragma once
// Internal to embed/asgi: the objects Python sees. An awaitable that is already complete (what
// receive() and send() return when nothing has to wait: no Future, no Task, no loop round trip),
// and the channels whose bound receive/send the app is given, one per request and one for the
// lifespan. The channels forward to C++ objects (callbacks.hpp) they keep alive.
#include <memory>

#include "embed/runtime/gil.hpp"
#include "embed/runtime/py_util.hpp"

namespace gantry::asgi {

// What a channel forwards to: receive(), send(message) and the task's done callback. Each
// returns a new reference, or null with a Python error set.
class Channel {
public:
    virtual ~Channel() = default;
    virtual PyObject* receive(GilHeld& gil) = 0;
    virtual PyObject* send(GilHeld& gil, PyObject* message) = 0;
    virtual void task_done(GilHeld& gil, PyObject* task) = 0;
};

// The types, made once per executor (PyType_FromSpec) with the GIL, dropped with it.
class AsgiTypes {
public:
    explicit AsgiTypes(GilHeld& gil);
    bool ready() const { return completed_type_ && channel_type_ && completed_none_; }

    // An awaitable whose await gives `value` (None when null) at once. New reference.
    PyObject* completed(GilHeld& gil, PyObject* value) const;
    // A channel over `target`, which it keeps alive; its attributes `receive`, `send` and
    // `done` are what the app and the task get. New reference.
    PyObject* channel(GilHeld& gil, std::shared_ptr<Channel> target) const;

private:
    py::Ref completed_type_;
    py::Ref channel_type_;
    py::Ref completed_none_;  // stateless: one serves every send() that need not wait
};

}  // namespace gantry::asgi
