#include "embed/asgi/loop_heartbeat.hpp"
#include "embed/asgi/loop_heartbeat.hpp"  // self-contained and guarded

#include <gtest/gtest.h>

namespace gantry::asgi {
namespace {

using namespace std::chrono_literals;
using Kind = LoopHeartbeat::Change::Kind;

// A clock the test moves by hand.
struct FakeTime {
    LoopHeartbeat::Clock::time_point now{std::chrono::seconds(1000)};
    LoopHeartbeat::Clock::time_point advance(std::chrono::milliseconds d) { return now += d; }
};

TEST(LoopHeartbeat, ALoopThatBeatsWithinTheThresholdIsNeverBlocked) {
    FakeTime t;
    LoopHeartbeat hb(100ms, t.now);
    for (int i = 0; i < 50; ++i) {
        hb.beat(t.advance(50ms));  // the tick, every threshold/2
        EXPECT_EQ(hb.check(t.advance(40ms)).kind, Kind::none);
    }
    EXPECT_EQ(hb.silence(t.now), 40ms);
}

TEST(LoopHeartbeat, AnEpisodeIsReportedOnceWhenSeenAndOnceWhenItEnds) {
    FakeTime t;
    LoopHeartbeat hb(100ms, t.now);
    hb.beat(t.advance(10ms));
    EXPECT_EQ(hb.check(t.advance(100ms)).kind, Kind::none);  // exactly the threshold: not yet
    LoopHeartbeat::Change seen = hb.check(t.advance(20ms));
    EXPECT_EQ(seen.kind, Kind::blocked);
    EXPECT_EQ(seen.duration, 120ms);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(hb.check(t.advance(25ms)).kind, Kind::none);  // still the same episode
    hb.beat(t.advance(5ms));  // 625 ms after the last beat
    LoopHeartbeat::Change ended = hb.check(t.advance(1ms));
    EXPECT_EQ(ended.kind, Kind::unblocked);
    EXPECT_EQ(ended.duration, 625ms);
    EXPECT_EQ(hb.check(t.advance(10ms)).kind, Kind::none);
}

TEST(LoopHeartbeat, ABeatBetweenTwoBlocksMakesTwoEpisodes) {
    FakeTime t;
    LoopHeartbeat hb(100ms, t.now);
    EXPECT_EQ(hb.check(t.advance(150ms)).kind, Kind::blocked);
    hb.beat(t.advance(50ms));
    // Blocked again before the watchdog looked: the first episode ends, then the second is seen.
    EXPECT_EQ(hb.check(t.advance(300ms)).kind, Kind::unblocked);
    LoopHeartbeat::Change second = hb.check(t.advance(1ms));
    EXPECT_EQ(second.kind, Kind::blocked);
    EXPECT_EQ(second.duration, 301ms);
}

TEST(LoopHeartbeat, SilenceIsMeasuredFromTheLastBeat) {
    FakeTime t;
    LoopHeartbeat hb(100ms, t.now);
    hb.beat(t.advance(30ms));
    EXPECT_EQ(hb.silence(t.advance(2500ms)), 2500ms);
    EXPECT_EQ(hb.silence(t.now - 10s), 0ms);  // a time before the beat is no silence
}

}  // namespace
}  // namespace gantry::asgi
