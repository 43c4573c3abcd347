#include "server/load_error_page.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <string>

namespace gantry {
namespace {

const std::string kTraceback =
    "Traceback (most recent call last):\n"
    "  File \"/srv/app/views.py\", line 3\n"
    "    if a < b && c:\n"
    "             ^\n"
    "SyntaxError: invalid syntax\n";

std::string header(const NativeAnswer& a, const std::string& name) {
    for (const auto& h : a.head.headers)
        if (h.name == name) return h.value;
    return "";
}

HttpRequest request(const std::string& accept) {
    HttpRequest r;
    r.method = "GET";
    r.target = "/articles/?page=<2>";
    if (!accept.empty()) r.headers.push_back({"Accept", accept});
    return r;
}

TEST(LoadErrorPage, ABrowserGetsHtmlWithTheErrorAndTheEscapedTraceback) {
    NativeAnswer a = load_error_page(request("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"), kTraceback);
    EXPECT_EQ(a.head.status, 500);
    EXPECT_EQ(header(a, "Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(header(a, "Cache-Control"), "no-store");
    EXPECT_NE(a.body.find("<title>SyntaxError: invalid syntax</title>"), std::string::npos) << a.body;
    EXPECT_NE(a.body.find("<h1>SyntaxError: invalid syntax</h1>"), std::string::npos);
    EXPECT_NE(a.body.find("if a &lt; b &amp;&amp; c:"), std::string::npos) << "the traceback, escaped";
    EXPECT_NE(a.body.find("File &quot;/srv/app/views.py&quot;, line 3"), std::string::npos);
    EXPECT_NE(a.body.find("GET /articles/ was not served"), std::string::npos) << "the path, without its query";
    EXPECT_EQ(a.body.find("<2>"), std::string::npos);
}

TEST(LoadErrorPage, AnyOtherClientGetsPlainText) {
    for (const char* accept : {"", "*/*", "application/json"}) {
        NativeAnswer a = load_error_page(request(accept), kTraceback);
        EXPECT_EQ(a.head.status, 500);
        EXPECT_EQ(header(a, "Content-Type"), "text/plain; charset=utf-8") << accept;
        EXPECT_EQ(a.body.rfind("SyntaxError: invalid syntax\n", 0), 0u) << a.body;
        EXPECT_NE(a.body.find(kTraceback), std::string::npos) << "the traceback as is";
    }
}

TEST(LoadErrorPage, AnEmptyTracebackStillSaysWhat) {
    NativeAnswer a = load_error_page(request(""), "");
    EXPECT_EQ(a.body.rfind("The application could not be loaded", 0), 0u) << a.body;
}

}  // namespace
}  // namespace gantry
