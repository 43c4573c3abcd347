#include "server/websocket_handshake.hpp"  // first: the header stands alone

#include <gtest/gtest.h>

namespace gantry {
namespace {

HttpRequest handshake(std::vector<HttpHeader> extra = {}, std::string method = "GET") {
    HttpRequest r;
    r.method = std::move(method);
    r.target = "/ws";
    r.headers = {{"Host", "x"}, {"Upgrade", "websocket"}, {"Connection", "Upgrade"},
                 {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}, {"Sec-WebSocket-Version", "13"}};
    for (auto& h : extra) r.headers.push_back(std::move(h));
    return r;
}

HttpRequest without(HttpRequest r, std::string_view name) {
    std::erase_if(r.headers, [&](const HttpHeader& h) { return h.name == name; });
    return r;
}

HttpRequest with(HttpRequest r, std::string_view name, std::string value) {
    for (auto& h : r.headers)
        if (h.name == name) h.value = value;
    return r;
}

TEST(WebSocketHandshake, AsksForAWebSocketWithUpgradeAndTheConnectionToken) {
    EXPECT_TRUE(asks_for_websocket(handshake()));
    EXPECT_TRUE(asks_for_websocket(with(with(handshake(), "Connection", "keep-alive, Upgrade"), "Upgrade", "WebSocket")));
    EXPECT_FALSE(asks_for_websocket(without(handshake(), "Upgrade")));
    EXPECT_FALSE(asks_for_websocket(without(handshake(), "Connection")));
    EXPECT_FALSE(asks_for_websocket(with(handshake(), "Upgrade", "h2c")));
    EXPECT_FALSE(asks_for_websocket(with(handshake(), "Connection", "keep-alive")));
    EXPECT_FALSE(asks_for_websocket(handshake({}, "POST")));
}

TEST(WebSocketHandshake, AValidHandshakeGoesToTheApp) { EXPECT_FALSE(refuse_websocket_handshake(handshake())); }

TEST(WebSocketHandshake, AMissingOrInvalidKeyIs400) {
    for (const char* key : {"", "short==", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZR==", "dGhlIHNhbXBsZSBub25j*Q=="}) {
        auto answer = refuse_websocket_handshake(with(handshake(), "Sec-WebSocket-Key", key));
        ASSERT_TRUE(answer) << key;
        EXPECT_EQ(answer->head.status, 400) << key;
    }
    auto missing = refuse_websocket_handshake(without(handshake(), "Sec-WebSocket-Key"));
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->head.status, 400);
    auto twice = refuse_websocket_handshake(handshake({{"Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA=="}}));
    ASSERT_TRUE(twice);
    EXPECT_EQ(twice->head.status, 400);
}

TEST(WebSocketHandshake, AnotherVersionIs426NamingVersion13) {
    auto answer = refuse_websocket_handshake(with(handshake(), "Sec-WebSocket-Version", "8"));
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->head.status, 426);
    bool names_13 = false;
    for (const auto& h : answer->head.headers) names_13 = names_13 || (h.name == "Sec-WebSocket-Version" && h.value == "13");
    EXPECT_TRUE(names_13);
    auto missing = refuse_websocket_handshake(without(handshake(), "Sec-WebSocket-Version"));
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->head.status, 400);
}

TEST(WebSocketHandshake, Http10AndNoHostAre400) {
    HttpRequest old = handshake();
    old.version = 10;
    ASSERT_TRUE(refuse_websocket_handshake(old));
    EXPECT_EQ(refuse_websocket_handshake(old)->head.status, 400);
    auto no_host = refuse_websocket_handshake(without(handshake(), "Host"));
    ASSERT_TRUE(no_host);
    EXPECT_EQ(no_host->head.status, 400);
}

}  // namespace
}  // namespace gantry
