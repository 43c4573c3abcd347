#include "cache/cache_key.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

namespace gantry {
namespace {

HttpRequest request(std::string method, std::string target, std::vector<HttpHeader> headers = {}) {
    HttpRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.headers = std::move(headers);
    return r;
}

TEST(CacheKey, UrlHasMethodSchemeHostPathAndQuery) {
    auto r = request("GET", "/a/b?x=1&y=2");
    EXPECT_EQ(CacheKey(r, "Example.COM:8000").url(), "GET http://example.com:8000/a/b?x=1&y=2");
    r.url_scheme = "https";
    EXPECT_EQ(CacheKey(r, "example.com").url(), "GET https://example.com/a/b?x=1&y=2");
}

TEST(CacheKey, HeadSharesGetsKeyOtherMethodsDoNot) {
    auto get = request("GET", "/p"), head = request("HEAD", "/p"), post = request("POST", "/p");
    EXPECT_EQ(CacheKey(get, "h").variant_key({}, ""), CacheKey(head, "h").variant_key({}, ""));
    EXPECT_NE(CacheKey(get, "h").variant_key({}, ""), CacheKey(post, "h").variant_key({}, ""));
}

TEST(CacheKey, DifferentHostsQueriesAndPathsDiffer) {
    auto a = request("GET", "/p?q=1"), b = request("GET", "/p?q=2"), c = request("GET", "/P?q=1");
    EXPECT_NE(CacheKey(a, "h").variant_key({}, ""), CacheKey(b, "h").variant_key({}, ""));
    EXPECT_NE(CacheKey(a, "h").variant_key({}, ""), CacheKey(c, "h").variant_key({}, ""));
    EXPECT_NE(CacheKey(a, "h1").variant_key({}, ""), CacheKey(a, "h2").variant_key({}, ""));
}

TEST(CacheKey, AbsoluteFormTargetKeysByItsPath) {
    auto abs = request("GET", "http://evil.example/p?q"), origin = request("GET", "/p?q");
    EXPECT_EQ(CacheKey(abs, "h").url(), CacheKey(origin, "h").url());
}

TEST(CacheKey, VariedHeadersEnterTheKeyAbsentDiffersFromEmpty) {
    std::vector<std::string> vary = {"cookie"};
    auto alice = request("GET", "/p", {{"Cookie", "sid=alice"}});
    auto bob = request("GET", "/p", {{"cookie", "sid=bob"}});
    auto empty = request("GET", "/p", {{"Cookie", ""}});
    auto none = request("GET", "/p");
    auto k = [&](const HttpRequest& r) { return CacheKey(r, "h").variant_key(vary, ""); };
    EXPECT_NE(k(alice), k(bob));
    EXPECT_NE(k(empty), k(none));
    EXPECT_EQ(k(alice), k(request("GET", "/p", {{"COOKIE", "sid=alice"}})));
    // An unkeyed header changes nothing.
    EXPECT_EQ(k(alice), k(request("GET", "/p", {{"Cookie", "sid=alice"}, {"X-Evil", "1"}})));
}

TEST(CacheKey, RepeatedFieldsAreJoinedAndValuesCannotForgeSeparators) {
    std::vector<std::string> vary = {"accept-language", "x-a"};
    auto twice = request("GET", "/p", {{"Accept-Language", "en"}, {"Accept-Language", "fr"}});
    auto once = request("GET", "/p", {{"Accept-Language", "en, fr"}});
    EXPECT_EQ(CacheKey(twice, "h").variant_key(vary, ""), CacheKey(once, "h").variant_key(vary, ""));
    auto forged = request("GET", "/p", {{"Accept-Language", "en\nx-a=1:z"}});
    auto split = request("GET", "/p", {{"Accept-Language", "en"}, {"X-A", "z"}});
    EXPECT_NE(CacheKey(forged, "h").variant_key(vary, ""), CacheKey(split, "h").variant_key(vary, ""));
}

TEST(CacheKey, AcceptEncodingIsKeyedByTheChosenCoding) {
    std::vector<std::string> vary = {"accept-encoding"};
    auto a = request("GET", "/p", {{"Accept-Encoding", "gzip, deflate, br"}});
    auto b = request("GET", "/p", {{"Accept-Encoding", "br;q=1, gzip;q=0.5"}});
    EXPECT_EQ(CacheKey(a, "h").variant_key(vary, "br"), CacheKey(b, "h").variant_key(vary, "br"));
    EXPECT_NE(CacheKey(a, "h").variant_key(vary, "br"), CacheKey(a, "h").variant_key(vary, "gzip"));
    EXPECT_NE(CacheKey(a, "h").variant_key(vary, "gzip"), CacheKey(a, "h").variant_key(vary, ""));
}

TEST(VaryNames, LowerSortedDeduplicatedAcrossFields) {
    std::vector<HttpHeader> headers = {{"Vary", "Cookie, Accept-Encoding"}, {"vary", "accept-encoding ,  X-Thing"}};
    auto names = vary_names(headers);
    EXPECT_EQ(names, (std::vector<std::string>{"accept-encoding", "cookie", "x-thing"}));
    EXPECT_EQ(split_vary(join_vary(names)), names);
    EXPECT_TRUE(split_vary("").empty());
}

}  // namespace
}  // namespace gantry
