#include "middleware/accept_encoding.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <array>

namespace gantry {
namespace {

constexpr std::array<std::string_view, 3> kPreference = {"br", "zstd", "gzip"};

std::string_view pick(std::string_view header) { return choose_encoding(AcceptEncoding::parse(header), kPreference); }

TEST(AcceptEncoding, AbsentHeaderIsIdentityOnly) {
    auto a = AcceptEncoding::parse(nullptr);
    EXPECT_EQ(a.quality("identity"), 1.0);
    EXPECT_EQ(a.quality("gzip"), 0.0);
    EXPECT_EQ(choose_encoding(a, kPreference), "");
}

TEST(AcceptEncoding, ServerPreferenceBreaksTies) {
    EXPECT_EQ(pick("gzip, deflate, br, zstd"), "br");
    EXPECT_EQ(pick("gzip, zstd"), "zstd");
    EXPECT_EQ(pick("gzip"), "gzip");
    EXPECT_EQ(pick("deflate"), "");
}

TEST(AcceptEncoding, HigherQualityWins) {
    EXPECT_EQ(pick("br;q=0.5, gzip;q=0.9"), "gzip");
    EXPECT_EQ(pick("br;q=0.5, gzip"), "gzip");
    EXPECT_EQ(pick("gzip;q=1.0, br;q=1"), "br");
}

TEST(AcceptEncoding, QZeroRefuses) {
    EXPECT_EQ(pick("gzip;q=0"), "");  // Django's regex says yes here; we must not
    EXPECT_EQ(pick("gzip;q=0.000, br;q=0"), "");
    EXPECT_EQ(pick("br;q=0, gzip"), "gzip");
}

TEST(AcceptEncoding, StarCoversWhatIsNotListed) {
    EXPECT_EQ(pick("*"), "br");
    EXPECT_EQ(pick("br;q=0, *"), "zstd");
    EXPECT_EQ(pick("*;q=0"), "");
    auto a = AcceptEncoding::parse("*;q=0");
    EXPECT_EQ(a.quality("identity"), 0.0);  // "*;q=0" refuses identity too (unless it is listed)
    EXPECT_EQ(AcceptEncoding::parse("*;q=0, identity").quality("identity"), 1.0);
}

TEST(AcceptEncoding, IdentityWithAHigherQualityWins) {
    EXPECT_EQ(pick("gzip;q=0.5, identity"), "");
    EXPECT_EQ(pick("gzip, identity;q=0.5"), "gzip");
    EXPECT_EQ(pick("gzip, identity;q=0"), "gzip");
    EXPECT_FALSE(AcceptEncoding::parse("gzip, identity;q=0").acceptable("identity"));
}

TEST(AcceptEncoding, CaseSpacesAndXGzip) {
    EXPECT_EQ(pick("  GZIP ; Q=0.8 ,  BR;q=0.2"), "gzip");
    EXPECT_EQ(pick("x-gzip"), "gzip");
    EXPECT_EQ(pick(",, gzip ,"), "gzip");
    EXPECT_EQ(pick("gzip;level=9"), "gzip");  // unknown parameters are ignored
}

TEST(AcceptEncoding, MalformedIsIdentityOnly) {
    for (std::string_view bad : {"gzip;q=abc", "gzip;q=1.5", "gzip;q=2", "gzip;q=", "gzip;q=0.1234", "gzip br",
                                 "gzip;", "gzip;=1", "gz\x01ip", "\"gzip\"", "gzip;q=-1", "gzip;q=.5"}) {
        auto a = AcceptEncoding::parse(bad);
        EXPECT_EQ(a.quality("gzip"), 0.0) << bad;
        EXPECT_EQ(a.quality("identity"), 1.0) << bad;
    }
}

}  // namespace
}  // namespace gantry
