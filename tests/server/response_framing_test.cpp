#include "server/response_framing.hpp"  // first: the header stands alone

#include <gtest/gtest.h>

namespace gantry {
namespace {

ResponseHead head(int status, std::vector<HttpHeader> headers) {
    ResponseHead h;
    h.status = status;
    h.headers = std::move(headers);
    return h;
}

TEST(RenderHead, WholeBodyGetsContentLength) {
    auto r = render_head(head(200, {{"Content-Type", "text/plain"}}), {}, 5);
    EXPECT_EQ(r.framing, BodyFraming::content_length);
    EXPECT_EQ(r.content_length, 5u);
    EXPECT_TRUE(r.keep_alive);
    EXPECT_EQ(r.bytes.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
    EXPECT_NE(r.bytes.find("Content-Length: 5\r\n"), std::string::npos);
    EXPECT_NE(r.bytes.find("Content-Type: text/plain\r\n"), std::string::npos);
    EXPECT_NE(r.bytes.find("Server: gantry\r\n"), std::string::npos);
    EXPECT_NE(r.bytes.find("Date: "), std::string::npos);
    EXPECT_EQ(r.bytes.substr(r.bytes.size() - 4), "\r\n\r\n");
}

TEST(RenderHead, StreamIsChunkedOn11AndCloseDelimitedOn10) {
    auto r = render_head(head(200, {}), {}, std::nullopt);
    EXPECT_EQ(r.framing, BodyFraming::chunked);
    EXPECT_NE(r.bytes.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
    RequestFacts old;
    old.version = 10;
    auto r10 = render_head(head(200, {}), old, std::nullopt);
    EXPECT_EQ(r10.framing, BodyFraming::until_close);
    EXPECT_FALSE(r10.keep_alive);
    EXPECT_NE(r10.bytes.find("Connection: close\r\n"), std::string::npos);
}

TEST(RenderHead, AppContentLengthFramesAStream) {
    auto r = render_head(head(200, {{"content-length", "10"}}), {}, std::nullopt);
    EXPECT_EQ(r.framing, BodyFraming::content_length);
    EXPECT_EQ(r.content_length, 10u);
    EXPECT_EQ(r.bytes.find("Transfer-Encoding"), std::string::npos);
}

TEST(RenderHead, ShortWholeBodyClosesTheConnection) {
    auto r = render_head(head(200, {{"Content-Length", "10"}}), {}, 3);
    EXPECT_EQ(r.content_length, 10u);
    EXPECT_FALSE(r.keep_alive);
}

TEST(RenderHead, HeadKeepsLengthSendsNoBody) {
    RequestFacts facts;
    facts.is_head = true;
    auto r = render_head(head(200, {}), facts, 42);
    EXPECT_EQ(r.framing, BodyFraming::none);
    EXPECT_NE(r.bytes.find("Content-Length: 42\r\n"), std::string::npos);
}

TEST(RenderHead, NoBodyStatuses) {
    auto r = render_head(head(204, {}), {}, 0);
    EXPECT_EQ(r.framing, BodyFraming::none);
    EXPECT_EQ(r.bytes.find("Content-Length"), std::string::npos);
    auto r304 = render_head(head(304, {}), {}, std::nullopt);
    EXPECT_EQ(r304.framing, BodyFraming::none);
    EXPECT_EQ(r304.bytes.find("Transfer-Encoding"), std::string::npos);
}

TEST(RenderHead, HopByHopHeadersAreTheServers) {
    auto r = render_head(head(200, {{"Connection", "close"}, {"Transfer-Encoding", "chunked"}, {"Server", "app"}}), {}, 1);
    EXPECT_FALSE(r.keep_alive);
    EXPECT_EQ(r.bytes.find("Transfer-Encoding"), std::string::npos);
    EXPECT_EQ(r.bytes.find("Server: gantry"), std::string::npos);
    EXPECT_NE(r.bytes.find("Server: app\r\n"), std::string::npos);
}

TEST(RenderHead, Http10KeepAliveIsSaid) {
    RequestFacts facts;
    facts.version = 10;
    auto r = render_head(head(200, {}), facts, 1);
    EXPECT_TRUE(r.keep_alive);
    EXPECT_NE(r.bytes.find("Connection: keep-alive\r\n"), std::string::npos);
}

TEST(RenderHead, AppReasonPhraseIsKept) {
    ResponseHead h = head(299, {});
    h.reason = "Custom Thing";
    EXPECT_EQ(render_head(h, {}, 0).bytes.rfind("HTTP/1.1 299 Custom Thing\r\n", 0), 0u);
}

TEST(ErrorResponse, IsCompleteAndCloses) {
    std::string s = render_error_response(413, "Payload Too Large", false);
    EXPECT_EQ(s.rfind("HTTP/1.1 413 Payload Too Large\r\n", 0), 0u);
    EXPECT_NE(s.find("Connection: close\r\n"), std::string::npos);
    EXPECT_NE(s.find("Content-Length: 22\r\n"), std::string::npos);
}

}  // namespace
}  // namespace gantry
