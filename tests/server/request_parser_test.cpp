#include "server/request_parser.hpp"  // first: the header stands alone

#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

namespace gantry {
namespace {

struct Fed {
    RequestParser::State state;
    std::size_t used;
};

Fed feed_all(RequestParser& p, std::string_view bytes) {
    std::size_t used = p.feed(bytes);
    return {p.state(), used};
}

TEST(RequestParser, SimpleGet) {
    RequestParser p({});
    auto r = feed_all(p, "GET /a%20b?x=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a:  2 \r\n\r\n");
    ASSERT_EQ(r.state, RequestParser::State::complete);
    HttpRequest req = p.take();
    EXPECT_EQ(req.method, "GET");
    EXPECT_EQ(req.target, "/a%20b?x=1");
    EXPECT_EQ(req.version, 11u);
    ASSERT_EQ(req.headers.size(), 3u);
    EXPECT_EQ(req.headers[2].name, "x-a");
    EXPECT_EQ(req.headers[2].value, "2");
    EXPECT_TRUE(req.keep_alive);
    EXPECT_EQ(req.body.size(), 0u);
}

TEST(RequestParser, PipelinedBytesAreLeftForTheNextRequest) {
    std::string two = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
    RequestParser p({});
    auto r = feed_all(p, two);
    ASSERT_EQ(r.state, RequestParser::State::complete);
    EXPECT_EQ(p.take().target, "/1");
    RequestParser q({});
    auto r2 = feed_all(q, std::string_view(two).substr(r.used));
    ASSERT_EQ(r2.state, RequestParser::State::complete);
    EXPECT_EQ(q.take().target, "/2");
}

TEST(RequestParser, IncrementalHeaderNeedsMore) {
    RequestParser p({});
    std::string_view first = "GET / HTTP/1.1\r\nHo";
    std::size_t used = p.feed(first);  // Beast takes the request line, keeps the partial field
    EXPECT_EQ(used, 16u);
    EXPECT_EQ(p.state(), RequestParser::State::need_more);
    EXPECT_TRUE(p.started());
    feed_all(p, "Host: x\r\n\r\n");
    EXPECT_EQ(p.state(), RequestParser::State::complete);
}

TEST(RequestParser, ContentLengthBody) {
    RequestParser p({});
    std::string msg = "POST /u HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel";
    auto r = feed_all(p, msg);
    EXPECT_EQ(r.state, RequestParser::State::header_done);
    EXPECT_EQ(r.used, msg.size());
    feed_all(p, "lo");
    ASSERT_EQ(p.state(), RequestParser::State::complete);
    EXPECT_EQ(p.take().body.memory(), "hello");
}

TEST(RequestParser, ChunkedBody) {
    RequestParser p({});
    auto r = feed_all(p, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n");
    ASSERT_EQ(r.state, RequestParser::State::complete);
    EXPECT_EQ(p.take().body.memory(), "hello world");
}

TEST(RequestParser, LargeBodySpillsToATemporaryFile) {
    ParserLimits limits;
    limits.body_memory = 16;
    RequestParser p(limits);
    std::string body(100, 'x');
    feed_all(p, "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + body);
    ASSERT_EQ(p.state(), RequestParser::State::complete);
    HttpRequest req = p.take();
    ASSERT_FALSE(req.body.in_memory());
    EXPECT_EQ(req.body.size(), 100u);
    std::string back(100, '\0');
    ASSERT_EQ(::pread(req.body.file_descriptor(), back.data(), 100, 0), 100);
    EXPECT_EQ(back, body);
}

TEST(RequestParser, ExpectContinue) {
    RequestParser p({});
    feed_all(p, "PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    EXPECT_EQ(p.state(), RequestParser::State::header_done);
    EXPECT_TRUE(p.expects_continue());
    feed_all(p, "abc");
    EXPECT_EQ(p.state(), RequestParser::State::complete);
}

TEST(RequestParser, Http10DefaultsToClose) {
    RequestParser p({});
    feed_all(p, "GET / HTTP/1.0\r\n\r\n");
    ASSERT_EQ(p.state(), RequestParser::State::complete);
    EXPECT_FALSE(p.take().keep_alive);
    RequestParser q({});
    feed_all(q, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    EXPECT_TRUE(q.take().keep_alive);
}

struct Rejected {
    const char* name;
    std::string bytes;
    int status;
};

class RequestParserRejects : public ::testing::TestWithParam<Rejected> {};

TEST_P(RequestParserRejects, WithTheRightStatus) {
    ParserLimits limits;
    limits.body = 1000;
    RequestParser p(limits);
    p.feed(GetParam().bytes);
    ASSERT_EQ(p.state(), RequestParser::State::error) << GetParam().name;
    EXPECT_EQ(p.error_status(), GetParam().status) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(
    BadInput, RequestParserRejects,
    ::testing::Values(
        Rejected{"malformed request line", "GARBAGE\r\n\r\n", 400},
        Rejected{"no colon", "GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
        Rejected{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
        Rejected{"CL with TE", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        Rejected{"TE with CL", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
        Rejected{"TE not chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
        Rejected{"bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        Rejected{"non-numeric CL", "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400},
        Rejected{"conflicting CL", "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
        Rejected{"HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 400},
        Rejected{"long request line", "GET /" + std::string(5000, 'a') + " HTTP/1.1\r\n\r\n", 414},
        Rejected{"long line without end", "GET /" + std::string(5000, 'a'), 414},
        Rejected{"field too large", "GET / HTTP/1.1\r\nX: " + std::string(9000, 'v') + "\r\n\r\n", 431},
        Rejected{"too many fields", [] {
                     std::string s = "GET / HTTP/1.1\r\n";
                     for (int i = 0; i < 101; ++i) s += "X-" + std::to_string(i) + ": v\r\n";
                     return s + "\r\n";
                 }(), 431},
        Rejected{"body over limit (CL)", "POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413},
        Rejected{"body over limit (chunked)", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + std::string(2000, 'x'), 413},
        Rejected{"unknown expectation", "GET / HTTP/1.1\r\nExpect: teapot\r\n\r\n", 417}));

TEST(RequestParser, EofMidBodyIsAnError) {
    RequestParser p({});
    p.feed("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    p.feed_eof();
    EXPECT_EQ(p.state(), RequestParser::State::error);
}

TEST(SplitTarget, DecodesPathKeepsQuery) {
    auto parts = split_target("/caf%C3%A9/a%2Fb?x=%20y");
    EXPECT_EQ(parts.path, "/caf\xC3\xA9/a/b");
    EXPECT_EQ(parts.query, "x=%20y");
    EXPECT_EQ(split_target("http://example.com/p?q=1").path, "/p");
    EXPECT_EQ(split_target("http://example.com").path, "/");
    EXPECT_EQ(split_target("/bad%zz%4").path, "/bad%zz%4");
}

}  // namespace
}  // namespace gantry
