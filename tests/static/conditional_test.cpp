#include "static/conditional.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

namespace gantry {
namespace {

const std::string kEtag = "\"5f5e1000-400\"";
constexpr std::time_t kMtime = 1600000000;  // Sun, 13 Sep 2020 12:26:40 GMT
const Representation kRep{kEtag, kMtime, 1024};

ServeDecision decide(std::string inm = "", std::string ims = "", std::string range = "", std::string if_range = "",
                     bool get = true) {
    ConditionalRequest r;
    r.is_get = get;
    r.if_none_match = inm.empty() ? nullptr : &inm;
    r.if_modified_since = ims.empty() ? nullptr : &ims;
    r.range = range.empty() ? nullptr : &range;
    r.if_range = if_range.empty() ? nullptr : &if_range;
    return decide_static_response(r, kRep);
}

TEST(Conditional, PlainGetIsTheWholeFile) {
    auto d = decide();
    EXPECT_EQ(d.status, 200);
    EXPECT_EQ(d.offset, 0u);
    EXPECT_EQ(d.length, 1024u);
}

TEST(Conditional, IfNoneMatchListsWeakAndStar) {
    EXPECT_EQ(decide(kEtag).status, 304);
    EXPECT_EQ(decide("W/" + kEtag).status, 304);                       // weak comparison
    EXPECT_EQ(decide("\"other\", " + kEtag + " ,\"x\"").status, 304);  // in a list
    EXPECT_EQ(decide("*").status, 304);
    EXPECT_EQ(decide("\"other\"").status, 200);
    EXPECT_EQ(decide("\"5f5e1000-401\"").status, 200);
    EXPECT_EQ(decide("5f5e1000-400").status, 200);  // unquoted is not that tag
}

TEST(Conditional, IfModifiedSince) {
    EXPECT_EQ(decide("", "Sun, 13 Sep 2020 12:26:40 GMT").status, 304);     // equal
    EXPECT_EQ(decide("", "Mon, 14 Sep 2020 00:00:00 GMT").status, 304);     // later
    EXPECT_EQ(decide("", "Sun, 13 Sep 2020 12:26:39 GMT").status, 200);     // earlier
    EXPECT_EQ(decide("", "Sunday, 13-Sep-20 12:26:40 GMT").status, 304);    // RFC 850
    EXPECT_EQ(decide("", "Sun Sep 13 12:26:40 2020").status, 304);          // asctime
    EXPECT_EQ(decide("", "yesterday").status, 200);                         // invalid: ignored
    // If-None-Match present: If-Modified-Since is not looked at.
    EXPECT_EQ(decide("\"other\"", "Mon, 14 Sep 2020 00:00:00 GMT").status, 200);
}

TEST(Conditional, SingleRanges) {
    auto d = decide("", "", "bytes=0-99");
    EXPECT_EQ(d.status, 206);
    EXPECT_EQ(d.offset, 0u);
    EXPECT_EQ(d.length, 100u);
    d = decide("", "", "bytes=1000-");
    EXPECT_EQ(d.status, 206);
    EXPECT_EQ(d.offset, 1000u);
    EXPECT_EQ(d.length, 24u);
    d = decide("", "", "bytes=-10");
    EXPECT_EQ(d.status, 206);
    EXPECT_EQ(d.offset, 1014u);
    EXPECT_EQ(d.length, 10u);
    d = decide("", "", "bytes=-5000");  // longer than the file: all of it
    EXPECT_EQ(d.status, 206);
    EXPECT_EQ(d.offset, 0u);
    EXPECT_EQ(d.length, 1024u);
    d = decide("", "", "bytes=1000-999999999999999999999999");  // past the end and overflowing: clamped
    EXPECT_EQ(d.status, 206);
    EXPECT_EQ(d.length, 24u);
    d = decide("", "", "BYTES = 5-5");
    EXPECT_EQ(d.status, 206);
    EXPECT_EQ(d.length, 1u);
}

TEST(Conditional, UnsatisfiableAndInvalidRanges) {
    EXPECT_EQ(decide("", "", "bytes=1024-").status, 416);
    EXPECT_EQ(decide("", "", "bytes=5000-6000").status, 416);
    EXPECT_EQ(decide("", "", "bytes=-0").status, 416);
    EXPECT_EQ(decide("", "", "bytes=99999999999999999999999-").status, 416);
    // Invalid syntax or another unit: the header is ignored.
    EXPECT_EQ(decide("", "", "bytes=5-1").status, 200);
    EXPECT_EQ(decide("", "", "bytes=abc").status, 200);
    EXPECT_EQ(decide("", "", "items=0-1").status, 200);
    EXPECT_EQ(decide("", "", "bytes=").status, 200);
    EXPECT_EQ(decide("", "", "bytes=1-2-3").status, 200);
}

TEST(Conditional, SeveralRangesGiveTheWholeFile) {
    auto d = decide("", "", "bytes=0-1,5-9");
    EXPECT_EQ(d.status, 200);
    EXPECT_EQ(d.length, 1024u);
    EXPECT_EQ(decide("", "", "bytes=2000-3000, 4000-").status, 416);  // none satisfiable
}

TEST(Conditional, IfRange) {
    EXPECT_EQ(decide("", "", "bytes=0-9", kEtag).status, 206);
    EXPECT_EQ(decide("", "", "bytes=0-9", "\"old\"").status, 200);
    EXPECT_EQ(decide("", "", "bytes=0-9", "W/" + kEtag).status, 200);  // weak never matches
    EXPECT_EQ(decide("", "", "bytes=0-9", "Sun, 13 Sep 2020 12:26:40 GMT").status, 206);
    EXPECT_EQ(decide("", "", "bytes=0-9", "Mon, 14 Sep 2020 00:00:00 GMT").status, 200);  // exact date only
    EXPECT_EQ(decide("", "", "bytes=0-9", "garbage").status, 200);
}

TEST(Conditional, HeadIgnoresRangeButNotValidators) {
    EXPECT_EQ(decide("", "", "bytes=0-9", "", false).status, 200);
    EXPECT_EQ(decide(kEtag, "", "", "", false).status, 304);
}

TEST(Conditional, NotModifiedWinsOverRange) {
    EXPECT_EQ(decide(kEtag, "", "bytes=0-9").status, 304);
}

TEST(Conditional, EmptyFileRangesAreUnsatisfiable) {
    std::string range = "bytes=0-";
    ConditionalRequest r;
    r.range = &range;
    EXPECT_EQ(decide_static_response(r, Representation{kEtag, kMtime, 0}).status, 416);
    range = "bytes=-1";
    EXPECT_EQ(decide_static_response(r, Representation{kEtag, kMtime, 0}).status, 416);
}

TEST(Conditional, HttpDates) {
    EXPECT_EQ(format_http_date(kMtime), "Sun, 13 Sep 2020 12:26:40 GMT");
    EXPECT_EQ(parse_http_date("Sun, 13 Sep 2020 12:26:40 GMT"), kMtime);
    EXPECT_EQ(parse_http_date(" Sun, 13 Sep 2020 12:26:40 GMT "), kMtime);
    EXPECT_EQ(parse_http_date("Sun, 13 Sep 2020 12:26:40"), std::nullopt);
    EXPECT_EQ(parse_http_date("Sun, 13 Sep 2020 12:26:40 GMT trailing"), std::nullopt);
    EXPECT_EQ(parse_http_date(""), std::nullopt);
}

}  // namespace
}  // namespace gantry
