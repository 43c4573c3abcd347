#include "http/response_handle.hpp"

#include <unistd.h>

namespace gantry {

// A completion that throws leaves the request held (the pointer is dropped only after the sink
// returned), so the value's destruction still fails it.

ResponseHandle& ResponseHandle::operator=(ResponseHandle&& other) noexcept {
    if (this != &other) {
        ResponseHandle old(std::move(*this));
        sink_ = std::move(other.sink_);
    }
    return *this;
}

ResponseHandle::~ResponseHandle() {
    if (!sink_) return;
    try {
        sink_->fail();
    } catch (...) {
        // A sink that cannot queue its failure has nobody left to tell.
    }
}

void ResponseHandle::send_whole(ResponseHead head, std::string body) && {
    if (!sink_) return;
    sink_->send_whole(std::move(head), std::move(body));
    sink_.reset();
}

ResponseStream ResponseHandle::start_stream(ResponseHead head) && {
    if (!sink_) return {};
    sink_->start_stream(std::move(head));
    return ResponseStream(std::move(sink_));
}

void ResponseHandle::fail() && {
    if (!sink_) return;
    sink_->fail();
    sink_.reset();
}

ResponseStream& ResponseStream::operator=(ResponseStream&& other) noexcept {
    if (this != &other) {
        ResponseStream old(std::move(*this));
        sink_ = std::move(other.sink_);
    }
    return *this;
}

ResponseStream::~ResponseStream() {
    if (!sink_) return;
    try {
        sink_->fail();
    } catch (...) {
    }
}

bool ResponseStream::write_chunk(std::string data) {
    return sink_ ? sink_->write_chunk(std::move(data)) : false;
}

bool ResponseStream::write_chunk_nowait(std::string data, std::function<void()> on_space) {
    return sink_ ? sink_->write_chunk_nowait(std::move(data), std::move(on_space)) : false;
}

bool ResponseStream::send_file_nowait(int fd, off_t offset, std::size_t count, std::function<void()> on_space) {
    if (!sink_) {
        ::close(fd);
        return false;
    }
    return sink_->send_file_nowait(fd, offset, count, std::move(on_space));
}

bool ResponseStream::send_file(int fd, off_t offset, std::size_t count) {
    if (!sink_) {
        ::close(fd);
        return false;
    }
    return sink_->send_file(fd, offset, count);
}

void ResponseStream::finish() && {
    if (!sink_) return;
    sink_->finish_stream();
    sink_.reset();
}

void ResponseStream::finish_with_trailers(std::vector<HttpHeader> trailers) && {
    if (!sink_) return;
    sink_->finish_stream_with_trailers(std::move(trailers));
    sink_.reset();
}

void ResponseStream::fail() && {
    if (!sink_) return;
    sink_->fail();
    sink_.reset();
}

}  // namespace gantry
