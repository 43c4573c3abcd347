#include "server/access_log.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include <unistd.h>

namespace gantry {
namespace {

using namespace std::chrono_literals;

// Formats with TZ=UTC so %(t)s is predictable.
class AccessLogTest : public ::testing::Test {
protected:
    void SetUp() override {
        ::setenv("TZ", "UTC", 1);
        ::tzset();
        request_headers = {{"Host", "example.com"},
                           {"User-Agent", "curl/7.88.1"},
                           {"Referer", "http://ref.example/"},
                           {"X-Request-Id", "abc123"},
                           // "alice:s3cret"
                           {"Authorization", "Basic YWxpY2U6czNjcmV0"}};
        response_headers = {{"Content-Type", "text/html; charset=utf-8"}, {"X-Cache", "HIT"}};
        record.remote_addr = "10.1.2.3";
        record.method = "GET";
        record.target = "/search/items?q=shoes&page=2";
        record.version = 11;
        record.request_headers = &request_headers;
        record.response_headers = &response_headers;
        record.status = 200;
        record.response_bytes = 5120;
        // 2026-11-26 21:39:39 UTC
        record.start = std::chrono::system_clock::from_time_t(1795729179);
        record.duration = 2345678us;
    }

    std::string fmt(std::string_view format) { return AccessLogFormat(format).format(record); }

    std::vector<HttpHeader> request_headers;
    std::vector<HttpHeader> response_headers;
    AccessLogRecord record;
};

TEST_F(AccessLogTest, GunicornDefaultFormat) {
    EXPECT_EQ(fmt(R"(%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s")"),
              R"(10.1.2.3 - alice [26/Nov/2026:21:39:39 +0000] "GET /search/items?q=shoes&page=2 HTTP/1.1" )"
              R"(200 5120 "http://ref.example/" "curl/7.88.1")");
}

TEST_F(AccessLogTest, EachLetterAtom) {
    EXPECT_EQ(fmt("%(h)s"), "10.1.2.3");
    EXPECT_EQ(fmt("%(l)s"), "-");
    EXPECT_EQ(fmt("%(u)s"), "alice");
    EXPECT_EQ(fmt("%(t)s"), "[26/Nov/2026:21:39:39 +0000]");
    EXPECT_EQ(fmt("%(r)s"), "GET /search/items?q=shoes&page=2 HTTP/1.1");
    EXPECT_EQ(fmt("%(m)s"), "GET");
    EXPECT_EQ(fmt("%(U)s"), "/search/items");
    EXPECT_EQ(fmt("%(q)s"), "q=shoes&page=2");
    EXPECT_EQ(fmt("%(H)s"), "HTTP/1.1");
    EXPECT_EQ(fmt("%(s)s"), "200");
    EXPECT_EQ(fmt("%(B)s"), "5120");
    EXPECT_EQ(fmt("%(b)s"), "5120");
    EXPECT_EQ(fmt("%(f)s"), "http://ref.example/");
    EXPECT_EQ(fmt("%(a)s"), "curl/7.88.1");
    EXPECT_EQ(fmt("%(T)s"), "2");
    EXPECT_EQ(fmt("%(D)s"), "2345678");
    EXPECT_EQ(fmt("%(M)s"), "2345");
    EXPECT_EQ(fmt("%(L)s"), "2.345678");
    EXPECT_EQ(fmt("%(p)s"), "<" + std::to_string(::getpid()) + ">");
}

TEST_F(AccessLogTest, HeaderAtomsAreCaseInsensitive) {
    EXPECT_EQ(fmt("%({x-request-id}i)s"), "abc123");
    EXPECT_EQ(fmt("%({X-REQUEST-ID}i)s"), "abc123");
    EXPECT_EQ(fmt("%({content-type}o)s"), "text/html; charset=utf-8");
    EXPECT_EQ(fmt("%({x-cache}o)s"), "HIT");
}

TEST_F(AccessLogTest, MissingValuesAreDashes) {
    EXPECT_EQ(fmt("%({x-missing}i)s"), "-");
    EXPECT_EQ(fmt("%({x-missing}o)s"), "-");
    request_headers.clear();
    EXPECT_EQ(fmt("%(f)s %(a)s %(u)s"), "- - -");
    record.request_headers = nullptr;
    record.response_headers = nullptr;
    EXPECT_EQ(fmt("%(f)s %(a)s %(u)s %({x}i)s %({y}o)s"), "- - - - -");
    record.remote_addr = "";
    EXPECT_EQ(fmt("%(h)s"), "-");
}

TEST_F(AccessLogTest, EnvironmentVariableAtom) {
    ::setenv("GANTRY_ACCESS_TEST_VAR", "blue", 1);
    EXPECT_EQ(fmt("%({GANTRY_ACCESS_TEST_VAR}e)s"), "blue");
    ::unsetenv("GANTRY_ACCESS_TEST_VAR");
    EXPECT_EQ(fmt("%({GANTRY_ACCESS_TEST_VAR}e)s"), "-");
}

TEST_F(AccessLogTest, ZeroBytes) {
    record.response_bytes = 0;
    EXPECT_EQ(fmt("%(B)s %(b)s"), "0 -");
}

TEST_F(AccessLogTest, PercentLiteralsUnknownAtomsAndJunk) {
    EXPECT_EQ(fmt("100%% %(s)s"), "100% 200");
    EXPECT_EQ(fmt("%(Z)s|%(zz)s|%({x}z)s"), "-|-|-");
    EXPECT_EQ(fmt("50% off"), "50% off");
    EXPECT_EQ(fmt("%(s"), "%(s");
    EXPECT_EQ(fmt("%(s)"), "%(s)");
    EXPECT_EQ(fmt("%(s)d"), "200");
    EXPECT_EQ(fmt("trailing %"), "trailing %");
    EXPECT_EQ(fmt(""), "");
}

TEST_F(AccessLogTest, CompiledOnceIntoPieces) {
    AccessLogFormat f(R"(%(h)s "%(r)s" %%%({x}i)s %(s)s)");
    using A = AccessLogFormat::Atom;
    const auto& p = f.pieces();
    ASSERT_EQ(p.size(), 7u);
    EXPECT_EQ(p[0].atom, A::remote_addr);
    EXPECT_EQ(p[1].atom, A::literal);
    EXPECT_EQ(p[1].text, " \"");
    EXPECT_EQ(p[2].atom, A::request_line);
    EXPECT_EQ(p[3].atom, A::literal);
    EXPECT_EQ(p[3].text, "\" %");  // adjacent literals are merged
    EXPECT_EQ(p[4].atom, A::request_header);
    EXPECT_EQ(p[4].text, "x");
    EXPECT_EQ(p[6].atom, A::status);
    // The same compiled format serves many records.
    EXPECT_EQ(f.format(record), R"(10.1.2.3 "GET /search/items?q=shoes&page=2 HTTP/1.1" %- 200)");
    record.status = 404;
    EXPECT_EQ(f.format(record), R"(10.1.2.3 "GET /search/items?q=shoes&page=2 HTTP/1.1" %- 404)");
}

TEST_F(AccessLogTest, FormatToAppends) {
    AccessLogFormat f("%(s)s");
    std::string out = "x=";
    f.format_to(out, record);
    EXPECT_EQ(out, "x=200");
}

TEST_F(AccessLogTest, Http10AndOtherMethods) {
    record.version = 10;
    record.method = "POST";
    record.target = "/submit";
    record.status = 201;
    EXPECT_EQ(fmt("%(r)s|%(H)s|%(U)s|%(q)s|%(s)s"), "POST /submit HTTP/1.0|HTTP/1.0|/submit||201");
}

TEST_F(AccessLogTest, AbsoluteFormTargetPath) {
    record.target = "http://example.com/a/b?c=d";
    EXPECT_EQ(fmt("%(U)s %(q)s"), "/a/b c=d");
    record.target = "http://example.com";
    EXPECT_EQ(fmt("%(U)s"), "/");
}

TEST_F(AccessLogTest, DurationsTruncate) {
    record.duration = 999999us;
    EXPECT_EQ(fmt("%(T)s %(M)s %(D)s %(L)s"), "0 999 999999 0.999999");
    record.duration = 61s + 5ms;
    EXPECT_EQ(fmt("%(T)s %(M)s %(D)s %(L)s"), "61 61005 61005000 61.005000");
    record.duration = std::chrono::nanoseconds(1500);
    EXPECT_EQ(fmt("%(D)s"), "1");
}

TEST_F(AccessLogTest, TimeUsesLocalOffset) {
    ::setenv("TZ", "EST5", 1);  // fixed -05:00, no DST rules
    ::tzset();
    // A different second than other tests, so the per-thread cache cannot hide the zone change.
    record.start = std::chrono::system_clock::from_time_t(1795729180);
    EXPECT_EQ(fmt("%(t)s"), "[26/Nov/2026:16:39:40 -0500]");
    ::setenv("TZ", "UTC", 1);
    ::tzset();
    record.start = std::chrono::system_clock::from_time_t(0);
    EXPECT_EQ(fmt("%(t)s"), "[01/Jan/1970:00:00:00 +0000]");
}

TEST_F(AccessLogTest, BasicAuthUser) {
    request_headers = {{"authorization", "basic Ym9i"}};  // "bob", no password part
    EXPECT_EQ(fmt("%(u)s"), "bob");
    request_headers = {{"Authorization", "Basic Y2Fyb2w6"}};  // "carol:"
    EXPECT_EQ(fmt("%(u)s"), "carol");
    request_headers = {{"Authorization", "Bearer abc.def"}};
    EXPECT_EQ(fmt("%(u)s"), "-");
    request_headers = {{"Authorization", "Basic !!!notbase64"}};
    EXPECT_EQ(fmt("%(u)s"), "-");
    request_headers = {{"Authorization", "Basic OnB3"}};  // ":pw": empty user
    EXPECT_EQ(fmt("%(u)s"), "-");
}

TEST_F(AccessLogTest, ClientValuesAreEscaped) {
    request_headers = {{"User-Agent", "evil\"agent\\\x01\x7f"}};
    EXPECT_EQ(fmt("%(a)s"), "evil\\\"agent\\\\\\x01\\x7f");
}

}  // namespace
}  // namespace gantry

namespace gantry {
namespace {

TEST(AccessLogWebSocket, TheWsAtomSummarisesASessionAndIsADashOtherwise) {
    AccessLogRecord record;
    record.method = "GET";
    record.target = "/chat";
    record.status = 101;
    EXPECT_EQ(AccessLogFormat("%(s)s %(ws)s").format(record), "101 -");
    WebSocketTotals totals{3, 120, 4, 200, 1000};
    record.websocket = &totals;
    record.response_bytes = totals.bytes_sent;
    EXPECT_EQ(AccessLogFormat("%(s)s %(b)s %(ws)s").format(record), "101 200 in=3msg/120B out=4msg/200B close=1000");
}

TEST(AccessLogWebSocket, TheJsonRecordCarriesTheSession) {
    AccessLogRecord record;
    record.method = "GET";
    record.target = "/chat";
    record.status = 101;
    EXPECT_EQ(format_access_json(record).find("\"websocket\""), std::string::npos);
    WebSocketTotals totals{3, 120, 4, 200, 1006};
    record.websocket = &totals;
    std::string json = format_access_json(record);
    EXPECT_NE(json.find("\"websocket\":{\"bytes_received\":120,\"bytes_sent\":200,\"close_code\":1006,"
                        "\"messages_received\":3,\"messages_sent\":4}"),
              std::string::npos)
        << json;
}

}  // namespace
}  // namespace gantry
