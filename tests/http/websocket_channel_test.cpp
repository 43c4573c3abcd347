#include "http/websocket_channel.hpp"  // first: the header stands alone

#include <gtest/gtest.h>

#include <deque>
#include <string>

namespace gantry {
namespace {

using Kind = WebSocketChannel::Outgoing::Kind;

WebSocketMessage text(std::string data) { return WebSocketMessage{true, std::move(data)}; }

struct Counted {
    int wakes = 0;
    std::function<void()> fn() {
        return [this] { ++wakes; };
    }
};

TEST(WebSocketChannel, TheConnectionTakesTheAppsEventsInOrderWokenOncePerBatch) {
    Counted connection;
    WebSocketChannel channel(connection.fn(), 1 << 20);
    EXPECT_TRUE(channel.accept("chat", {{"X-A", "1"}}));
    EXPECT_TRUE(channel.send(text("one"), {}));
    EXPECT_TRUE(channel.send(WebSocketMessage{false, std::string("\0\1", 2)}, {}));
    EXPECT_TRUE(channel.close(4000, "bye"));
    EXPECT_EQ(connection.wakes, 1);  // one batch, one wake-up

    std::deque<WebSocketChannel::Outgoing> out;
    channel.take_outgoing(out);
    ASSERT_EQ(out.size(), 4u);
    EXPECT_EQ(out[0].kind, Kind::accept);
    EXPECT_EQ(out[0].subprotocol, "chat");
    ASSERT_EQ(out[0].headers.size(), 1u);
    EXPECT_EQ(out[0].headers[0].name, "X-A");
    EXPECT_EQ(out[1].kind, Kind::message);
    EXPECT_TRUE(out[1].message.text);
    EXPECT_EQ(out[1].message.data, "one");
    EXPECT_EQ(out[2].kind, Kind::message);
    EXPECT_FALSE(out[2].message.text);
    EXPECT_EQ(out[2].message.data, std::string("\0\1", 2));
    EXPECT_EQ(out[3].kind, Kind::close);
    EXPECT_EQ(out[3].code, 4000);
    EXPECT_EQ(out[3].reason, "bye");

    // Taken: the next event wakes the connection again.
    EXPECT_TRUE(channel.send(text("two"), {}));
    EXPECT_EQ(connection.wakes, 2);
    channel.take_outgoing(out);
    EXPECT_EQ(out.size(), 5u);  // appended
}

TEST(WebSocketChannel, DenyAndFailAreDecisionsToo) {
    Counted connection;
    WebSocketChannel channel(connection.fn(), 1 << 20);
    EXPECT_TRUE(channel.deny(ResponseHead{403, "Forbidden", {}}, "no"));
    channel.fail();
    std::deque<WebSocketChannel::Outgoing> out;
    channel.take_outgoing(out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].kind, Kind::deny);
    EXPECT_EQ(out[0].head.status, 403);
    EXPECT_EQ(out[0].body, "no");
    EXPECT_EQ(out[1].kind, Kind::fail);
}

TEST(WebSocketChannel, ASlowClientSlowsTheAppsSendsDown) {
    Counted connection;
    WebSocketChannel channel(connection.fn(), 10);
    int space = 0;
    EXPECT_TRUE(channel.send(text("123456"), [&](bool room) { space += room; }));   // 6 of 10
    EXPECT_FALSE(channel.send(text("123456"), [&](bool room) { space += room; }));  // 12: full
    EXPECT_FALSE(channel.gone());                                   // full, not over
    EXPECT_EQ(space, 0);
    std::deque<WebSocketChannel::Outgoing> out;
    channel.take_outgoing(out);
    EXPECT_EQ(space, 0);  // taken is not written
    channel.written(6);   // 6 queued: under the limit
    EXPECT_EQ(space, 1);
    channel.written(6);
    EXPECT_EQ(space, 1);  // once
}

// The peer reads everything and then closes: the waiting send was told "room" when its bytes were
// written, and the close that follows does not take that back (the app's loop may only get to the
// answer after the close).
TEST(WebSocketChannel, ASendWrittenBeforeTheCloseIsNotReportedLost) {
    Counted connection;
    WebSocketChannel channel(connection.fn(), 10);
    std::vector<bool> answers;
    EXPECT_FALSE(channel.send(text("0123456789"), [&](bool room) { answers.push_back(room); }));
    std::deque<WebSocketChannel::Outgoing> out;
    channel.take_outgoing(out);
    channel.written(10);
    channel.disconnected(1000);
    EXPECT_EQ(answers, std::vector<bool>{true});
}

TEST(WebSocketChannel, ASlowAppSlowsTheClientsReadsDown) {
    Counted connection;
    WebSocketChannel channel(connection.fn(), 1 << 20, 10);
    EXPECT_TRUE(channel.push(text("123456")));
    EXPECT_TRUE(channel.inbox_has_room());
    EXPECT_FALSE(channel.push(text("123456")));  // 12 of 10: read no more
    EXPECT_FALSE(channel.inbox_has_room());
    EXPECT_EQ(connection.wakes, 0);

    auto first = channel.take();
    EXPECT_EQ(first.kind, WebSocketChannel::Event::Kind::message);
    EXPECT_EQ(first.message.data, "123456");
    EXPECT_EQ(connection.wakes, 0);  // 6 left: more than half the inbox
    EXPECT_TRUE(channel.inbox_has_room());
    auto second = channel.take();
    EXPECT_EQ(second.kind, WebSocketChannel::Event::Kind::message);
    EXPECT_EQ(connection.wakes, 1);  // half free: the connection reads again
    EXPECT_EQ(channel.take().kind, WebSocketChannel::Event::Kind::pending);
    EXPECT_EQ(connection.wakes, 1);
}

TEST(WebSocketChannel, AnAppThatStaysBehindGetsEveryMessageInOrder) {
    Counted connection;
    WebSocketChannel channel(connection.fn(), 1 << 20, 1 << 20);
    int next_pushed = 0, next_taken = 0;
    for (int round = 0; round < 300; ++round) {
        for (int i = 0; i < 3; ++i) channel.push(text(std::to_string(next_pushed++)));
        for (int i = 0; i < 2; ++i) {  // always a message behind, and more each round
            auto event = channel.take();
            ASSERT_EQ(event.kind, WebSocketChannel::Event::Kind::message);
            ASSERT_EQ(event.message.data, std::to_string(next_taken++));
        }
    }
    for (;;) {
        auto event = channel.take();
        if (event.kind != WebSocketChannel::Event::Kind::message) break;
        ASSERT_EQ(event.message.data, std::to_string(next_taken++));
    }
    EXPECT_EQ(next_taken, next_pushed);
}

TEST(WebSocketChannel, TheAppIsToldOnceWhenAMessageArrives) {
    Counted connection;
    WebSocketChannel channel(connection.fn(), 1 << 20);
    EXPECT_EQ(channel.take().kind, WebSocketChannel::Event::Kind::pending);
    int ready = 0;
    EXPECT_TRUE(channel.when_ready([&] { ++ready; }));
    channel.push(text("a"));
    channel.push(text("b"));
    EXPECT_EQ(ready, 1);
    EXPECT_FALSE(channel.when_ready([&] { ++ready; }));  // something is there: take again
    EXPECT_EQ(channel.take().message.data, "a");
    EXPECT_EQ(channel.take().message.data, "b");
}

TEST(WebSocketChannel, ADisconnectComesAfterTheMessagesAndEndsEverything) {
    Counted connection;
    WebSocketChannel channel(connection.fn(), 4);
    int space = 0, lost = 0;
    EXPECT_TRUE(channel.accept({}, {}));
    EXPECT_FALSE(channel.send(text("12345"), [&](bool room) { room ? ++space : ++lost; }));  // full
    channel.push(text("last"));
    channel.disconnected(1001, "going");
    channel.disconnected(1006);   // the first code stays
    EXPECT_EQ(lost, 1);           // a waiting send goes on, told its message went nowhere
    EXPECT_EQ(space, 0);
    EXPECT_TRUE(channel.gone());

    EXPECT_EQ(channel.take().message.data, "last");
    for (int i = 0; i < 2; ++i) {
        auto end = channel.take();
        EXPECT_EQ(end.kind, WebSocketChannel::Event::Kind::disconnected);
        EXPECT_EQ(end.code, 1001);
        EXPECT_EQ(end.reason, "going");
    }
    EXPECT_FALSE(channel.when_ready([] {}));
    EXPECT_FALSE(channel.send(text("x"), {}));
    EXPECT_FALSE(channel.close(1000, {}));
    EXPECT_FALSE(channel.accept({}, {}));
    EXPECT_FALSE(channel.deny({}, {}));
    EXPECT_TRUE(channel.push(text("dropped")));  // the connection is not stopped, the message is dropped
    std::deque<WebSocketChannel::Outgoing> out;
    channel.take_outgoing(out);
    EXPECT_TRUE(out.empty());  // what was queued goes nowhere
}

TEST(WebSocketChannel, ADisconnectWakesAnAppWaitingForAMessage) {
    Counted connection;
    WebSocketChannel channel(connection.fn(), 1 << 20);
    int ready = 0;
    EXPECT_TRUE(channel.when_ready([&] { ++ready; }));
    channel.disconnected(1000);
    EXPECT_EQ(ready, 1);
    EXPECT_EQ(channel.take().kind, WebSocketChannel::Event::Kind::disconnected);
}

}  // namespace
}  // namespace gantry
