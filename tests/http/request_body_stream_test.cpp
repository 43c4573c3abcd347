#include "http/request_body_stream.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace gantry {
namespace {

using Kind = RequestBodyStream::Piece::Kind;
using Next = RequestBodyStream::Next;

// A stream whose connection-side wake-ups are counted.
struct Counted {
    int wakes = 0;
    RequestBodyStream stream;
    explicit Counted(bool read_when_asked = false, std::size_t limit = kRequestBodyQueueBytes)
        : stream([this] { ++wakes; }, read_when_asked, limit) {}
};

TEST(RequestBodyStream, GivesThePiecesInOrderThenTheEnd) {
    Counted c;
    c.stream.push("abc");
    c.stream.push("de");
    auto first = c.stream.take();  // joined: the app was behind
    EXPECT_EQ(first.kind, Kind::data);
    EXPECT_EQ(first.bytes, "abcde");
    EXPECT_TRUE(first.more);
    EXPECT_EQ(c.stream.take().kind, Kind::pending);
    c.stream.push("f");
    c.stream.finish();
    auto last = c.stream.take();
    EXPECT_EQ(last.bytes, "f");
    EXPECT_FALSE(last.more);  // the end comes with the last bytes
}

TEST(RequestBodyStream, AnEndWithNothingQueuedIsAnEmptyLastPiece) {
    Counted c;
    c.stream.push("abc");
    EXPECT_TRUE(c.stream.take().more);
    c.stream.finish();
    auto end = c.stream.take();
    EXPECT_EQ(end.kind, Kind::data);
    EXPECT_EQ(end.bytes, "");
    EXPECT_FALSE(end.more);
}

TEST(RequestBodyStream, PiecesAreAtMostOnePieceLong) {
    Counted c;
    c.stream.push(std::string(kRequestBodyPiece + 10, 'x'));
    c.stream.push(std::string(5, 'y'));
    EXPECT_EQ(c.stream.take().bytes.size(), kRequestBodyPiece);
    EXPECT_EQ(c.stream.take().bytes, std::string(10, 'x') + "yyyyy");
}

TEST(RequestBodyStream, AFullQueueStopsTheConnectionUntilHalfIsTaken) {
    Counted c(false, 4 * kRequestBodyPiece);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(c.stream.next(), Next::read);
        c.stream.push(std::string(kRequestBodyPiece, 'x'));
    }
    EXPECT_EQ(c.stream.next(), Next::wait);
    c.stream.take();
    EXPECT_EQ(c.wakes, 0);  // three pieces still queued: more than half
    c.stream.take();
    EXPECT_EQ(c.wakes, 1);
    EXPECT_EQ(c.stream.next(), Next::read);
    c.stream.take();
    EXPECT_EQ(c.wakes, 1);  // once per wait
}

TEST(RequestBodyStream, ReadWhenAskedWaitsForTheAppsFirstAsk) {
    Counted c(true);
    EXPECT_EQ(c.stream.next(), Next::wait);
    EXPECT_FALSE(c.stream.asked());
    EXPECT_TRUE(c.stream.when_ready([] {}));  // nothing yet: the app waits, and has asked
    EXPECT_TRUE(c.stream.asked());
    EXPECT_EQ(c.wakes, 1);
    EXPECT_EQ(c.stream.next(), Next::read);
}

TEST(RequestBodyStream, ReadyIsCalledOnceWhenAPieceComes) {
    Counted c;
    int ready = 0;
    EXPECT_EQ(c.stream.take().kind, Kind::pending);
    EXPECT_TRUE(c.stream.when_ready([&] { ++ready; }));
    c.stream.push("a");
    c.stream.push("b");
    EXPECT_EQ(ready, 1);
    EXPECT_FALSE(c.stream.when_ready([&] { ++ready; }));  // already there: take it
    EXPECT_EQ(ready, 1);
    EXPECT_EQ(c.stream.take().bytes, "ab");
}

TEST(RequestBodyStream, AFailureComesAfterWhatWasQueued) {
    Counted c;
    int ready = 0;
    c.stream.push("abc");
    c.stream.fail();
    EXPECT_EQ(c.stream.take().bytes, "abc");
    EXPECT_EQ(c.stream.take().kind, Kind::failed);
    EXPECT_FALSE(c.stream.when_ready([&] { ++ready; }));
    c.stream.push("late");  // nothing after a failure
    EXPECT_EQ(c.stream.take().kind, Kind::failed);
}

TEST(RequestBodyStream, AFailureWakesAWaitingApp) {
    Counted c;
    int ready = 0;
    EXPECT_TRUE(c.stream.when_ready([&] { ++ready; }));
    c.stream.fail();
    EXPECT_EQ(ready, 1);
    EXPECT_EQ(c.stream.take().kind, Kind::failed);
}

TEST(RequestBodyStream, AbandonedTheRestIsDiscardedAndAWaitingConnectionWoken) {
    Counted c(false, 2 * kRequestBodyPiece);
    c.stream.push(std::string(2 * kRequestBodyPiece, 'x'));
    EXPECT_EQ(c.stream.next(), Next::wait);
    c.stream.abandon();
    EXPECT_EQ(c.wakes, 1);
    EXPECT_TRUE(c.stream.abandoned());
    EXPECT_EQ(c.stream.next(), Next::discard);
    c.stream.push("dropped");
    EXPECT_EQ(c.stream.take().kind, Kind::failed);  // what was queued is freed, not given
    c.stream.abandon();                              // idempotent
    EXPECT_EQ(c.wakes, 1);
}

TEST(RequestBodyStream, AnAbandonedStreamWakesAWaitingApp) {
    Counted c;
    int ready = 0;
    EXPECT_TRUE(c.stream.when_ready([&] { ++ready; }));
    c.stream.abandon();
    EXPECT_EQ(ready, 1);
}

// A producer thread that obeys next() and a consumer thread that takes: every byte arrives in
// order, and the queue never holds more than the limit plus the one push that reached it (plus
// the one in progress, which `pushed` already counts).
TEST(RequestBodyStream, BoundedAcrossThreads) {
    constexpr std::size_t kLimit = 4 * kRequestBodyPiece;
    constexpr std::size_t kTotal = 16u << 20;
    constexpr std::size_t kPush = 16 * 1024;
    std::mutex m;
    std::condition_variable cv;
    bool woken = false;
    RequestBodyStream stream(
        [&] {
            std::lock_guard lock(m);
            woken = true;
            cv.notify_all();
        },
        false, kLimit);
    std::atomic<std::size_t> pushed{0};
    std::thread producer([&] {
        std::size_t sent = 0;
        while (sent < kTotal) {
            Next next = stream.next();
            if (next == Next::wait) {
                std::unique_lock lock(m);
                cv.wait(lock, [&] { return woken; });
                woken = false;
                continue;
            }
            std::string bytes(kPush, '\0');
            for (std::size_t i = 0; i < kPush; ++i) bytes[i] = static_cast<char>((sent + i) % 251);
            pushed = sent + kPush;  // before the push: an upper bound on what the queue may hold
            stream.push(bytes);
            sent += kPush;
        }
        stream.finish();
    });
    std::size_t received = 0, max_behind = 0;
    bool in_order = true;
    std::mutex rm;
    std::condition_variable rcv;
    bool ready = false;
    for (;;) {
        auto piece = stream.take();
        if (piece.kind == Kind::pending) {
            if (stream.when_ready([&] {
                    std::lock_guard lock(rm);
                    ready = true;
                    rcv.notify_all();
                })) {
                std::unique_lock lock(rm);
                rcv.wait(lock, [&] { return ready; });
                ready = false;
            }
            continue;
        }
        ASSERT_EQ(piece.kind, Kind::data);
        for (std::size_t i = 0; i < piece.bytes.size(); ++i)
            in_order = in_order && piece.bytes[i] == static_cast<char>((received + i) % 251);
        received += piece.bytes.size();
        max_behind = std::max(max_behind, pushed.load() - received);  // what is still queued
        if (!piece.more) break;
    }
    producer.join();
    EXPECT_EQ(received, kTotal);
    EXPECT_TRUE(in_order);
    EXPECT_LE(max_behind, kLimit + 2 * kPush);
}

}  // namespace
}  // namespace gantry
