#include "middleware/timing_middleware.hpp"  // first: the header stands alone

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace gantry {
namespace {

TEST(TimingMiddleware, HeaderOnlyForAllowedClients) {
    TimingMiddleware m(true, {"127.0.0.1"}, {"timing"});
    HttpRequest req;
    req.remote_addr = "127.0.0.1";
    RequestContext ctx(req);
    ctx.mutable_timings().middleware_count = 1;
    ctx.mutable_timings().app_ns = 3'104'000;
    ctx.mutable_timings().python_wait_ns = 10'000;
    ctx.server_timing().push_back({"cache", -1, "miss"});
    ResponseHead head;
    m.on_response(ctx, head, nullptr);
    ASSERT_EQ(head.headers.size(), 1u);
    EXPECT_EQ(head.headers[0].name, "Server-Timing");
    EXPECT_EQ(head.headers[0].value, "mw-timing;dur=0.000, python-wait;dur=0.010, app;dur=3.104, cache;desc=\"miss\"");

    HttpRequest outside;
    outside.remote_addr = "10.1.2.3";
    RequestContext ctx2(outside);
    ResponseHead head2;
    m.on_response(ctx2, head2, nullptr);
    EXPECT_TRUE(head2.headers.empty());
}

TEST(TimingFactory, OptionsOverrideTheFlags) {
    TimingOptions flags{false, {"127.0.0.1"}};
    TimingOptions same = timing_options(MiddlewareSpec{"timing", {}}, flags);
    EXPECT_FALSE(same.server_timing);
    EXPECT_EQ(same.allow_ips, (std::vector<std::string>{"127.0.0.1"}));
    TimingOptions own = timing_options(MiddlewareSpec{"timing", {{"server_timing", "yes"}, {"allow_ips", "*"}}}, flags);
    EXPECT_TRUE(own.server_timing);
    EXPECT_EQ(own.allow_ips, (std::vector<std::string>{"*"}));
    EXPECT_THROW(timing_options(MiddlewareSpec{"timing", {{"allow", "*"}}}, flags), ConfigError);
    auto m = make_timing_middleware(MiddlewareSpec{"timing", {}}, {flags, {"timing"}});
    EXPECT_EQ(m->name(), "timing");
}

}  // namespace
}  // namespace gantry
