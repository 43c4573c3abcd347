// The WSGI executor against the fixture app tests/embed/apps/testapp.py, through a recording sink.
#include "embed/wsgi/executor.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "support.hpp"

namespace gantry::test {
namespace {

using json = nlohmann::json;
using Kinds = std::vector<std::string>;

json facts() {
    auto sink = get("/facts");
    return json::parse(sink->body());
}

bool log_contains(const std::vector<std::string>& lines, const std::string& needle) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(needle) != std::string::npos; });
}

std::string header(const ResponseHead& head, const std::string& name) {
    std::string out;
    for (const auto& h : head.headers)
        if (h.name == name) out += (out.empty() ? "" : ",") + h.value;
    return out;
}

TEST(WsgiEnviron, HasEveryPep3333Key) {
    auto sink = run(make_call("POST", "/environ/a%20b%2Fc?x=1&y=%20", {
        {"Host", "example.com"},
        {"Content-Type", "text/plain"},
        {"Content-Length", "5"},
        {"X-Custom-Thing", "v1"},
        {"Accept", "text/html"},
        {"accept", "application/json"},
        {"Cookie", "a=1"},
        {"Cookie", "b=2"},
        {"X_Spoofed", "evil"},
    }, "hello"));
    ASSERT_EQ(sink->kinds(), (Kinds{"send_whole"}));
    json env = json::parse(sink->body());
    EXPECT_EQ(env["REQUEST_METHOD"], "POST");
    EXPECT_EQ(env["SCRIPT_NAME"], "");
    EXPECT_EQ(env["PATH_INFO"], "/environ/a b/c");  // percent-decoded, %2F included (as gunicorn)
    EXPECT_EQ(env["QUERY_STRING"], "x=1&y=%20");
    EXPECT_EQ(env["RAW_URI"], "/environ/a%20b%2Fc?x=1&y=%20");
    EXPECT_EQ(env["SERVER_PROTOCOL"], "HTTP/1.1");
    EXPECT_EQ(env["SERVER_NAME"], "127.0.0.1");
    EXPECT_EQ(env["SERVER_PORT"], "8000");
    EXPECT_EQ(env["REMOTE_ADDR"], "10.1.2.3");
    EXPECT_EQ(env["REMOTE_PORT"], "54321");
    EXPECT_EQ(env["CONTENT_TYPE"], "text/plain");
    EXPECT_EQ(env["CONTENT_LENGTH"], "5");
    EXPECT_EQ(env["HTTP_HOST"], "example.com");
    EXPECT_EQ(env["HTTP_X_CUSTOM_THING"], "v1");
    EXPECT_EQ(env["HTTP_ACCEPT"], "text/html, application/json");
    EXPECT_EQ(env["HTTP_COOKIE"], "a=1; b=2");
    EXPECT_FALSE(env.contains("HTTP_X_SPOOFED"));
    EXPECT_FALSE(env.contains("HTTP_CONTENT_TYPE"));
    EXPECT_FALSE(env.contains("HTTP_CONTENT_LENGTH"));
    EXPECT_EQ(env["wsgi.version"], json::array({1, 0}));
    EXPECT_EQ(env["wsgi.url_scheme"], "http");
    EXPECT_EQ(env["wsgi.multithread"], true);   // threads = 2
    EXPECT_EQ(env["wsgi.multiprocess"], true);  // workers = 3
    EXPECT_EQ(env["wsgi.run_once"], false);
    EXPECT_EQ(env["wsgi.input_terminated"], true);
    EXPECT_EQ(env["wsgi.input"], "BytesIO");
    EXPECT_EQ(env["wsgi.errors"], "ErrorStream");
    EXPECT_EQ(env["wsgi.file_wrapper.is_class"], true);
    EXPECT_EQ(env["SERVER_SOFTWARE"], "gantry/0.1.0");
    EXPECT_EQ(env["os.environ.GANTRY_TEST_FROM_ENV"], "from-env");  // -e/--env
}

TEST(WsgiEnviron, MinimalGetHasNoContentHeadersAndHttp10) {
    auto call = make_call("GET", "/environ");
    call->request.version = 10;
    call->request.url_scheme = "https";
    auto sink = run(std::move(call));
    json env = json::parse(sink->body());
    EXPECT_FALSE(env.contains("CONTENT_TYPE"));
    EXPECT_FALSE(env.contains("CONTENT_LENGTH"));
    EXPECT_EQ(env["QUERY_STRING"], "");
    EXPECT_EQ(env["SERVER_PROTOCOL"], "HTTP/1.0");
    EXPECT_EQ(env["wsgi.url_scheme"], "https");
}

TEST(WsgiEnviron, ChunkedBodyGetsContentLength) {
    auto sink = run(make_call("POST", "/body/read", {{"Transfer-Encoding", "chunked"}}, "abcdefg"));
    json r = json::parse(sink->body());
    EXPECT_EQ(r["content_length"], "7");
    EXPECT_EQ(r["pieces"], json::array({"abcdefg"}));
}

TEST(WsgiEnviron, Latin1PathAndHeaderValues) {
    auto sink = run(make_call("GET", "/environ/caf%E9", {{"X-Name", "caf\xe9"}}));
    json env = json::parse(sink->body());
    EXPECT_EQ(env["PATH_INFO"], "/environ/caf\xc3\xa9");  // U+00E9, shown as UTF-8 by json.dumps+nlohmann
    EXPECT_EQ(env["HTTP_X_NAME"], "caf\xc3\xa9");
}

class WsgiInput : public ::testing::TestWithParam<std::size_t> {};  // the body's memory limit

TEST_P(WsgiInput, ReadReadlineReadlinesIteration) {
    const std::string body = "line one\nline two\n\nlast";
    bool spilled = GetParam() < body.size();
    auto check = [&](const std::string& how, json expected) {
        auto sink = run(make_call("POST", "/body/" + how, {{"Content-Length", std::to_string(body.size())}}, body,
                                  nullptr, GetParam()));
        json r = json::parse(sink->body());
        EXPECT_EQ(r["pieces"], expected) << how;
        EXPECT_EQ(r["type"], spilled ? "BufferedReader" : "BytesIO") << how;
    };
    json lines = json::array({"line one\n", "line two\n", "\n", "last"});
    check("read", json::array({body}));
    check("read-sized", json::array({"line", " one", "\nlin", "e tw", "o\n\nl", "ast"}));
    check("readline", lines);
    check("readlines", lines);
    check("iter", lines);
}
INSTANTIATE_TEST_SUITE_P(InMemoryAndSpilled, WsgiInput, ::testing::Values(std::size_t(1) << 20, std::size_t(4)));

TEST(WsgiResponse, ListIsOneSendWhole) {
    auto sink = get("/list");
    auto events = sink->events();
    ASSERT_EQ(sink->kinds(), (Kinds{"send_whole"}));
    const auto& head = events[0].head;
    EXPECT_EQ(head.status, 201);
    EXPECT_EQ(head.reason, "Created");
    EXPECT_EQ(header(head, "X-Multi"), "a,b");
    EXPECT_EQ(header(head, "Content-Type"), "text/plain");
    EXPECT_EQ(sink->body(), "hello world");
}

TEST(WsgiResponse, EmptyIterableIsEmptySendWholeAndClosed) {
    auto sink = get("/empty");
    ASSERT_EQ(sink->kinds(), (Kinds{"send_whole"}));
    EXPECT_EQ(sink->events()[0].head.status, 204);
    EXPECT_EQ(sink->body(), "");
    EXPECT_EQ(facts(), json::array({"closed empty after 0"}));
}

TEST(WsgiResponse, WriteStreamsBeforeTheIterable) {
    auto sink = get("/write");
    ASSERT_EQ(sink->kinds(), (Kinds{"start_stream", "write_chunk", "write_chunk", "write_chunk", "finish_stream"}));
    EXPECT_EQ(sink->body(), "first second third");
    EXPECT_EQ(facts(), json::array({"closed write after 1"}));
}

TEST(WsgiResponse, GeneratorStreamsSkippingEmptyChunks) {
    auto sink = get("/gen");
    ASSERT_EQ(sink->kinds(), (Kinds{"start_stream", "write_chunk", "write_chunk", "write_chunk", "finish_stream"}));
    EXPECT_EQ(sink->events()[0].head.status, 200);
    EXPECT_EQ(sink->body(), "onetwothree");
    EXPECT_EQ(facts(), json::array({"closed gen after 4"}));
}

TEST(WsgiResponse, StartResponseInsideTheGenerator) {
    auto sink = get("/gen-lazy-start");
    ASSERT_EQ(sink->kinds(), (Kinds{"start_stream", "write_chunk", "finish_stream"}));
    EXPECT_EQ(sink->body(), "lazy");
}

TEST(WsgiResponse, ContentLengthReachedIsOneSendWhole) {
    auto sink = get("/content-length");
    ASSERT_EQ(sink->kinds(), (Kinds{"send_whole"}));
    EXPECT_EQ(sink->body(), "abcdefghi");
    EXPECT_EQ(facts(), json::array({"closed content-length after 3"}));
}

TEST(WsgiResponse, FileWrapperOfARegularFileIsSendFile) {
    auto sink = get("/file");
    ASSERT_EQ(sink->kinds(), (Kinds{"start_stream", "send_file", "finish_stream"}));
    const auto* e = sink->find("send_file");
    EXPECT_EQ(e->offset, 3);  // where the app left the file
    EXPECT_EQ(e->count, 13u);
    EXPECT_EQ(e->data, "3456789abcdef");
    EXPECT_EQ(facts(), json::array({"closed file"}));  // the wrapper's close() closed the file
}

TEST(WsgiResponse, FileWrapperCountIsCappedByContentLength) {
    auto sink = get("/file-cl");
    const auto* e = sink->find("send_file");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->count, 5u);
    EXPECT_EQ(e->data, "34567");
    EXPECT_EQ(facts(), json::array({"closed file"}));
}

TEST(WsgiResponse, FileWrapperWithoutFilenoIsIterated) {
    auto sink = get("/bytesio-wrapper");
    ASSERT_EQ(sink->kinds(), (Kinds{"start_stream", "write_chunk", "write_chunk", "write_chunk", "write_chunk", "finish_stream"}));
    EXPECT_EQ(sink->body(), "in memory data");
}

TEST(WsgiResponse, ClientGoneStopsIterationAndStillCloses) {
    auto sink = std::make_shared<RecordingSink>(2);  // third write_chunk reports the client gone
    run(make_call("GET", "/long"), sink);
    ASSERT_EQ(sink->kinds(), (Kinds{"start_stream", "write_chunk", "write_chunk", "write_chunk", "finish_stream"}));
    EXPECT_EQ(facts(), json::array({"closed long after 3"}));
    EXPECT_FALSE(log_contains(take_log(), "error|"));  // a client leaving is not an app error
}

class WsgiFailure : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(WsgiFailure, IsFailWithTracebackInTheErrorLog) {
    take_log();
    auto [target, needle] = GetParam();
    auto sink = get(target);
    ASSERT_EQ(sink->kinds(), (Kinds{"fail"})) << target;
    auto lines = take_log();
    EXPECT_TRUE(log_contains(lines, "error|Error handling request GET " + target)) << target;
    EXPECT_TRUE(log_contains(lines, needle)) << target << " wants " << needle;
}
INSTANTIATE_TEST_SUITE_P(
    AppErrors, WsgiFailure,
    ::testing::Values(std::pair<std::string, std::string>{"/raise", "ZeroDivisionError: division by zero"},
                      std::pair<std::string, std::string>{"/raise", "testapp.py"},
                      std::pair<std::string, std::string>{"/raise", "Traceback (most recent call last)"},
                      std::pair<std::string, std::string>{"/no-start-response", "without calling start_response"},
                      std::pair<std::string, std::string>{"/start-twice", "second time without exc_info"},
                      std::pair<std::string, std::string>{"/bad-header-name", "invalid header name 'Bad Name'"},
                      std::pair<std::string, std::string>{"/bad-header-value", "invalid value for header X-Injected"},
                      std::pair<std::string, std::string>{"/bad-header-nonlatin1", "X-Snow"},
                      std::pair<std::string, std::string>{"/bad-header-type", "X-Bytes"},
                      std::pair<std::string, std::string>{"/bad-status", "invalid status 'OK'"},
                      std::pair<std::string, std::string>{"/str-chunk", "TypeError: the response iterable must yield bytes, not str"},
                      std::pair<std::string, std::string>{"/gen-raise-first", "ValueError: gen-raise-first failed at chunk 0"}));

TEST(WsgiResponse, ErrorInIterableClosesIt) {
    take_log();
    auto sink = get("/gen-raise-first");
    EXPECT_EQ(sink->kinds(), (Kinds{"fail"}));
    EXPECT_EQ(facts(), json::array({"closed gen-raise-first after 0"}));
}

TEST(WsgiResponse, ErrorAfterStreamingStartedIsFailAfterTheHead) {
    take_log();
    auto sink = get("/gen-raise");
    EXPECT_EQ(sink->kinds(), (Kinds{"start_stream", "write_chunk", "fail"}));
    EXPECT_EQ(facts(), json::array({"closed gen-raise after 1"}));
    EXPECT_TRUE(log_contains(take_log(), "ValueError: gen-raise failed at chunk 1"));
}

TEST(WsgiResponse, HeadersAsTupleOfPairsAndATupleBody) {
    auto sink = get("/tuple-headers");
    auto events = sink->events();
    ASSERT_EQ(sink->kinds(), (Kinds{"send_whole"}));
    EXPECT_EQ(header(events[0].head, "X-List-Pair"), "1");
    EXPECT_EQ(header(events[0].head, "X-Tuple-Pair"), "2");
    EXPECT_EQ(sink->body(), "tuple");
}

TEST(WsgiResponse, HtabIsAllowedInHeaderValues) {
    auto sink = get("/htab-header");
    ASSERT_EQ(sink->kinds(), (Kinds{"send_whole"}));
    EXPECT_EQ(header(sink->events().at(0).head, "X-Tab"), "a\tb");
}

TEST(WsgiResponse, ExcInfoBeforeHeadersSentReplacesThem) {
    auto sink = get("/exc-info-before");
    auto events = sink->events();
    ASSERT_EQ(sink->kinds(), (Kinds{"send_whole"}));
    const auto& head = events[0].head;
    EXPECT_EQ(head.status, 500);
    EXPECT_EQ(head.reason, "Internal Error");
    EXPECT_EQ(header(head, "X-First"), "");
    EXPECT_EQ(header(head, "X-Second"), "2");
    EXPECT_EQ(sink->body(), "replaced");
}

TEST(WsgiResponse, ExcInfoAfterHeadersSentReraises) {
    take_log();
    auto sink = get("/exc-info-after");
    EXPECT_EQ(sink->kinds(), (Kinds{"start_stream", "write_chunk", "fail"}));
    EXPECT_TRUE(log_contains(take_log(), "KeyError: 'too-late'"));
}

TEST(WsgiResponse, KeptStartResponseAndWriteRaiseInLaterRequests) {
    ASSERT_EQ(get("/keep-start-response")->body(), "kept");
    take_log();
    EXPECT_EQ(get("/use-kept-start-response")->kinds(), (Kinds{"fail"}));
    EXPECT_TRUE(log_contains(take_log(), "start_response() called after the request finished"));
    EXPECT_EQ(get("/use-kept-write")->kinds(), (Kinds{"fail"}));
    EXPECT_TRUE(log_contains(take_log(), "write() called after the response was finished"));
}

class ThrowingSink : public RecordingSink {
public:
    bool write_chunk(std::string data) override {
        RecordingSink::write_chunk(std::move(data));
        throw std::runtime_error("sink exploded");
    }
};

TEST(WsgiResponse, SinkExceptionEndsTheStreamAndTheThreadLives) {
    take_log();
    auto sink = std::make_shared<ThrowingSink>();
    run(make_call("GET", "/gen"), sink);
    EXPECT_EQ(sink->kinds(), (Kinds{"start_stream", "write_chunk", "finish_stream"}));
    EXPECT_EQ(facts(), json::array({"closed gen after 1"}));
    EXPECT_TRUE(log_contains(take_log(), "sink exploded"));
    for (int i = 0; i < 4; ++i) EXPECT_EQ(get("/list")->body(), "hello world");  // every thread still serves
}

TEST(WsgiErrors, LinesGoToTheErrorLog) {
    take_log();
    auto sink = get("/errors");
    ASSERT_EQ(sink->kinds(), (Kinds{"send_whole"}));
    auto lines = take_log();
    EXPECT_TRUE(log_contains(lines, "error|first line"));
    EXPECT_TRUE(log_contains(lines, "error|second line"));
    EXPECT_TRUE(log_contains(lines, "error|tail"));
}

TEST(WsgiDjango, HttpResponseIsOneSendWholeWithContentLength) {
    auto sink = get("/django/", {{"Host", "testserver"}});
    auto events = sink->events();
    ASSERT_EQ(sink->kinds(), (Kinds{"send_whole"}));
    EXPECT_EQ(events[0].head.status, 200);
    EXPECT_EQ(header(events[0].head, "Content-Length"), "17");
    EXPECT_EQ(sink->body(), "hello from django");
}

TEST(WsgiDjango, FormPostIsParsedFromWsgiInput) {
    std::string form = "name=gantry&lang=c%2B%2B";
    auto sink = run(make_call("POST", "/django/form?q=1", {{"Host", "testserver"},
        {"Content-Type", "application/x-www-form-urlencoded"}, {"Content-Length", std::to_string(form.size())}}, form));
    json r = json::parse(sink->body());
    EXPECT_EQ(r["method"], "POST");
    EXPECT_EQ(r["post"], (json{{"name", "gantry"}, {"lang", "c++"}}));
    EXPECT_EQ(r["query"], (json{{"q", "1"}}));
}

TEST(WsgiDjango, SpilledChunkedUploadIsReadWhole) {
    std::string body(300000, 'z');
    body.replace(0, 5, "HELLO");
    auto sink = run(make_call("POST", "/django/upload", {{"Host", "testserver"}, {"Transfer-Encoding", "chunked"},
                                                          {"Content-Type", "application/octet-stream"}},
                              body, nullptr, 4096));
    json r = json::parse(sink->body());
    EXPECT_EQ(r["size"], 300000);
    EXPECT_EQ(r["head"], "HELLO");
}

TEST(WsgiDjango, StreamingHttpResponseStreams) {
    auto sink = get("/django/stream", {{"Host", "testserver"}});
    EXPECT_EQ(sink->kinds(), (Kinds{"start_stream", "write_chunk", "write_chunk", "write_chunk", "finish_stream"}));
    EXPECT_EQ(sink->body(), "abc");
}

TEST(WsgiExecutor, ManyConcurrentCallsAllAnswered) {
    std::vector<std::shared_ptr<RecordingSink>> sinks;
    for (int i = 0; i < 200; ++i) {
        auto sink = std::make_shared<RecordingSink>();
        sinks.push_back(sink);
        executor().dispatch(make_call("GET", "/list", {}, {}, sink));
    }
    for (auto& s : sinks) {
        ASSERT_TRUE(s->wait());
        EXPECT_EQ(s->body(), "hello world");
    }
}

}  // namespace
}  // namespace gantry::test

namespace gantry::test {
namespace {

// Throughput of the executor on the smallest app; run by hand:
//   embed_tests --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_Throughput*'
TEST(WsgiExecutor, DISABLED_Throughput) {
    constexpr int kCalls = 20000;
    std::vector<std::shared_ptr<RecordingSink>> sinks;
    std::vector<std::unique_ptr<AppCall>> calls;
    for (int i = 0; i < kCalls; ++i) {
        sinks.push_back(std::make_shared<RecordingSink>());
        calls.push_back(make_call("GET", "/list?x=1", {{"Host", "localhost"}, {"Accept", "*/*"}, {"User-Agent", "bench"}},
                                  {}, sinks.back()));
    }
    auto start = std::chrono::steady_clock::now();
    for (auto& c : calls) executor().dispatch(std::move(c));
    for (auto& s : sinks) ASSERT_TRUE(s->wait());
    auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    std::printf("%d calls, %.2f us per call (app included)\n", kCalls, us / kCalls);
}

}  // namespace
}  // namespace gantry::test
