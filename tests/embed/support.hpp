#pragma once
// Test doubles and helpers shared by the embed tests.
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "embed/runtime/python_runtime.hpp"

namespace gantry::test {

// A ResponseSink that records every call. write_chunk/send_file report the client gone once
// `chunks_before_gone` of them have succeeded (-1: never).
class RecordingSink : public ResponseSink {
public:
    struct Event {
        std::string kind;  // send_whole start_stream write_chunk send_file finish_stream fail
        ResponseHead head;
        std::string data;  // body, chunk, or the file's bytes for send_file
        off_t offset = 0;
        std::size_t count = 0;
    };
    explicit RecordingSink(int chunks_before_gone = -1) : budget_(chunks_before_gone) {}

    bool client_gone() const override {
        std::lock_guard lock(mutex_);
        return gone_;
    }

    // Waits for the terminal call (send_whole, finish_stream or fail); false on timeout.
    bool wait(std::chrono::seconds timeout = std::chrono::seconds(20));
    std::vector<Event> events() const {
        std::lock_guard lock(mutex_);
        return events_;
    }
    std::vector<std::string> kinds() const;
    // The body: send_whole's, or the concatenation of chunks and files.
    std::string body() const;
    const Event* find(const std::string& kind) const;

protected:
    // Reached through the call's ResponseHandle, as the session's are.
    void send_whole(ResponseHead head, std::string body) override { record({"send_whole", std::move(head), std::move(body)}, true); }
    void start_stream(ResponseHead head) override { record({"start_stream", std::move(head), {}}, false); }
    bool write_chunk(std::string data) override;
    bool send_file(int fd, off_t offset, std::size_t count) override;
    void finish_stream() override { record({"finish_stream", {}, {}}, true); }
    void fail() override { record({"fail", {}, {}}, true); }

private:
    void record(Event e, bool terminal);
    bool spend();

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<Event> events_;
    bool done_ = false;
    bool gone_ = false;
    int budget_;
};

std::unique_ptr<AppCall> make_call(std::string method, std::string target,
                                   std::vector<HttpHeader> headers = {}, std::string body = {},
                                   std::shared_ptr<ResponseSink> sink = nullptr,
                                   std::size_t body_memory_limit = 1 << 20);

// The process-wide runtime started by the test environment (app: testapp:application).
AppExecutor& executor();
// Error-log lines captured since the last call (the default logger writes into a ring buffer).
std::vector<std::string> take_log();

// Runs one request through the executor and waits for it.
std::shared_ptr<RecordingSink> run(std::unique_ptr<AppCall> call, std::shared_ptr<RecordingSink> sink = nullptr);
std::shared_ptr<RecordingSink> get(const std::string& target, std::vector<HttpHeader> headers = {});

// Re-executes this binary in child mode (its own interpreter) and returns exit code and stdout.
struct ChildResult {
    int exit_code = -1;
    std::string output;
};
ChildResult run_child(const std::vector<std::string>& args, const std::vector<std::string>& env = {});

}  // namespace gantry::test
