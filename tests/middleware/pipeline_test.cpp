#include "middleware/pipeline.hpp"  // first: the header stands alone

#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>


namespace gantry {
namespace {

struct Seen final : MiddlewareState {
    std::string by;
};

// Records every hook it sees into a shared trace.
class Recorder : public Middleware {
public:
    Recorder(std::string name, std::vector<std::string>& trace, bool answer = false, bool throw_request = false,
             bool throw_response = false)
        : name_(std::move(name)), trace_(trace), answer_(answer), throw_request_(throw_request),
          throw_response_(throw_response) {}
    std::string_view name() const override { return name_; }
    Flow on_request(RequestContext& ctx) const override {
        trace_.push_back(name_ + ".request");
        auto seen = std::make_unique<Seen>();
        seen->by = name_;
        ctx.state() = std::move(seen);
        if (throw_request_) throw std::runtime_error("boom in " + name_);
        if (answer_) {
            ctx.respond(ResponseHead{203, "", {{"X-By", name_}}}, "from " + name_);
            return Flow::respond;
        }
        return Flow::next;
    }
    void on_response(RequestContext&, ResponseHead& head, std::string* body) const override {
        trace_.push_back(name_ + ".response");
        if (throw_response_) throw std::runtime_error("boom in " + name_);
        head.headers.push_back({"X-Seen", name_});
        if (body) *body += "|" + name_;
    }
    void on_chunk(RequestContext&, std::string& chunk) const override {
        trace_.push_back(name_ + ".chunk");
        chunk += name_;
    }
    void on_stream_end(RequestContext& ctx, std::string& tail) const override {
        trace_.push_back(name_ + ".end");
        // Its own state slot survives from on_request to the end of the stream.
        auto* seen = dynamic_cast<Seen*>(ctx.state().get());
        tail += seen ? seen->by : "?";
        tail += "<" + name_ + ">";
    }

private:
    std::string name_;
    std::vector<std::string>& trace_;
    bool answer_, throw_request_, throw_response_;
};

struct Chain {
    std::vector<std::string> trace;
    std::vector<std::unique_ptr<const Middleware>> items;
    Chain& add(std::string name, bool answer = false, bool throw_request = false, bool throw_response = false) {
        items.push_back(std::make_unique<Recorder>(std::move(name), trace, answer, throw_request, throw_response));
        return *this;
    }
};

TEST(Pipeline, RequestHooksTopToBottomResponseHooksBottomToTop) {
    Chain c;
    c.add("a").add("b").add("c");
    Pipeline p(std::move(c.items));
    HttpRequest req;
    RequestContext ctx(req);
    std::size_t entered = p.run_request(ctx);
    EXPECT_EQ(entered, 3u);
    EXPECT_FALSE(ctx.answered());
    ResponseHead head;
    std::string body = "app";
    p.run_response(ctx, head, &body, entered);
    EXPECT_EQ(c.trace, (std::vector<std::string>{"a.request", "b.request", "c.request", "c.response", "b.response",
                                                 "a.response"}));
    EXPECT_EQ(body, "app|c|b|a");
    ASSERT_EQ(head.headers.size(), 3u);
    EXPECT_EQ(head.headers[0].value, "c");
}

TEST(Pipeline, AnAnswerShortCircuitsAndOnlyEnteredHooksRunBack) {
    Chain c;
    c.add("a").add("b", /*answer=*/true).add("c");
    Pipeline p(std::move(c.items));
    HttpRequest req;
    RequestContext ctx(req);
    std::size_t entered = p.run_request(ctx);
    EXPECT_EQ(entered, 2u);
    ASSERT_TRUE(ctx.answered());
    EXPECT_EQ(ctx.answer_head().status, 203);
    EXPECT_EQ(ctx.answer_body(), "from b");
    p.run_response(ctx, ctx.answer_head(), &ctx.answer_body(), entered);
    EXPECT_EQ(c.trace, (std::vector<std::string>{"a.request", "b.request", "b.response", "a.response"}));
}

TEST(Pipeline, ChunksPassInReverseOrder) {
    Chain c;
    c.add("a").add("b");
    Pipeline p(std::move(c.items));
    HttpRequest req;
    RequestContext ctx(req);
    std::size_t entered = p.run_request(ctx);
    std::string chunk = "x";
    p.run_chunk(ctx, chunk, entered);
    EXPECT_EQ(chunk, "xba");
}

TEST(Pipeline, StreamEndRunsInReverseOrderEachWithItsOwnState) {
    Chain c;
    c.add("a").add("b").add("c");
    Pipeline p(std::move(c.items));
    HttpRequest req;
    RequestContext ctx(req);
    std::size_t entered = p.run_request(ctx);
    std::string tail;
    p.run_stream_end(ctx, tail, entered);
    // The inner middleware's final bytes come first and pass outward, as chunks do.
    EXPECT_EQ(tail, "c<c>b<b>a<a>");
    EXPECT_EQ(c.trace, (std::vector<std::string>{"a.request", "b.request", "c.request", "c.end", "b.end", "a.end"}));
}

TEST(Pipeline, AThrowingRequestHookBecomesA500) {
    Chain c;
    c.add("a").add("bad", false, /*throw_request=*/true).add("c");
    Pipeline p(std::move(c.items));
    HttpRequest req;
    RequestContext ctx(req);
    std::size_t entered = p.run_request(ctx);
    EXPECT_EQ(entered, 2u);
    ASSERT_TRUE(ctx.answered());
    EXPECT_EQ(ctx.answer_head().status, 500);
    EXPECT_EQ(std::count(c.trace.begin(), c.trace.end(), "c.request"), 0);
}

TEST(Pipeline, AThrowingResponseHookTurnsAWholeResponseInto500) {
    Chain c;
    c.add("a").add("bad", false, false, /*throw_response=*/true);
    Pipeline p(std::move(c.items));
    HttpRequest req;
    RequestContext ctx(req);
    std::size_t entered = p.run_request(ctx);
    ResponseHead head{200, "OK", {}};
    std::string body = "fine";
    p.run_response(ctx, head, &body, entered);
    EXPECT_EQ(head.status, 500);
    EXPECT_EQ(body.rfind("500", 0), 0u);
    EXPECT_EQ(c.trace.back(), "a.response");  // the outer ones still run
}

// A stream rewriter whose library call fails on the chunk "bad" (throwing, or asking for the
// abort), and at the stream's end when told to.
class BrokenRewriter final : public Middleware {
public:
    BrokenRewriter(std::vector<std::string>& trace, bool throws, bool fail_end = false)
        : trace_(trace), throws_(throws), fail_end_(fail_end) {}
    std::string_view name() const override { return "broken"; }
    void on_chunk(RequestContext& ctx, std::string& chunk) const override {
        trace_.push_back("broken.chunk");
        if (chunk != "bad") return;
        chunk = "half-rewritten";
        if (throws_) throw std::runtime_error("codec failed");
        ctx.abort_response();
    }
    void on_stream_end(RequestContext& ctx, std::string& tail) const override {
        trace_.push_back("broken.end");
        if (!fail_end_) return;
        tail = "half-tail";
        if (throws_) throw std::runtime_error("codec failed");
        ctx.abort_response();
    }

private:
    std::vector<std::string>& trace_;
    bool throws_, fail_end_;
};

TEST(Pipeline, AFailingChunkHookAbortsTheResponseAndSkipsTheHooksAbove) {
    for (bool throws : {true, false}) {
        Chain c;
        c.add("outer");
        c.items.push_back(std::make_unique<BrokenRewriter>(c.trace, throws));
        Pipeline p(std::move(c.items));
        HttpRequest req;
        RequestContext ctx(req);
        std::size_t entered = p.run_request(ctx);
        std::string good = "ok";
        p.run_chunk(ctx, good, entered);
        EXPECT_EQ(good, "okouter");
        EXPECT_FALSE(ctx.response_aborted());
        std::string bad = "bad";
        p.run_chunk(ctx, bad, entered);
        EXPECT_TRUE(ctx.response_aborted());
        EXPECT_EQ(bad, "") << "nothing of a failed chunk is sent";
        EXPECT_EQ(c.trace.back(), "broken.chunk") << "the hooks above never see it";
    }
}

TEST(Pipeline, AFailingStreamEndAbortsTheResponse) {
    for (bool throws : {true, false}) {
        Chain c;
        c.add("outer");
        c.items.push_back(std::make_unique<BrokenRewriter>(c.trace, throws, /*fail_end=*/true));
        Pipeline p(std::move(c.items));
        HttpRequest req;
        RequestContext ctx(req);
        std::size_t entered = p.run_request(ctx);
        std::string tail;
        p.run_stream_end(ctx, tail, entered);
        EXPECT_TRUE(ctx.response_aborted());
        EXPECT_EQ(tail, "");
        EXPECT_EQ(c.trace.back(), "broken.end");
    }
}

TEST(Pipeline, EveryHookIsTimedUnlessTimingIsOff) {
    Chain c;
    c.add("a").add("b");
    Pipeline timed(std::move(c.items), true);
    HttpRequest req;
    RequestContext ctx(req);
    timed.run_request(ctx);
    EXPECT_EQ(ctx.timings().middleware_count, 2u);
    EXPECT_GT(ctx.timings().on_request_ns[0], 0);
    EXPECT_GT(ctx.timings().on_request_ns[1], 0);

    Chain d;
    d.add("a");
    Pipeline untimed(std::move(d.items), false);
    RequestContext ctx2(req);
    untimed.run_request(ctx2);
    EXPECT_EQ(ctx2.timings().on_request_ns[0], 0);
}

// A middleware that reads the whole request body in on_request.
class BodyReader final : public Middleware {
public:
    std::string_view name() const override { return "body-reader"; }
    bool needs_request_body() const override { return true; }
};

TEST(Pipeline, NeedsTheRequestBodyWhenOneMiddlewareDoes) {
    Chain plain;
    plain.add("a").add("b");
    EXPECT_FALSE(Pipeline(std::move(plain.items)).needs_request_body());
    Chain with;
    with.add("a");
    with.items.push_back(std::make_unique<BodyReader>());
    EXPECT_TRUE(Pipeline(std::move(with.items)).needs_request_body());
}

}  // namespace
}  // namespace gantry
