#include "server/session_sink.hpp"  // first: the header stands alone

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

namespace gantry {
namespace {

using namespace std::chrono_literals;

// A sink with no session: nothing is woken, the test takes the events itself.
std::deque<SinkEvent> take(SessionSink& sink) {
    std::deque<SinkEvent> events;
    sink.take(events);
    return events;
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

struct Pipe {
    int fds[2] = {-1, -1};
    Pipe() { EXPECT_EQ(::pipe(fds), 0); }
    ~Pipe() {
        for (int fd : fds)
            if (fd >= 0 && is_open(fd)) ::close(fd);
    }
};

TEST(SessionSink, AWholeResponseIsHeadDataEnd) {
    SessionSink sink(nullptr, 1024);
    sink.app_started();
    sink.send_whole(ResponseHead{201, "Created", {{"X", "1"}}}, "body");
    auto events = take(sink);
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0].kind, SinkEvent::Kind::head);
    EXPECT_EQ(events[0].head.status, 201);
    EXPECT_EQ(events[1].kind, SinkEvent::Kind::data);
    EXPECT_EQ(events[1].data, "body");
    EXPECT_EQ(events[2].kind, SinkEvent::Kind::end);
    AppTimes times = sink.app_times();
    EXPECT_NE(times.app_started, AppTimes::Clock::time_point{});
    EXPECT_GE(times.app_finished, times.app_started);
    EXPECT_TRUE(take(sink).empty());
}

TEST(SessionSink, AStreamWaitsForSpaceUntilWritten) {
    SessionSink sink(nullptr, 4);
    sink.start_stream(ResponseHead{});
    EXPECT_TRUE(sink.write_chunk("12345"));  // under the limit when called: queued
    auto second = std::async(std::launch::async, [&] { return sink.write_chunk("6"); });
    EXPECT_EQ(second.wait_for(50ms), std::future_status::timeout);  // 5 bytes queued >= 4
    auto events = take(sink);
    ASSERT_EQ(events.size(), 2u);
    sink.written(5);
    ASSERT_EQ(second.wait_for(10s), std::future_status::ready);
    EXPECT_TRUE(second.get());
    sink.finish_stream();
    events = take(sink);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].data, "6");
    EXPECT_EQ(events[1].kind, SinkEvent::Kind::end);
}

TEST(SessionSink, ANonBlockingWriteQueuesAtOnceAndSaysWhenThereIsRoomAgain) {
    SessionSink sink(nullptr, 4);
    sink.start_stream(ResponseHead{});
    int room_calls = 0;
    EXPECT_TRUE(sink.write_chunk_nowait("12", [&] { ++room_calls; }));     // 2 < 4: room left
    EXPECT_FALSE(sink.write_chunk_nowait("345", [&] { ++room_calls; }));   // 5 >= 4: full, queued anyway
    auto events = take(sink);
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[2].data, "345");
    sink.written(1);  // 4 queued: still full
    EXPECT_EQ(room_calls, 0);
    sink.written(4);  // 0 queued: room, said once
    EXPECT_EQ(room_calls, 1);
    sink.written(0);
    EXPECT_EQ(room_calls, 1);
}

TEST(SessionSink, ANonBlockingFileCountsOneBufferAtMostAndIsClosedWhenTheClientIsGone) {
    SessionSink sink(nullptr, 4);
    sink.start_stream(ResponseHead{});
    int room_calls = 0;
    Pipe p;
    EXPECT_FALSE(sink.send_file_nowait(::dup(p.fds[0]), 10, 1000, [&] { ++room_calls; }));  // counts 4: full
    auto events = take(sink);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[1].kind, SinkEvent::Kind::file);
    EXPECT_EQ(events[1].offset, 10);
    EXPECT_EQ(events[1].count, 1000u);
    ::close(events[1].fd);
    sink.written(4);
    EXPECT_EQ(room_calls, 1);
    sink.mark_gone();
    int fd = ::dup(p.fds[0]);
    EXPECT_FALSE(sink.send_file_nowait(fd, 0, 1, [&] { ++room_calls; }));
    EXPECT_FALSE(is_open(fd));  // taken and closed
    EXPECT_EQ(room_calls, 1);
}

TEST(SessionSink, APeerThatClosesItsSideIsToldOnceAndTheResponseMayStillGoOut) {
    SessionSink sink(nullptr, 1024);
    int told = 0;
    sink.on_peer_closed([&] { ++told; });
    EXPECT_FALSE(sink.peer_closed());
    sink.mark_peer_closed();
    EXPECT_EQ(told, 1);
    EXPECT_TRUE(sink.peer_closed());
    EXPECT_FALSE(sink.client_gone());  // a half-closed client still reads its answer
    sink.on_peer_closed([&] { ++told; });  // already closed: at once
    EXPECT_EQ(told, 2);
    sink.send_whole(ResponseHead{}, "still sent");
    EXPECT_EQ(take(sink).size(), 3u);

    SessionSink gone(nullptr, 1024);
    gone.on_peer_closed([&] { ++told; });
    gone.mark_gone();  // a connection that failed counts as closed too
    EXPECT_EQ(told, 3);
    EXPECT_TRUE(gone.peer_closed());
}

TEST(SessionSink, ANonBlockingWriterWaitingForRoomIsToldWhenTheClientGoes) {
    for (bool timeout : {false, true}) {
        SessionSink sink(nullptr, 1);
        sink.start_stream(ResponseHead{});
        int room_calls = 0;
        EXPECT_FALSE(sink.write_chunk_nowait("12", [&] { ++room_calls; }));
        if (timeout) sink.fail_timeout(); else sink.mark_gone();
        EXPECT_EQ(room_calls, 1);
        EXPECT_TRUE(sink.client_gone());
        EXPECT_FALSE(sink.write_chunk_nowait("3", [&] { ++room_calls; }));  // gone: dropped, never called
        EXPECT_EQ(room_calls, 1);
    }
}

TEST(SessionSink, AGoneClientReleasesAWaitingAppAndClosesQueuedFiles) {
    Pipe file;
    SessionSink sink(nullptr, 4);
    sink.start_stream(ResponseHead{});
    ASSERT_TRUE(sink.send_file(file.fds[0], 0, 100));  // counts min(count, limit): now full
    auto blocked = std::async(std::launch::async, [&] { return sink.write_chunk("x"); });
    EXPECT_EQ(blocked.wait_for(50ms), std::future_status::timeout);
    EXPECT_FALSE(sink.client_gone());
    sink.mark_gone();
    ASSERT_EQ(blocked.wait_for(10s), std::future_status::ready);
    EXPECT_FALSE(blocked.get());
    EXPECT_TRUE(sink.client_gone());
    EXPECT_FALSE(is_open(file.fds[0]));
    // Later calls fail at once; a file handed over is closed, not leaked.
    EXPECT_FALSE(sink.write_chunk("y"));
    EXPECT_FALSE(sink.send_file(file.fds[1], 0, 1));
    EXPECT_FALSE(is_open(file.fds[1]));
    file.fds[0] = file.fds[1] = -1;
}

TEST(SessionSink, ATimeoutAnswers504AndDropsWhatTheAppSendsLater) {
    SessionSink sink(nullptr, 1024);
    sink.fail_timeout();
    EXPECT_TRUE(sink.client_gone());
    sink.send_whole(ResponseHead{}, "late");
    sink.fail();
    sink.finish_stream();
    auto events = take(sink);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, SinkEvent::Kind::fail);
    EXPECT_EQ(events[0].head.status, 504);
}

TEST(SessionSink, AMiddlewareAnswerKeepsItsSharedBytesOrFile) {
    auto bytes = std::make_shared<const std::string>("hello world");
    {
        SessionSink sink(nullptr, 1024);
        AnswerBody body;
        body.kind = AnswerBody::Kind::shared;
        body.shared = bytes;
        body.offset = 6;
        body.count = 5;
        sink.queue_answer(ResponseHead{}, body);
        auto events = take(sink);
        ASSERT_EQ(events.size(), 3u);
        EXPECT_EQ(events[1].kind, SinkEvent::Kind::data);
        EXPECT_EQ(events[1].shared, bytes);
        EXPECT_EQ(events[1].offset, 6);
        EXPECT_EQ(events[1].count, 5u);
        EXPECT_EQ(events[2].kind, SinkEvent::Kind::end);
    }
    Pipe file;
    {
        SessionSink sink(nullptr, 1024);
        AnswerBody body;
        body.kind = AnswerBody::Kind::file;
        body.fd = file.fds[0];
        body.count = 7;
        sink.queue_answer(ResponseHead{}, body);
        EXPECT_EQ(body.fd, -1);  // taken
        // Never taken by a session: the sink closes it.
    }
    EXPECT_FALSE(is_open(file.fds[0]));
    file.fds[0] = -1;
}

TEST(SessionSink, TheAppsBreakdownIsKept) {
    SessionSink sink(nullptr, 1024);
    sink.app_breakdown(AppBreakdown{});
    EXPECT_NE(sink.app_times().breakdown, nullptr);
}

}  // namespace
}  // namespace gantry
