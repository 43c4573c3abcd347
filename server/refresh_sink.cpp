#include "server/refresh_sink.hpp"

#include <utility>

#include <unistd.h>

namespace gantry {

void RefreshSink::deliver(RefreshAnswer answer) {
    Deliver deliver;
    {
        std::lock_guard lock(mutex_);
        if (delivered_.load(std::memory_order_relaxed)) return;
        delivered_.store(true, std::memory_order_relaxed);
        deliver = std::exchange(deliver_, nullptr);
    }
    if (deliver) deliver(std::move(answer));
}

void RefreshSink::send_whole(ResponseHead head, std::string body) {
    deliver(RefreshAnswer{RefreshAnswer::Kind::whole, std::move(head), std::move(body)});
}

void RefreshSink::start_stream(ResponseHead) { deliver(RefreshAnswer{RefreshAnswer::Kind::streamed, {}, {}}); }

bool RefreshSink::write_chunk(std::string) { return false; }

bool RefreshSink::send_file(int fd, off_t, std::size_t) {
    ::close(fd);
    return false;
}

void RefreshSink::fail() { deliver(RefreshAnswer{RefreshAnswer::Kind::failed, {}, {}}); }

}  // namespace gantry
