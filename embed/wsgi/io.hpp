#pragma once
// Internal to embed/wsgi: the objects Python sees - start_response, a small C type with one
// instance per request, and the write() callable it returns - and the response state they fill.
#include <cstddef>
#include <optional>
#include <string>

#include <sys/types.h>

#include "embed/runtime/gil.hpp"
#include "embed/runtime/py_util.hpp"
#include "embed/runtime/response_outlet.hpp"
#include "http/response_head.hpp"

namespace gantry::wsgi {

// One request's response as the app builds it; lives on the executor thread's stack for the call.
struct ResponseState {
    ResponseState(GilHeld& gil, ResponseHandle handle, const DjangoTiming* timing) noexcept
        : outlet(gil, std::move(handle), timing) {}

    ResponseOutlet outlet;
    bool headers_set = false;  // start_response() was called
    ResponseHead head;         // what it gave, until the head goes out
    std::optional<std::size_t> content_length;
    bool client_gone = false;  // a write found the client gone

    void start_stream() { outlet.start_stream(std::move(head)); }
    // GIL released inside (ResponseOutlet); false once the client is gone.
    bool write_chunk(std::string data) { return note(outlet.write_chunk(std::move(data))); }
    bool send_file(int fd, off_t offset, std::size_t count) { return note(outlet.send_file(fd, offset, count)); }

private:
    bool note(bool ok) {
        if (!ok) client_gone = true;
        return ok;
    }
};

// The StartResponse type, made once per executor (with the GIL held; dropped with it held).
class StartResponseType {
public:
    explicit StartResponseType(GilHeld& gil);
    bool ready() const { return static_cast<bool>(type_); }  // false: a Python error is set

    // start_response for one request, bound to `response` while this lives: the app may keep
    // the callable (or its write) past the call, and late calls then raise instead of reaching
    // the dead state.
    class Bound {
    public:
        Bound(py::Ref object, ResponseState& response);
        ~Bound();  // detaches
        Bound(const Bound&) = delete;
        Bound& operator=(const Bound&) = delete;
        PyObject* get() const { return object_.get(); }
        explicit operator bool() const { return static_cast<bool>(object_); }

    private:
        py::Ref object_;
    };
    // Empty (with a Python error set) when the allocation fails.
    Bound bind(GilHeld& gil, ResponseState& response) const;

private:
    py::Ref type_;
};

}  // namespace gantry::wsgi
