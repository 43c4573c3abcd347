#include "cache/cache_control.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <array>

namespace gantry {
namespace {

TEST(CacheControl, DirectivesAndValues) {
    auto cc = CacheControl::parse("public, max-age=300, s-maxage=\"60\", stale-while-revalidate=30, stale-if-error=600");
    EXPECT_TRUE(cc.is_public);
    EXPECT_FALSE(cc.is_private);
    EXPECT_EQ(cc.max_age, 300);
    EXPECT_EQ(cc.s_maxage, 60);
    EXPECT_EQ(cc.stale_while_revalidate, 30);
    EXPECT_EQ(cc.stale_if_error, 600);
}

TEST(CacheControl, CaseInsensitiveNamesAndSpaces) {
    auto cc = CacheControl::parse("  PRIVATE ,No-Store,  no-cache=\"Set-Cookie\" , No-Transform , Max-Age = 5");
    EXPECT_TRUE(cc.is_private);
    EXPECT_TRUE(cc.no_store);
    EXPECT_TRUE(cc.no_cache);
    EXPECT_TRUE(cc.no_transform);
    EXPECT_EQ(cc.max_age, 5);
}

TEST(CacheControl, InvalidFreshnessIsZeroOthersAbsent) {
    auto cc = CacheControl::parse("max-age=abc, s-maxage=-1, stale-if-error=x");
    EXPECT_EQ(cc.max_age, 0);
    EXPECT_EQ(cc.s_maxage, 0);
    EXPECT_FALSE(cc.stale_if_error.has_value());
    EXPECT_EQ(CacheControl::parse("max-age").max_age, 0);
}

TEST(CacheControl, RepeatedDirectiveTakesTheStricterAndFieldsCombine) {
    std::array<std::string_view, 2> fields = {"max-age=600", "max-age=60, must-revalidate"};
    auto cc = CacheControl::parse(fields);
    EXPECT_EQ(cc.max_age, 60);
    EXPECT_TRUE(cc.must_revalidate);
}

TEST(CacheControl, QuotedCommasDoNotSplit) {
    auto cc = CacheControl::parse("private=\"a, b\", max-age=10, ext=\"x,\\\"y\"");
    EXPECT_TRUE(cc.is_private);
    EXPECT_EQ(cc.max_age, 10);
}

TEST(CacheControl, HugeDeltaSaturates) {
    EXPECT_EQ(CacheControl::parse("max-age=99999999999999999999999").max_age, std::int64_t{1} << 31);
}

}  // namespace
}  // namespace gantry
