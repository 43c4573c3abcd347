#include "http/response_handle.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <stdexcept>
#include <type_traits>
#include <vector>

namespace gantry {
namespace {

// Records the completions that reach it.
class Recorder final : public ResponseSink {
public:
    std::vector<std::string> calls;
    bool throw_on_whole = false;

    bool client_gone() const override { return false; }

protected:
    void send_whole(ResponseHead head, std::string body) override {
        if (throw_on_whole) throw std::runtime_error("cannot queue");
        calls.push_back("send_whole " + std::to_string(head.status) + " " + body);
    }
    void start_stream(ResponseHead head) override { calls.push_back("start_stream " + std::to_string(head.status)); }
    bool write_chunk(std::string data) override {
        calls.push_back("write_chunk " + data);
        return true;
    }
    bool send_file(int fd, off_t, std::size_t count) override {
        ::close(fd);
        calls.push_back("send_file " + std::to_string(count));
        return true;
    }
    void finish_stream() override { calls.push_back("finish_stream"); }
    void fail() override { calls.push_back("fail"); }
};

using Calls = std::vector<std::string>;

ResponseHead head(int status) { return ResponseHead{status, "", {}}; }

// What cannot be written: a copy, or a completion on a handle that is not given up.
static_assert(!std::is_copy_constructible_v<ResponseHandle> && !std::is_copy_assignable_v<ResponseHandle>);
static_assert(!std::is_copy_constructible_v<ResponseStream> && !std::is_copy_assignable_v<ResponseStream>);
static_assert(std::is_nothrow_move_constructible_v<ResponseHandle> && std::is_nothrow_move_constructible_v<ResponseStream>);
template <class T>
concept whole_on_lvalue = requires(T& t) { t.send_whole(ResponseHead{}, std::string{}); };
template <class T>
concept stream_on_lvalue = requires(T& t) { t.start_stream(ResponseHead{}); };
template <class T>
concept fail_on_lvalue = requires(T& t) { t.fail(); };
template <class T>
concept finish_on_lvalue = requires(T& t) { t.finish(); };
template <class T>
concept chunk_on_lvalue = requires(T& t) { t.write_chunk(std::string{}); };
template <class T>
concept timeout_on_lvalue = requires(T& t) { t.fail_timeout(); };
static_assert(!whole_on_lvalue<ResponseHandle> && !stream_on_lvalue<ResponseHandle> && !fail_on_lvalue<ResponseHandle>);
static_assert(!finish_on_lvalue<ResponseStream> && !fail_on_lvalue<ResponseStream> && chunk_on_lvalue<ResponseStream>);
// The sink's completions are out of reach except through a handle; its other calls are not.
static_assert(!whole_on_lvalue<ResponseSink> && !fail_on_lvalue<ResponseSink> && !chunk_on_lvalue<ResponseSink>);
static_assert(timeout_on_lvalue<ResponseSink>);
// The handle is one pointer.
static_assert(sizeof(ResponseHandle) == sizeof(std::shared_ptr<ResponseSink>));

TEST(ResponseHandle, SendWholeCompletesOnceAndEmptiesTheHandle) {
    auto sink = std::make_shared<Recorder>();
    {
        ResponseHandle handle(sink);
        EXPECT_TRUE(handle.pending());
        std::move(handle).send_whole(head(200), "ok");
        EXPECT_FALSE(handle.pending());
        EXPECT_EQ(handle.sink(), nullptr);
        // A second completion on the consumed handle (use after move) reaches nothing.
        std::move(handle).send_whole(head(201), "again");
        std::move(handle).fail();
        ResponseStream late = std::move(handle).start_stream(head(202));
        EXPECT_FALSE(late.pending());
    }
    EXPECT_EQ(sink->calls, (Calls{"send_whole 200 ok"}));
}

TEST(ResponseHandle, FailCompletesOnce) {
    auto sink = std::make_shared<Recorder>();
    {
        ResponseHandle handle(sink);
        std::move(handle).fail();
        std::move(handle).fail();
    }
    EXPECT_EQ(sink->calls, (Calls{"fail"}));
}

TEST(ResponseHandle, DestroyedWithoutCompletingFails) {
    auto sink = std::make_shared<Recorder>();
    { ResponseHandle handle(sink); }
    EXPECT_EQ(sink->calls, (Calls{"fail"}));
}

TEST(ResponseHandle, MovedFromHandleDoesNothing) {
    auto sink = std::make_shared<Recorder>();
    {
        ResponseHandle first(sink);
        ResponseHandle second(std::move(first));
        EXPECT_FALSE(first.pending());
        EXPECT_TRUE(second.pending());
        std::move(first).send_whole(head(500), "from the moved-from one");
        std::move(second).send_whole(head(200), "ok");
    }  // neither destructor fails anything
    EXPECT_EQ(sink->calls, (Calls{"send_whole 200 ok"}));
}

TEST(ResponseHandle, AssigningOverAPendingHandleFailsIt) {
    auto a = std::make_shared<Recorder>();
    auto b = std::make_shared<Recorder>();
    {
        ResponseHandle handle(a);
        handle = ResponseHandle(b);
        EXPECT_EQ(a->calls, (Calls{"fail"}));
        std::move(handle).send_whole(head(200), "b");
    }
    EXPECT_EQ(a->calls, (Calls{"fail"}));
    EXPECT_EQ(b->calls, (Calls{"send_whole 200 b"}));
}

TEST(ResponseHandle, EmptyHandleDoesNothing) {
    ResponseHandle handle;
    EXPECT_FALSE(handle.pending());
    std::move(handle).send_whole(head(200), "nobody");
    std::move(handle).fail();
    ResponseStream stream = std::move(handle).start_stream(head(200));
    EXPECT_FALSE(stream.write_chunk("x"));
}

TEST(ResponseHandle, AThrowingCompletionLeavesTheRequestToBeFailed) {
    auto sink = std::make_shared<Recorder>();
    sink->throw_on_whole = true;
    {
        ResponseHandle handle(sink);
        EXPECT_THROW(std::move(handle).send_whole(head(200), "ok"), std::runtime_error);
        EXPECT_TRUE(handle.pending());
    }
    EXPECT_EQ(sink->calls, (Calls{"fail"}));
}

TEST(ResponseStream, WritesAnyNumberOfTimesThenFinishesOnce) {
    auto sink = std::make_shared<Recorder>();
    {
        ResponseHandle handle(sink);
        ResponseStream stream = std::move(handle).start_stream(head(200));
        EXPECT_FALSE(handle.pending());  // the request is the stream's now
        EXPECT_TRUE(stream.pending());
        EXPECT_TRUE(stream.write_chunk("a"));
        EXPECT_TRUE(stream.write_chunk("b"));
        int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        EXPECT_TRUE(stream.send_file(fd, 0, 3));
        std::move(stream).finish();
        EXPECT_FALSE(stream.pending());
        EXPECT_FALSE(stream.write_chunk("late"));
        std::move(stream).finish();
        std::move(stream).fail();
    }
    EXPECT_EQ(sink->calls, (Calls{"start_stream 200", "write_chunk a", "write_chunk b", "send_file 3", "finish_stream"}));
}

TEST(ResponseStream, DestroyedWithoutFinishingFails) {
    auto sink = std::make_shared<Recorder>();
    {
        ResponseStream stream = ResponseHandle(sink).start_stream(head(200));
        EXPECT_TRUE(stream.write_chunk("a"));
    }
    EXPECT_EQ(sink->calls, (Calls{"start_stream 200", "write_chunk a", "fail"}));
}

TEST(ResponseStream, FailCompletesOnce) {
    auto sink = std::make_shared<Recorder>();
    {
        ResponseStream stream = ResponseHandle(sink).start_stream(head(200));
        std::move(stream).fail();
        std::move(stream).finish();
    }
    EXPECT_EQ(sink->calls, (Calls{"start_stream 200", "fail"}));
}

TEST(ResponseStream, EmptyStreamClosesAFileItIsGiven) {
    ResponseStream stream;
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    EXPECT_FALSE(stream.send_file(fd, 0, 1));
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // closed: the stream took ownership
}

}  // namespace
}  // namespace gantry
