#pragma once
// The ResponseSink of a background refresh (see BackgroundRefresh): no client waits on it, so it
// only collects the app's whole answer and hands it on, once, from the app's thread. A streamed
// answer is not cacheable: the app is told the client is gone at its first chunk and stops
// producing. No Asio here: who takes the answer to an I/O thread is the caller's function.
#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>

#include <sys/types.h>

#include "http/response_head.hpp"
#include "http/response_sink.hpp"

namespace gantry {

// What the app answered a background refresh.
struct RefreshAnswer {
    enum class Kind {
        whole,     // head and body, as send_whole gave them
        streamed,  // a stream: dropped, nothing stored
        failed,    // the app raised, the call was dropped, or it outlived --timeout
    } kind = Kind::failed;
    ResponseHead head;
    std::string body;
};

class RefreshSink final : public ResponseSink {
public:
    // Called exactly once, with the first of the app's completions (a timeout and the stuck
    // app's late answer: the timeout); on the app's thread.
    using Deliver = std::function<void(RefreshAnswer)>;
    explicit RefreshSink(Deliver deliver) : deliver_(std::move(deliver)) {}

    // True once the answer is handed on: a stream's chunks, or anything after a timeout, go nowhere.
    bool client_gone() const override { return delivered_.load(std::memory_order_relaxed); }

protected:
    void send_whole(ResponseHead head, std::string body) override;
    void start_stream(ResponseHead head) override;
    bool write_chunk(std::string data) override;
    bool send_file(int fd, off_t offset, std::size_t count) override;
    void finish_stream() override {}
    void fail() override;

private:
    void deliver(RefreshAnswer answer);

    std::mutex mutex_;
    Deliver deliver_;  // emptied by its one call
    std::atomic<bool> delivered_{false};
};

}  // namespace gantry
