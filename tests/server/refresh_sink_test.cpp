#include "server/refresh_sink.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "http/response_handle.hpp"

namespace gantry {
namespace {

// A sink whose deliveries land in `out`.
std::shared_ptr<RefreshSink> collecting(std::vector<RefreshAnswer>& out) {
    return std::make_shared<RefreshSink>([&out](RefreshAnswer a) { out.push_back(std::move(a)); });
}

TEST(RefreshSink, HandsOnTheWholeAnswerOnce) {
    std::vector<RefreshAnswer> got;
    auto sink = collecting(got);
    ResponseHandle(sink).send_whole(ResponseHead{200, "OK", {{"Cache-Control", "max-age=1"}}}, "fresh");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].kind, RefreshAnswer::Kind::whole);
    EXPECT_EQ(got[0].head.status, 200);
    EXPECT_EQ(got[0].body, "fresh");
    EXPECT_TRUE(sink->client_gone());
}

TEST(RefreshSink, AStreamIsDroppedAndTheAppToldToStop) {
    std::vector<RefreshAnswer> got;
    auto sink = collecting(got);
    ResponseStream stream = ResponseHandle(sink).start_stream(ResponseHead{200, "OK", {}});
    EXPECT_FALSE(stream.write_chunk("piece"));  // the app stops producing
    std::move(stream).finish();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].kind, RefreshAnswer::Kind::streamed);
}

TEST(RefreshSink, AFailureOrADroppedCallIsAFailedRefresh) {
    std::vector<RefreshAnswer> got;
    ResponseHandle(collecting(got)).fail();
    { ResponseHandle dropped(collecting(got)); }  // never answered (a stopping executor's queue)
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].kind, RefreshAnswer::Kind::failed);
    EXPECT_EQ(got[1].kind, RefreshAnswer::Kind::failed);
}

TEST(RefreshSink, ATimedOutAppsLateAnswerGoesNowhere) {
    std::vector<RefreshAnswer> got;
    auto sink = collecting(got);
    ResponseHandle handle(sink);
    sink->fail_timeout();  // the --timeout watchdog, while the app still runs
    std::move(handle).send_whole(ResponseHead{200, "OK", {}}, "late");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].kind, RefreshAnswer::Kind::failed);
}

}  // namespace
}  // namespace gantry
