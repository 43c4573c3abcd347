// A request's way out, against a recording sink: with --timing full the final call waits for
// the outlet's end, and a second completion reaches nothing.
#include "embed/runtime/response_outlet.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include "support.hpp"

namespace gantry::test {
namespace {

using Kinds = std::vector<std::string>;

ResponseHead ok_head() { return ResponseHead{200, "OK", {}}; }

TEST(ResponseOutlet, WithoutTimingEachCallGoesStraightThrough) {
    auto sink = std::make_shared<RecordingSink>();
    {
        GilEnsured gil;
        ResponseOutlet outlet(gil, ResponseHandle(sink), nullptr);
        outlet.send_whole(ok_head(), "body");
        EXPECT_TRUE(outlet.done());
        EXPECT_EQ(sink->kinds(), (Kinds{"send_whole"}));
        outlet.fail();  // a later error: the response is complete already
        outlet.finish();
    }
    EXPECT_EQ(sink->kinds(), (Kinds{"send_whole"}));
}

TEST(ResponseOutlet, WithTimingTheFinalCallWaitsForTheOutletsEndAndGoesOnce) {
    auto sink = std::make_shared<RecordingSink>();
    {
        GilEnsured gil;
        std::optional<DjangoTiming> timing = DjangoTiming::find(gil);
        ASSERT_TRUE(timing);
        {
            ResponseOutlet outlet(gil, ResponseHandle(sink), &*timing);
            outlet.start_stream(ok_head());
            EXPECT_TRUE(outlet.write_chunk("a"));  // the GIL released inside
            outlet.finish();
            EXPECT_EQ(sink->kinds(), (Kinds{"start_stream", "write_chunk"}));  // held back
            outlet.fail();  // an error after the held-back finish: nothing more goes
        }
        EXPECT_EQ(sink->kinds(), (Kinds{"start_stream", "write_chunk", "finish_stream"}));
        timing.reset();  // with the GIL
    }
}

TEST(ResponseOutlet, AResponseNeverCompletedFails) {
    auto whole = std::make_shared<RecordingSink>();
    auto streamed = std::make_shared<RecordingSink>();
    {
        GilEnsured gil;
        ResponseOutlet never_started(gil, ResponseHandle(whole), nullptr);
        ResponseOutlet never_finished(gil, ResponseHandle(streamed), nullptr);
        never_finished.start_stream(ok_head());
    }
    EXPECT_EQ(whole->kinds(), (Kinds{"fail"}));
    EXPECT_EQ(streamed->kinds(), (Kinds{"start_stream", "fail"}));
}

}  // namespace
}  // namespace gantry::test
