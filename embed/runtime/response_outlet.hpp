#pragma once
// Internal to embed/: one request's way out, for a protocol's per-request state. It holds the
// request's ResponseHandle until the head goes, then its ResponseStream, and tracks where the
// response is. With --timing full the final call (send_whole, finish, fail) is held back until
// the outlet is destroyed: the app's breakdown is taken then (after the iterable's close(),
// where Django's record ends) and reaches the connection before the response completes.
#include <cstddef>
#include <string>

#include <sys/types.h>

#include "embed/runtime/django_timing.hpp"
#include "embed/runtime/gil.hpp"
#include "http/response_handle.hpp"

namespace gantry {

class ResponseOutlet {
public:
    // `timing`: null, or --timing full's bridge (it outlives the outlet). The outlet lives in the
    // scope that holds `gil`.
    ResponseOutlet(GilHeld& gil, ResponseHandle handle, const DjangoTiming* timing) noexcept;
    // With timing: reports the breakdown, then makes the held-back final call. A response never
    // completed fails (its handle's or stream's own destruction).
    ~ResponseOutlet();
    ResponseOutlet(const ResponseOutlet&) = delete;
    ResponseOutlet& operator=(const ResponseOutlet&) = delete;

    bool head_sent() const { return phase_ != Phase::head_pending; }  // or the response is complete
    bool streaming() const { return phase_ == Phase::streaming; }
    bool done() const { return phase_ == Phase::done; }  // the final call is made (or held back)

    // Each completes the response once; later calls, and calls out of order, do nothing.
    void send_whole(ResponseHead head, std::string body);
    void start_stream(ResponseHead head);
    void finish();
    void fail();

    // With the GIL released: they may block on the connection's bounded buffer. False once the
    // client is gone (a C++ exception from the sink counts as that), or when not streaming.
    bool write_chunk(std::string data);
    bool send_file(int fd, off_t offset, std::size_t count);  // takes ownership of fd

private:
    enum class Phase { head_pending, streaming, done };
    enum class Held { none, whole, finish, fail };
    void release_held() noexcept;

    GilHeld& gil_;
    const DjangoTiming* timing_;
    ResponseHandle handle_;
    ResponseStream stream_;
    Phase phase_ = Phase::head_pending;
    Held held_ = Held::none;
    ResponseHead held_head_;
    std::string held_body_;
};

}  // namespace gantry
