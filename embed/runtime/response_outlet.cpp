#include "embed/runtime/response_outlet.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

namespace gantry {

namespace {

// A sink call that must not throw past us: with the GIL released, an exception must not skip
// re-taking it cleanly; it counts as the connection being gone.
template <class F>
bool guarded(F&& f) noexcept {
    try {
        return f();
    } catch (const std::exception& e) {
        spdlog::default_logger()->error("response sink failed: {}", e.what());
    } catch (...) {
        spdlog::default_logger()->error("response sink failed");
    }
    return false;
}

}  // namespace

ResponseOutlet::ResponseOutlet(GilHeld& gil, ResponseHandle handle, const DjangoTiming* timing) noexcept
    : gil_(gil), timing_(timing), handle_(std::move(handle)) {}

ResponseOutlet::~ResponseOutlet() {
    if (!timing_) return;
    if (ResponseSink* sink = handle_.pending() ? handle_.sink().get() : stream_.sink().get()) {
        guarded([&] {
            timing_->report(gil_, *sink);
            return true;
        });
    }
    release_held();
}

void ResponseOutlet::release_held() noexcept {
    Held held = std::exchange(held_, Held::none);
    guarded([&] {
        switch (held) {
        case Held::whole: std::move(handle_).send_whole(std::move(held_head_), std::move(held_body_)); break;
        case Held::finish: std::move(stream_).finish(); break;
        case Held::fail:
            std::move(handle_).fail();
            std::move(stream_).fail();
            break;
        case Held::none: break;
        }
        return true;
    });
}

void ResponseOutlet::send_whole(ResponseHead head, std::string body) {
    if (phase_ != Phase::head_pending) return;
    phase_ = Phase::done;
    if (timing_) {
        held_ = Held::whole;
        held_head_ = std::move(head);
        held_body_ = std::move(body);
        return;
    }
    std::move(handle_).send_whole(std::move(head), std::move(body));
}

void ResponseOutlet::start_stream(ResponseHead head) {
    if (phase_ != Phase::head_pending) return;
    stream_ = std::move(handle_).start_stream(std::move(head));
    phase_ = Phase::streaming;
}

void ResponseOutlet::finish() {
    if (phase_ != Phase::streaming) return;
    phase_ = Phase::done;
    if (timing_) {
        held_ = Held::finish;
        return;
    }
    std::move(stream_).finish();
}

void ResponseOutlet::fail() {
    if (phase_ == Phase::done) return;
    phase_ = Phase::done;
    if (timing_) {
        held_ = Held::fail;
        return;
    }
    std::move(handle_).fail();  // one of the two holds the request
    std::move(stream_).fail();
}

bool ResponseOutlet::write_chunk(std::string data) {
    if (phase_ != Phase::streaming) return false;
    GilReleased released(gil_);
    return guarded([&] { return stream_.write_chunk(std::move(data)); });
}

bool ResponseOutlet::send_file(int fd, off_t offset, std::size_t count) {
    if (phase_ != Phase::streaming) {
        ::close(fd);
        return false;
    }
    GilReleased released(gil_);
    return guarded([&] { return stream_.send_file(fd, offset, count); });
}

}  // namespace gantry
