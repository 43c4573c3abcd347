#include "cache/cached_response.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

namespace gantry {
namespace {

CachedResponse sample() {
    CachedResponse r;
    r.head.status = 200;
    r.head.reason = "OK";
    r.head.headers = {{"Content-Type", "text/html; charset=utf-8"}, {"Vary", "Cookie"}, {"X-Empty", ""}};
    r.body = std::string("<html>\0binary\xff</html>", 21);
    r.stored_at = 1000;
    r.fresh_until = 1060;
    r.stale_while_revalidate_until = 1090;
    r.stale_if_error_until = 1600;
    r.serves_authorized = true;
    return r;
}

TEST(CachedResponse, RoundTrips) {
    auto r = sample();
    auto back = CachedResponse::parse(r.serialize());
    ASSERT_TRUE(back);
    EXPECT_EQ(back->head.status, 200);
    EXPECT_EQ(back->head.reason, "OK");
    ASSERT_EQ(back->head.headers.size(), 3u);
    EXPECT_EQ(back->head.headers[1].name, "Vary");
    EXPECT_EQ(back->head.headers[2].value, "");
    EXPECT_EQ(back->body, r.body);
    EXPECT_EQ(back->stored_at, 1000);
    EXPECT_EQ(back->stale_if_error_until, 1600);
    EXPECT_TRUE(back->serves_authorized);
}

TEST(CachedResponse, AnythingUnreadableIsAMiss) {
    std::string bytes = sample().serialize();
    for (std::size_t cut = 0; cut < bytes.size(); cut += 7)
        EXPECT_FALSE(CachedResponse::parse(std::string_view(bytes).substr(0, cut)).has_value()) << cut;
    EXPECT_FALSE(CachedResponse::parse(bytes + "x").has_value());
    std::string other_version = bytes;
    other_version[0] = 2;
    EXPECT_FALSE(CachedResponse::parse(other_version).has_value());
    EXPECT_FALSE(CachedResponse::parse("").has_value());
}

TEST(CachedResponse, FreshnessWindows) {
    auto r = sample();
    using F = CachedResponse::Freshness;
    EXPECT_EQ(r.freshness(1000), F::fresh);
    EXPECT_EQ(r.freshness(1059), F::fresh);
    EXPECT_EQ(r.freshness(1060), F::stale_while_revalidate);
    EXPECT_EQ(r.freshness(1090), F::stale_if_error_only);
    EXPECT_EQ(r.freshness(1600), F::expired);
    EXPECT_EQ(r.keep_until(), 1600);
}

}  // namespace
}  // namespace gantry
