#include "static/path_resolver.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gantry {
namespace {

TEST(PathResolver, PlainNamesAndDecoding) {
    EXPECT_EQ(resolve_static_path("css/site.css"), "css/site.css");
    EXPECT_EQ(resolve_static_path("app.js?v=3"), "app.js");
    EXPECT_EQ(resolve_static_path("a%20b.txt"), "a b.txt");
    EXPECT_EQ(resolve_static_path("caf%C3%A9.css"), "caf\xc3\xa9.css");
    EXPECT_EQ(resolve_static_path("caf\xc3\xa9.css"), "caf\xc3\xa9.css");
    EXPECT_EQ(resolve_static_path("x..y/a..b.js"), "x..y/a..b.js");  // dots inside names are fine
    EXPECT_EQ(resolve_static_path("%41pp.js"), "App.js");
}

TEST(PathResolver, EveryEscapeAttemptIsNotFound) {
    const std::vector<std::string> attempts = {
        "../etc/passwd", "..", ".", "./a.css", "a/../../etc/passwd", "a/./b.css", "a/..", "css/../..",
        "%2e%2e/etc/passwd", "%2E%2E/etc/passwd", ".%2e/x", "%2e./x", "%2e", "a/%2e%2e/%2e%2e/etc/passwd",
        "..%2fetc%2fpasswd", "%2fetc/passwd", "a%2f..%2f..%2fetc", "a%2Fb",
        "..\\etc\\passwd", "a\\b.css", "%5c..%5cetc", "%5C",
        "a%00.css", std::string("a\0.css", 6), "a%0d%0aSet-Cookie:x", "a\x01", "%7f",
        "%c0%ae%c0%ae/etc/passwd", "%c0%af", "%e0%80%ae%e0%80%ae/x", "%f0%80%80%ae", "%c1%9c", "%ed%a0%80",
        "%ff", "%c3", "%e2%82", "\xc0\xae\xc0\xae/x", "\xff.css",
        "%", "%2", "%zz", "a%g0", "%%32%65%2e",
        "", "css/", "css//site.css", "/etc/passwd", "//etc/passwd",
        ".env", ".git/config", "css/.hidden.css", "%2egit/config", ".well-known/x",
    };
    for (const auto& a : attempts) EXPECT_EQ(resolve_static_path(a), std::nullopt) << a;
}

}  // namespace
}  // namespace gantry
