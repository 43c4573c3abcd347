#pragma once
// One request's completion, as a one-shot value: the only way to reach a ResponseSink's
// send_whole / start_stream..finish_stream / fail, so that exactly one of them happens.
//
//   std::move(handle).send_whole(head, body);           // or .fail()
//   ResponseStream stream = std::move(handle).start_stream(head);
//   stream.write_chunk(data); stream.send_file(fd, offset, count);   // any number of times
//   std::move(stream).finish();                         // or .fail()
//
// A completing call consumes its handle (or stream): the value left behind is empty, and every
// call on an empty one does nothing. A handle or stream destroyed while still holding its request
// fails it, so a forgotten path answers 500 (or closes the connection) instead of hanging.
// Moving one is moving a pointer: nothing is allocated per request.
#include <cstddef>
#include <memory>
#include <string>

#include <sys/types.h>

#include "http/response_head.hpp"
#include "http/response_sink.hpp"

namespace gantry {

class ResponseStream;

class ResponseHandle {
public:
    ResponseHandle() = default;  // empty: answers nothing
    explicit ResponseHandle(std::shared_ptr<ResponseSink> sink) noexcept : sink_(std::move(sink)) {}
    ResponseHandle(ResponseHandle&&) noexcept = default;
    ResponseHandle& operator=(ResponseHandle&& other) noexcept;  // fails the request it held
    ResponseHandle(const ResponseHandle&) = delete;
    ResponseHandle& operator=(const ResponseHandle&) = delete;
    ~ResponseHandle();  // fails a request not completed

    // True while the request is not completed (and not handed on to a stream).
    bool pending() const noexcept { return sink_ != nullptr; }
    // The sink, for what is not a completion (client_gone, app_started, app_breakdown,
    // fail_timeout); null once consumed.
    const std::shared_ptr<ResponseSink>& sink() const noexcept { return sink_; }

    void send_whole(ResponseHead head, std::string body) &&;
    [[nodiscard]] ResponseStream start_stream(ResponseHead head) &&;
    void fail() &&;

private:
    std::shared_ptr<ResponseSink> sink_;
};

// A response whose head is sent: its body goes out piece by piece until finish() or fail().
class ResponseStream {
public:
    ResponseStream() = default;  // empty: answers nothing
    ResponseStream(ResponseStream&&) noexcept = default;
    ResponseStream& operator=(ResponseStream&& other) noexcept;  // fails the stream it held
    ResponseStream(const ResponseStream&) = delete;
    ResponseStream& operator=(const ResponseStream&) = delete;
    ~ResponseStream();  // fails a stream not finished: the connection closes

    bool pending() const noexcept { return sink_ != nullptr; }
    const std::shared_ptr<ResponseSink>& sink() const noexcept { return sink_; }

    // These may block (see ResponseSink) and return false once the client is gone, or on an
    // empty stream. send_file takes ownership of fd in every case.
    bool write_chunk(std::string data);
    bool send_file(int fd, off_t offset, std::size_t count);
    // Never blocks (see ResponseSink::write_chunk_nowait); false on an empty stream.
    bool write_chunk_nowait(std::string data, std::function<void()> on_space);
    bool send_file_nowait(int fd, off_t offset, std::size_t count, std::function<void()> on_space);

    void finish() &&;
    void finish_with_trailers(std::vector<HttpHeader> trailers) &&;
    void fail() &&;

private:
    friend class ResponseHandle;
    explicit ResponseStream(std::shared_ptr<ResponseSink> sink) noexcept : sink_(std::move(sink)) {}

    std::shared_ptr<ResponseSink> sink_;
};

}  // namespace gantry
