#include "middleware/static_middleware.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <strings.h>

#include "middleware/registry.hpp"
#include "server/config.hpp"  // the chain as the command line sets it

namespace gantry {
namespace {

namespace fs = std::filesystem;

const std::string* header(const ResponseHead& head, std::string_view name) {
    for (const auto& h : head.headers)
        if (h.name.size() == name.size() && ::strncasecmp(h.name.data(), name.data(), name.size()) == 0) return &h.value;
    return nullptr;
}

class StaticMiddlewareTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/gantry-static-mw-XXXXXX";
        root_ = ::mkdtemp(tmpl);
        write("site.css", std::string(2000, 'c'));
        write("site.css.gz", "GZ");
        write("site.css.br", "BR");
        write("big.bin", std::string(300000, 'b'));
        write("app.0123456789ab.js", "js");
        StaticOptions options;
        options.memory.file_max = 100000;
        mw_ = std::make_unique<StaticMiddleware>(
            std::vector<StaticMountSpec>{{"/static/", {{root_.string(), ""}}}}, std::vector<bool>{false}, options);
    }
    void TearDown() override { fs::remove_all(root_); }
    void write(const std::string& name, const std::string& text) { std::ofstream(root_ / name, std::ios::binary) << text; }

    struct Result {
        Flow flow;
        int status = 0;
        ResponseHead head;
        AnswerBody::Kind kind = AnswerBody::Kind::owned;
        std::string body;  // owned or shared bytes
        std::uint64_t offset = 0, count = 0;
        bool has_fd = false;
    };
    Result get(std::string target, std::vector<HttpHeader> headers = {}, std::string method = "GET") {
        HttpRequest req;
        req.method = std::move(method);
        req.target = std::move(target);
        req.headers = std::move(headers);
        RequestContext ctx(req);
        Result r;
        r.flow = mw_->on_request(ctx);
        if (r.flow != Flow::respond) return r;
        r.head = ctx.answer_head();
        r.status = r.head.status;
        auto& extra = ctx.answer_extra();
        r.kind = extra.kind;
        r.offset = extra.offset;
        r.count = extra.count;
        r.has_fd = extra.fd >= 0;
        if (extra.kind == AnswerBody::Kind::shared) r.body = extra.shared->substr(extra.offset, extra.count);
        else r.body = ctx.answer_body();
        return r;  // the context closes an fd it still holds
    }

    fs::path root_;
    std::unique_ptr<StaticMiddleware> mw_;
};

TEST_F(StaticMiddlewareTest, OtherPathsGoOnToTheApp) {
    EXPECT_EQ(get("/").flow, Flow::next);
    EXPECT_EQ(get("/staticfoo/site.css").flow, Flow::next);
    EXPECT_EQ(get("/static").flow, Flow::next);
    EXPECT_EQ(get("*", {}, "OPTIONS").flow, Flow::next);
    EXPECT_EQ(get("http://h").flow, Flow::next);
    EXPECT_EQ(get("http://h/static/site.css").status, 200);  // absolute-form
}

TEST_F(StaticMiddlewareTest, AWebSocketHandshakeUnderThePrefixGoesToTheApp) {
    HttpRequest req;
    req.method = "GET";
    req.target = "/static/site.css";
    RequestContext ctx(req);
    ctx.mark_websocket_handshake();
    EXPECT_EQ(mw_->on_request(ctx), Flow::next);
    EXPECT_FALSE(ctx.answered());
}

TEST_F(StaticMiddlewareTest, ServesFromMemoryWithWhitenoiseHeaders) {
    auto r = get("/static/site.css");
    ASSERT_EQ(r.flow, Flow::respond);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.kind, AnswerBody::Kind::shared);
    EXPECT_EQ(r.body, std::string(2000, 'c'));
    EXPECT_EQ(*header(r.head, "Content-Type"), "text/css; charset=utf-8");
    EXPECT_EQ(*header(r.head, "Content-Length"), "2000");
    EXPECT_EQ(*header(r.head, "Cache-Control"), "max-age=60, public");
    EXPECT_EQ(*header(r.head, "Vary"), "Accept-Encoding");
    EXPECT_EQ(*header(r.head, "Access-Control-Allow-Origin"), "*");
    EXPECT_NE(header(r.head, "ETag"), nullptr);
    EXPECT_NE(header(r.head, "Last-Modified"), nullptr);
    EXPECT_EQ(header(r.head, "Content-Encoding"), nullptr);
}

TEST_F(StaticMiddlewareTest, ChoosesPrecompressedVariants) {
    auto r = get("/static/site.css", {{"Accept-Encoding", "gzip, deflate, br"}});
    EXPECT_EQ(*header(r.head, "Content-Encoding"), "br");
    EXPECT_EQ(r.body, "BR");
    r = get("/static/site.css", {{"Accept-Encoding", "gzip"}});
    EXPECT_EQ(*header(r.head, "Content-Encoding"), "gzip");
    EXPECT_EQ(r.body, "GZ");
    r = get("/static/site.css", {{"Accept-Encoding", "br;q=0.1, gzip;q=0.9"}});
    EXPECT_EQ(r.body, "GZ");
    r = get("/static/site.css", {{"Accept-Encoding", "zstd"}});  // none written: identity
    EXPECT_EQ(header(r.head, "Content-Encoding"), nullptr);
    EXPECT_EQ(r.body.size(), 2000u);
}

TEST_F(StaticMiddlewareTest, LargeFilesGoBySendfile) {
    auto r = get("/static/big.bin", {{"Range", "bytes=100-199"}});
    EXPECT_EQ(r.status, 206);
    EXPECT_EQ(r.kind, AnswerBody::Kind::file);
    EXPECT_TRUE(r.has_fd);
    EXPECT_EQ(r.offset, 100u);
    EXPECT_EQ(r.count, 100u);
    EXPECT_EQ(*header(r.head, "Content-Range"), "bytes 100-199/300000");
    EXPECT_EQ(header(r.head, "Vary"), nullptr);
}

TEST_F(StaticMiddlewareTest, HashedNamesAreImmutable) {
    EXPECT_EQ(*header(get("/static/app.0123456789ab.js").head, "Cache-Control"), "max-age=31536000, public, immutable");
}

TEST_F(StaticMiddlewareTest, ConditionalAndErrors) {
    auto first = get("/static/site.css");
    auto r = get("/static/site.css", {{"If-None-Match", *header(first.head, "ETag")}});
    EXPECT_EQ(r.status, 304);
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(header(r.head, "Content-Length"), nullptr);
    EXPECT_NE(header(r.head, "ETag"), nullptr);
    r = get("/static/site.css", {{"Range", "bytes=5000-"}});
    EXPECT_EQ(r.status, 416);
    EXPECT_EQ(*header(r.head, "Content-Range"), "bytes */2000");
    EXPECT_EQ(get("/static/missing.css").status, 404);
    EXPECT_EQ(get("/static/../etc/passwd").status, 404);
    r = get("/static/site.css", {}, "POST");
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(*header(r.head, "Allow"), "GET, HEAD");
    r = get("/static/site.css", {}, "HEAD");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(*header(r.head, "Content-Length"), "2000");
    EXPECT_TRUE(r.body.empty());
}

TEST_F(StaticMiddlewareTest, AFileThatVanishedIsNotFound) {
    fs::remove(root_ / "big.bin");
    EXPECT_EQ(get("/static/big.bin").status, 404);
    std::ofstream(root_ / "big.bin", std::ios::binary) << "shorter now";  // size changed: its headers would lie
    EXPECT_EQ(get("/static/big.bin").status, 404);
}

TEST(StaticRegistry, OptionsAreValidated) {
    Config c;
    c.middleware = {{"timing", {}}, {"static", {{"max_age", "120"}, {"cors", "false"}}}};
    EXPECT_NO_THROW(build_pipeline(chain_settings(c)));
    c.middleware = {{"static", {{"nonesuch", "1"}}}};
    EXPECT_THROW(build_pipeline(chain_settings(c)), ConfigError);
    c.middleware = {{"static", {{"max_age", "-1"}}}};
    EXPECT_THROW(build_pipeline(chain_settings(c)), ConfigError);
    c.middleware = {{"timing", {}}};
    c.static_mounts = {{"/static/", "/tmp"}};
    EXPECT_THROW(build_pipeline(chain_settings(c)), ConfigError);  // --static without the static middleware
    c.middleware = {{"static", {}}};
    c.static_mounts = {{"/static/", "/nonexistent-gantry-dir"}};
    EXPECT_THROW(build_pipeline(chain_settings(c)), ConfigError);
}

TEST(StaticRegistry, DefaultChainIsTimingThenStatic) {
    Config c;
    auto p = build_pipeline(chain_settings(c));
    ASSERT_EQ(p->names().size(), 2u);
    EXPECT_EQ(p->names()[0], "timing");
    EXPECT_EQ(p->names()[1], "static");
}

TEST(StaticRegistry, NothingToServeLeavesTheChainInAWorker) {
    Config c;  // as a worker builds it: no --static, no Django app
    DjangoStaticSettings none;
    auto p = build_pipeline(chain_settings(c), PipelineInputs{true, &none});
    EXPECT_EQ(p->names(), std::vector<std::string>{"timing"});
    char tmpl[] = "/tmp/gantry-static-reg-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    c.static_mounts = {{"/s/", dir}};
    EXPECT_EQ(build_pipeline(chain_settings(c), PipelineInputs{true, &none})->names(), (std::vector<std::string>{"timing", "static"}));
    fs::remove_all(dir);
}

TEST(StaticRegistry, DjangoSettingsMakeTheMounts) {
    char tmpl[] = "/tmp/gantry-static-dj-XXXXXX";
    fs::path dir = ::mkdtemp(tmpl);
    fs::create_directories(dir / "root" / "css");
    fs::create_directories(dir / "app" / "static");
    std::ofstream(dir / "root" / "css" / "collected.css") << "c";
    std::ofstream(dir / "app" / "static" / "dev.css") << "d";
    Config c;
    c.middleware = {{"static", {}}};
    DjangoStaticSettings dj;
    dj.found = true;
    dj.static_url = "/assets/";
    dj.static_root = (dir / "root").string();
    dj.finder_sources = {{(dir / "app" / "static").string(), ""}};
    auto mounts_of = [&](const Pipeline& p) {
        // The chain holds one StaticMiddleware; what it serves shows through a request.
        HttpRequest req;
        req.method = "GET";
        std::vector<int> statuses;
        for (const char* t : {"/assets/css/collected.css", "/assets/dev.css"}) {
            req.target = t;
            RequestContext ctx(req);
            p.run_request(ctx);
            statuses.push_back(ctx.answered() ? ctx.answer_head().status : 0);
        }
        return statuses;
    };
    EXPECT_EQ(mounts_of(*build_pipeline(chain_settings(c), PipelineInputs{true, &dj})), (std::vector<int>{200, 404}));  // STATIC_ROOT
    dj.debug = true;
    EXPECT_EQ(mounts_of(*build_pipeline(chain_settings(c), PipelineInputs{true, &dj})), (std::vector<int>{404, 200}));  // finders
    c.middleware = {{"static", {{"django", "false"}}}};
    EXPECT_EQ(build_pipeline(chain_settings(c), PipelineInputs{true, &dj})->size(), 0u);
    fs::remove_all(dir);
}

TEST(StaticFactory, NothingToServeIsNoMiddleware) {
    const MiddlewareSpec spec{"static", {{"max_age", "5"}, {"watch", "on"}}};
    StaticOptions o = static_options(spec);
    EXPECT_EQ(o.max_age, 5);
    EXPECT_TRUE(o.watch);
    EXPECT_TRUE(o.django);
    StaticSettings worker;
    worker.index = true;
    EXPECT_EQ(make_static_middleware(spec, worker), nullptr);
    // The master's check keeps it (options validated, nothing read).
    EXPECT_NE(make_static_middleware(spec, StaticSettings{}), nullptr);
}

}  // namespace
}  // namespace gantry
