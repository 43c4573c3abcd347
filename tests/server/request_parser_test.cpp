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
        Rejected{"HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 505},
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
        Rejected{"unknown expectation", "GET / HTTP/1.1\r\nExpect: teapot\r\n\r\n", 417},
        // Transfer-Encoding: chunked last and once, nothing else gantry would pass on encoded.
        Rejected{"TE chunked twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
        Rejected{"TE chunked not last", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400},
        Rejected{"TE gzip then chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        Rejected{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        Rejected{"TE vertical tab", "POST / HTTP/1.1\r\nTransfer-Encoding:\x0b" "chunked\r\n\r\n", 400},
        Rejected{"CL repeated equal", "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
        Rejected{"CL list", "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc", 400},
        Rejected{"obs-fold", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400},
        Rejected{"obs-fold with tab", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 400},
        Rejected{"obs-fold of an empty value", "GET / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", 400},
        Rejected{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        Rejected{"Host with a path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
        Rejected{"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 505},
        Rejected{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
        Rejected{"HTTP/1.10", "GET / HTTP/1.10\r\n\r\n", 400},
        // Beast reads "/a" as the target and "b HTTP/1.1" as a bad version: once a stack overflow
        // (the version retry for HTTP/1.x parsed the same line again, forever).
        Rejected{"space in the target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        Rejected{"space in the target, version 1.2", "GET /a b HTTP/1.2\r\nHost: h\r\n\r\n", 400},
        Rejected{"space in the target, version 2.0", "GET /a b HTTP/2.0\r\nHost: h\r\n\r\n", 400},
        Rejected{"CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501},
        Rejected{"asterisk on GET", "GET * HTTP/1.1\r\n\r\n", 400},
        Rejected{"target without slash", "GET a/b HTTP/1.1\r\n\r\n", 400},
        Rejected{"chunk extension over the field limit",
                 "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + std::string(9000, 'e') + "\r\nx\r\n0\r\n\r\n", 400},
        Rejected{"trailer field over the field limit",
                 "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + std::string(9000, 't') + "\r\n\r\n", 431},
        Rejected{"too many trailer fields", [] {
                     std::string s = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
                     for (int i = 0; i < 101; ++i) s += "T: v\r\n";
                     return s + "\r\n";
                 }(), 431},
        Rejected{"field line that never ends", "GET / HTTP/1.1\r\nX: " + std::string(9000, 'v'), 431},
        Rejected{"absolute-form with a stray bracket", "PUT s://]ufd/: HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400},
        Rejected{"absolute-form with no authority", "GET http:///a HTTP/1.1\r\n\r\n", 400},
        Rejected{"absolute-form with userinfo", "GET http://u@h/a HTTP/1.1\r\n\r\n", 400},
        Rejected{"absolute-form with a bad port", "GET http://h:8x/a HTTP/1.1\r\n\r\n", 400},
        Rejected{"absolute-form with a long port", "GET http://h:123456/a HTTP/1.1\r\n\r\n", 400},
        Rejected{"absolute-form with an unclosed IPv6", "GET http://[::1/a HTTP/1.1\r\n\r\n", 400},
        Rejected{"absolute-form with a bad IPv6", "GET http://[::g]/a HTTP/1.1\r\n\r\n", 400},
        Rejected{"absolute-form with a bad escape", "GET http://h%4/a HTTP/1.1\r\n\r\n", 400},
        Rejected{"two Content-Types", "GET / HTTP/1.1\r\nContent-Type: a/b\r\ncontent-type: c/d\r\n\r\n", 400},
        Rejected{"two Authorizations", "GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", 400},
        Rejected{"two Ranges", "GET / HTTP/1.1\r\nRange: bytes=0-1\r\nRange: bytes=1-2\r\n\r\n", 400},
        Rejected{"Host in a trailer", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nHost: e\r\n\r\n", 400},
        Rejected{"Content-Type in a trailer",
                 "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Type: a/b\r\n\r\n", 400},
        Rejected{"Authorization in a trailer",
                 "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nAuthorization: x\r\n\r\n", 400}));

TEST(RequestParser, ValidAbsoluteFormsAreServed) {
    for (std::string target : {"http://h/a", "http://h", "https://h:443/a?q", "http://[::1]:80/a", "http://[2001:db8::1]",
                               "http://ex%41mple.com/", "http://h?x", "s3+x.y://bucket.example/k"}) {
        RequestParser p({});
        p.feed("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n");
        EXPECT_EQ(p.state(), RequestParser::State::complete) << target;
    }
}

TEST(RequestParser, ListFieldsTwiceAreKeptAndAllowedTrailersDropped) {
    RequestParser p({});
    p.feed("POST / HTTP/1.1\r\nHost: h\r\nAccept: a/b\r\nAccept: c/d\r\nCookie: a=1\r\nCookie: b=2\r\n"
           "Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-Checksum: 1\r\nServer-Timing: t\r\n\r\n");
    ASSERT_EQ(p.state(), RequestParser::State::complete);
    HttpRequest req = p.take();
    std::size_t accepts = 0;
    for (const auto& h : req.headers) {
        accepts += h.name == "Accept";
        EXPECT_NE(h.name, "X-Checksum");
    }
    EXPECT_EQ(accepts, 2u);
    EXPECT_EQ(req.body.size(), 2u);
}

TEST(RequestParser, ObsFoldSplitAcrossReadsIsRefused) {
    // Beast takes the fields already whole in the first read; the fold comes in the second.
    RequestParser p({});
    std::string_view first = "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n";
    std::size_t used = p.feed(first);
    EXPECT_EQ(p.state(), RequestParser::State::need_more);
    std::string rest = std::string(first.substr(used)) + " b\r\n\r\n";
    p.feed(rest);
    ASSERT_EQ(p.state(), RequestParser::State::error);
    EXPECT_EQ(p.error_status(), 400);
}

TEST(RequestParser, HigherMinorVersionIsServedAsHttp11) {
    RequestParser p({});
    std::string two = "GET /a HTTP/1.2\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    std::size_t used = p.feed(two);
    ASSERT_EQ(p.state(), RequestParser::State::complete);
    EXPECT_EQ(two.substr(used, 6), "GET /b");  // consumed exactly the first request
    HttpRequest req = p.take();
    EXPECT_EQ(req.version, 11u);
    EXPECT_EQ(req.target, "/a");
}

TEST(RequestParser, AcceptedTargetForms) {
    for (std::string_view bytes : {"OPTIONS * HTTP/1.1\r\n\r\n", "GET http://h/p?q HTTP/1.1\r\n\r\n",
                                   "GET //p HTTP/1.1\r\n\r\n"}) {
        RequestParser p({});
        p.feed(bytes);
        EXPECT_EQ(p.state(), RequestParser::State::complete) << bytes;
    }
}

TEST(RequestParser, ChunkedWithTrailersAndAllowedWhitespace) {
    RequestParser p({});
    p.feed("POST / HTTP/1.1\r\nHost: [::1]:80\r\nTransfer-Encoding: ,\tCHUNKED \r\n\r\n"
           "5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n");
    ASSERT_EQ(p.state(), RequestParser::State::complete);
    HttpRequest req = p.take();
    EXPECT_EQ(req.body.memory(), "hello");
    EXPECT_EQ(req.find_header("X-T"), nullptr);  // trailers are dropped
}

TEST(RequestParser, EveryAcceptedTransferEncodingIsFramedAsChunked) {
    // Beast and gantry each read the Transfer-Encoding list; an accepted request must be read
    // as chunked by both, or the chunks would become the next request.
    for (std::string te : {"chunked", "CHUNKED", " chunked", "\tchunked\t", ", chunked", "chunked ,", "chunked,",
                           ",,chunked,,", "chunked\t,", "gzip, chunked", "chunked, chunked", "chunked;x=1", "xchunked"}) {
        RequestParser p({});
        p.feed("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: " + te +
               "\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
        if (p.state() == RequestParser::State::complete)
            EXPECT_EQ(p.take().body.memory(), "hello") << "'" << te << "'";
        else
            EXPECT_EQ(p.state(), RequestParser::State::error) << "'" << te << "'";
    }
}

// Found by fuzz/request_parser_fuzz: end of stream before any byte "completed" an empty request.
TEST(RequestParser, EofBeforeAnyByteIsNoRequest) {
    RequestParser p({});
    p.feed("");
    p.feed_eof();
    EXPECT_EQ(p.state(), RequestParser::State::need_more);
}

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

TEST(RequestParser, AStreamedBodyIsHandedOutAsItIsParsed) {
    RequestParser p({});
    feed_all(p, "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    ASSERT_EQ(p.state(), RequestParser::State::header_done);
    p.stream_body();
    HttpRequest head = p.take();  // the app has the head while the body still comes
    EXPECT_EQ(head.method, "POST");
    EXPECT_EQ(*p.body_remaining(), 7u);
    std::string piece;
    p.take_body(piece);
    EXPECT_EQ(piece, "abc");  // what came with the head
    // Body bytes without a newline are body, not a request line too long.
    EXPECT_EQ(feed_all(p, "defghij").state, RequestParser::State::complete);
    p.take_body(piece);
    EXPECT_EQ(piece, "defghij");
    EXPECT_EQ(*p.body_remaining(), 0u);
    EXPECT_EQ(p.take().body.size(), 0u);  // nothing kept in the request
}

// Feeds `bytes` after what the parser left unconsumed last time (as the session's buffer does).
RequestParser::State feed_more(RequestParser& p, std::string& pending, std::string_view bytes) {
    pending += bytes;
    pending.erase(0, p.feed(pending));
    return p.state();
}

TEST(RequestParser, AStreamedChunkedBodyHasNoKnownRemainder) {
    RequestParser p({});
    std::string pending;
    feed_more(p, pending, "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    p.stream_body();
    EXPECT_FALSE(p.body_remaining().has_value());
    EXPECT_EQ(feed_more(p, pending, "2\r\nde\r\n0\r\n\r\n"), RequestParser::State::complete);
    std::string piece;
    p.take_body(piece);
    EXPECT_EQ(piece, "abcde");
}

TEST(RequestParser, StreamingABodyThatSpilledReadsItBack) {
    ParserLimits limits;
    limits.body_memory = 2;  // the head's body bytes went to the temporary file
    RequestParser p(limits);
    feed_all(p, "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabcdef");
    p.stream_body();
    std::string piece;
    p.take_body(piece);
    EXPECT_EQ(piece, "abcdef");
}

TEST(RequestParser, AStreamedChunkedBodyOverTheLimitIs413) {
    ParserLimits limits;
    limits.body = 4;
    RequestParser p(limits);
    std::string pending;
    feed_more(p, pending, "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    p.stream_body();
    EXPECT_EQ(feed_more(p, pending, "3\r\ndef\r\n"), RequestParser::State::error);
    EXPECT_EQ(p.error_status(), 413);
}

}  // namespace
}  // namespace gantry
