#include "middleware/compress_middleware.hpp"  // first: the header stands alone

#include <random>
#include <string>

#include <gtest/gtest.h>

#include <zlib.h>

#include "middleware/pipeline.hpp"
#include "middleware/registry.hpp"
#include "server/config.hpp"  // the chain as the command line sets it

namespace gantry {
namespace {

std::string gunzip(const std::string& in) {
    z_stream s{};
    inflateInit2(&s, 15 + 16);
    std::string out(in.size() * 50 + 1024, '\0');
    s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    s.avail_in = static_cast<uInt>(in.size());
    s.next_out = reinterpret_cast<Bytef*>(out.data());
    s.avail_out = static_cast<uInt>(out.size());
    int rc = inflate(&s, Z_FINISH);
    EXPECT_EQ(rc, Z_STREAM_END);
    out.resize(out.size() - s.avail_out);
    inflateEnd(&s);
    return out;
}

std::string page(std::size_t size = 5000) {
    std::string out;
    while (out.size() < size) out += "<p class=\"x\">Hello, compressible world!</p>\n";
    return out;
}

const std::string* header(const ResponseHead& head, std::string_view name) {
    for (const auto& h : head.headers)
        if (h.name == name) return &h.value;
    return nullptr;
}

// One request through a chain holding only the compress middleware.
struct Exchange {
    HttpRequest request;
    RequestContext ctx{request};
    ResponseHead head{200, "", {{"Content-Type", "text/html; charset=utf-8"}}};
    std::string body = page();

    explicit Exchange(const CompressMiddleware& m, std::string accept = "gzip", std::string method = "GET") {
        request.method = std::move(method);
        if (!accept.empty()) request.headers.push_back({"Accept-Encoding", std::move(accept)});
        m.on_request(ctx);
    }
};

CompressMiddleware make(CompressOptions o = {}) {
    o.prefer = {Coding::br, Coding::zstd, Coding::gzip};
    return CompressMiddleware(std::move(o));
}

TEST(CompressMiddleware, CompressesAWholeHtmlBodyWithTheChosenCoding) {
    auto m = make();
    Exchange x(m, "gzip, deflate");
    x.head.headers.push_back({"Content-Length", std::to_string(x.body.size())});
    const std::string original = x.body;
    m.on_response(x.ctx, x.head, &x.body);
    ASSERT_NE(header(x.head, "Content-Encoding"), nullptr);
    EXPECT_EQ(*header(x.head, "Content-Encoding"), "gzip");
    EXPECT_EQ(*header(x.head, "Content-Length"), std::to_string(x.body.size()));  // fixed
    EXPECT_EQ(*header(x.head, "Vary"), "Accept-Encoding");
    EXPECT_EQ(gunzip(x.body), original);
}

TEST(CompressMiddleware, LeavesAWebSocketHandshakeAlone) {
    auto m = make();
    HttpRequest request;
    request.method = "GET";
    request.headers.push_back({"Accept-Encoding", "gzip"});
    RequestContext ctx(request);
    ctx.mark_websocket_handshake();
    m.on_request(ctx);
    EXPECT_EQ(ctx.state(), nullptr);  // no coding chosen
    // Its refusal (an app's denial with a body) goes out as the app made it.
    ResponseHead denied{403, "Forbidden", {{"Content-Type", "text/html; charset=utf-8"}}};
    std::string body = page();
    const std::string original = body;
    m.on_response(ctx, denied, &body);
    EXPECT_EQ(header(denied, "Content-Encoding"), nullptr);
    EXPECT_EQ(body, original);
    // And a 101 never has a coding.
    ResponseHead switching{101, "Switching Protocols", {}};
    std::string none;
    m.on_response(ctx, switching, &none);
    EXPECT_TRUE(switching.headers.empty());
}

TEST(CompressMiddleware, PrefersBrotliThenZstdByDefault) {
    auto m = make();
    Exchange a(m, "gzip, br, zstd");
    m.on_response(a.ctx, a.head, &a.body);
    EXPECT_EQ(*header(a.head, "Content-Encoding"), "br");
    Exchange b(m, "gzip, zstd");
    m.on_response(b.ctx, b.head, &b.body);
    EXPECT_EQ(*header(b.head, "Content-Encoding"), "zstd");
}

TEST(CompressMiddleware, QValuesAreHonoured) {
    auto m = make();
    for (const char* refuse : {"gzip;q=0", "identity;q=1, gzip;q=0", "br;q=0, gzip;q=0, zstd;q=0", "*;q=0"}) {
        Exchange x(m, refuse);
        const std::string original = x.body;
        m.on_response(x.ctx, x.head, &x.body);
        EXPECT_EQ(header(x.head, "Content-Encoding"), nullptr) << refuse;
        EXPECT_EQ(x.body, original) << refuse;
        EXPECT_EQ(*header(x.head, "Vary"), "Accept-Encoding") << refuse;  // it could have been
    }
    Exchange star(m, "*");
    m.on_response(star.ctx, star.head, &star.body);
    EXPECT_EQ(*header(star.head, "Content-Encoding"), "br");
    Exchange low(m, "br;q=0.1, gzip;q=0.8");
    m.on_response(low.ctx, low.head, &low.body);
    EXPECT_EQ(*header(low.head, "Content-Encoding"), "gzip");
    Exchange identity_refused(m, "identity;q=0, gzip");
    m.on_response(identity_refused.ctx, identity_refused.head, &identity_refused.body);
    EXPECT_EQ(*header(identity_refused.head, "Content-Encoding"), "gzip");
}

TEST(CompressMiddleware, MalformedAcceptEncodingIsIdentity) {
    auto m = make();
    for (const char* bad : {"gzip;q=2", "gzip;q=abc", ",,,;", "gz\x01ip", "br;q="}) {
        Exchange x(m, bad);
        m.on_response(x.ctx, x.head, &x.body);
        EXPECT_EQ(header(x.head, "Content-Encoding"), nullptr) << bad;
    }
}

TEST(CompressMiddleware, ShortBodiesAreNotCompressedNorVaried) {
    CompressOptions o;
    o.min_length = 200;
    auto m = make(o);
    Exchange x(m);
    x.body = std::string(199, 'a');
    m.on_response(x.ctx, x.head, &x.body);
    EXPECT_EQ(header(x.head, "Content-Encoding"), nullptr);
    EXPECT_EQ(header(x.head, "Vary"), nullptr);
    Exchange y(m);
    y.body = std::string(200, 'a');
    m.on_response(y.ctx, y.head, &y.body);
    EXPECT_NE(header(y.head, "Content-Encoding"), nullptr);
}

TEST(CompressMiddleware, AlreadyEncodedNoTransformAndOtherTypesAreLeftAlone) {
    auto m = make();
    struct Case {
        HttpHeader extra;
        std::string type;
    } cases[] = {{{"Content-Encoding", "br"}, "text/html"},
                 {{"Cache-Control", "private, No-Transform"}, "text/html"},
                 {{"X-Nothing", ""}, "image/png"},
                 {{"X-Nothing", ""}, "application/octet-stream"},
                 {{"Content-Range", "bytes 0-4999/9000"}, "text/html"}};
    for (const auto& c : cases) {
        Exchange x(m);
        x.head.headers = {{"Content-Type", c.type}, c.extra};
        const std::string original = x.body;
        m.on_response(x.ctx, x.head, &x.body);
        EXPECT_EQ(x.body, original) << c.extra.name;
        EXPECT_EQ(header(x.head, "Vary"), nullptr) << c.extra.name;
        if (c.extra.name != "Content-Encoding") {
            EXPECT_EQ(header(x.head, "Content-Encoding"), nullptr);
        }
    }
    Exchange no_type(m);
    no_type.head.headers.clear();
    m.on_response(no_type.ctx, no_type.head, &no_type.body);
    EXPECT_EQ(header(no_type.head, "Content-Encoding"), nullptr);
    for (int status : {204, 304, 206}) {
        Exchange x(m);
        x.head.status = status;
        m.on_response(x.ctx, x.head, &x.body);
        EXPECT_EQ(header(x.head, "Content-Encoding"), nullptr) << status;
    }
}

TEST(CompressMiddleware, TypesMatchByPattern) {
    auto m = make();
    for (const char* yes : {"text/html", "TEXT/CSS; charset=utf-8", "application/json", "application/ld+json",
                            "image/svg+xml", "application/javascript", "application/wasm", "text/event-stream"})
        EXPECT_TRUE(m.compressible_type(yes)) << yes;
    for (const char* no : {"image/png", "video/mp4", "application/zip", "", "application/jsonx", "font/woff2"})
        EXPECT_FALSE(m.compressible_type(no)) << no;
    CompressOptions o;
    o.types = {"application/x-custom"};
    auto only = make(o);
    EXPECT_TRUE(only.compressible_type("application/x-custom; v=1"));
    EXPECT_FALSE(only.compressible_type("text/html"));
}

TEST(CompressMiddleware, VaryIsMergedNotDuplicated) {
    auto vary_after = [](std::vector<HttpHeader> headers) {
        ResponseHead head{200, "", std::move(headers)};
        CompressMiddleware::add_vary_accept_encoding(head);
        std::vector<std::string> values;
        for (const auto& h : head.headers)
            if (h.name == "Vary" || h.name == "vary") values.push_back(h.value);
        return values;
    };
    using V = std::vector<std::string>;
    EXPECT_EQ(vary_after({}), V{"Accept-Encoding"});
    EXPECT_EQ(vary_after({{"Vary", "Cookie"}}), V{"Cookie, Accept-Encoding"});
    EXPECT_EQ(vary_after({{"Vary", "Cookie, accept-encoding"}}), V{"Cookie, accept-encoding"});
    EXPECT_EQ(vary_after({{"Vary", "*"}}), V{"*"});
    EXPECT_EQ(vary_after({{"vary", "Cookie"}, {"Vary", "Accept-Encoding"}}), (V{"Cookie", "Accept-Encoding"}));
    EXPECT_EQ(vary_after({{"Vary", ""}}), V{"Accept-Encoding"});
}

TEST(CompressMiddleware, StrongETagTurnsWeakWhenCompressed) {
    auto m = make();
    Exchange x(m);
    x.head.headers.push_back({"ETag", "\"abc\""});
    m.on_response(x.ctx, x.head, &x.body);
    EXPECT_EQ(*header(x.head, "ETag"), "W/\"abc\"");
    Exchange weak(m);
    weak.head.headers.push_back({"ETag", "W/\"abc\""});
    m.on_response(weak.ctx, weak.head, &weak.body);
    EXPECT_EQ(*header(weak.head, "ETag"), "W/\"abc\"");
    Exchange identity(m, "identity");
    identity.head.headers.push_back({"ETag", "\"abc\""});
    m.on_response(identity.ctx, identity.head, &identity.body);
    EXPECT_EQ(*header(identity.head, "ETag"), "\"abc\"");
}

TEST(CompressMiddleware, IncompressibleBodyKeepsItsBytesAndHeaders) {
    CompressOptions o;
    o.types = {"*"};
    auto m = make(o);
    Exchange x(m, "gzip");
    x.head.headers = {{"Content-Type", "application/octet-stream"}, {"ETag", "\"r\""}};
    std::mt19937 random(7);
    std::string noise(3000, '\0');
    for (auto& c : noise) c = static_cast<char>(random());
    x.body = noise;
    m.on_response(x.ctx, x.head, &x.body);
    EXPECT_EQ(x.body, noise);
    EXPECT_EQ(header(x.head, "Content-Encoding"), nullptr);
    EXPECT_EQ(*header(x.head, "ETag"), "\"r\"");
}

TEST(CompressMiddleware, HeadGetsTheHeadersGetWould) {
    auto m = make();
    Exchange get(m, "gzip", "GET");
    Exchange head(m, "gzip", "HEAD");
    m.on_response(get.ctx, get.head, &get.body);
    m.on_response(head.ctx, head.head, &head.body);
    EXPECT_EQ(get.head.headers.size(), head.head.headers.size());
    EXPECT_EQ(get.body.size(), head.body.size());  // the Content-Length the session renders
}

TEST(CompressMiddleware, StreamIsCompressedChunkByChunkThroughThePipeline) {
    std::vector<std::unique_ptr<const Middleware>> chain;
    chain.push_back(std::make_unique<CompressMiddleware>(CompressOptions{}));
    Pipeline p(std::move(chain));
    HttpRequest req;
    req.method = "GET";
    req.headers.push_back({"Accept-Encoding", "gzip"});
    RequestContext ctx(req);
    std::size_t entered = p.run_request(ctx);
    ResponseHead head{200, "", {{"Content-Type", "text/event-stream"}, {"Content-Length", "100000"}}};
    p.run_response(ctx, head, nullptr, entered);
    EXPECT_EQ(header(head, "Content-Length"), nullptr);  // compressed: its length is unknown
    EXPECT_EQ(*header(head, "Content-Encoding"), "gzip");
    EXPECT_TRUE(ctx.stream_rewritten());
    std::string wire, plain;
    for (int i = 0; i < 5; ++i) {
        std::string chunk = "data: " + std::to_string(i) + "\n\n";
        plain += chunk;
        p.run_chunk(ctx, chunk, entered);
        EXPECT_FALSE(chunk.empty());
        wire += chunk;
    }
    std::string tail;
    p.run_stream_end(ctx, tail, entered);
    wire += tail;
    EXPECT_EQ(gunzip(wire), plain);
}

TEST(CompressMiddleware, StreamWithoutAcceptEncodingPassesThrough) {
    auto m = make();
    Exchange x(m, "");
    x.head.headers = {{"Content-Type", "text/plain"}};
    m.on_response(x.ctx, x.head, nullptr);
    EXPECT_EQ(*header(x.head, "Vary"), "Accept-Encoding");
    EXPECT_FALSE(x.ctx.stream_rewritten());
    std::string chunk = "hello";
    m.on_chunk(x.ctx, chunk);
    EXPECT_EQ(chunk, "hello");
    std::string tail;
    m.on_stream_end(x.ctx, tail);
    EXPECT_TRUE(tail.empty());
}

Config config_with(std::vector<std::pair<std::string, std::string>> options) {
    Config c;
    c.middleware = {{"timing", {}}, {"compress", std::move(options)}};
    return c;
}

TEST(CompressRegistry, OptionsAreValidatedAtStartUp) {
    EXPECT_NO_THROW(build_pipeline(chain_settings(config_with({}))));
    EXPECT_NO_THROW(build_pipeline(chain_settings(config_with({{"min_length", "0"}, {"types", "text/*,*+json"}, {"prefer", "gzip, br"},
                                                {"gzip_level", "12"}, {"br_level", "0"}, {"zstd_level", "19"},
                                                {"breach_mitigation", "true"}}))));
    for (auto bad : std::vector<std::pair<std::string, std::string>>{{"nonesuch", "1"},
                                                                      {"min_length", "-1"},
                                                                      {"min_length", "ten"},
                                                                      {"gzip_level", "0"},
                                                                      {"gzip_level", "13"},
                                                                      {"br_level", "12"},
                                                                      {"zstd_level", "20"},
                                                                      {"prefer", "gzip,deflate"},
                                                                      {"prefer", "gzip,gzip"},
                                                                      {"prefer", ""},
                                                                      {"types", "text/**"},
                                                                      {"breach_mitigation", "maybe"}})
        EXPECT_THROW(build_pipeline(chain_settings(config_with({bad}))), ConfigError) << bad.first << "=" << bad.second;
}

TEST(CompressFactory, ReadsItsOptions) {
    CompressOptions o = compress_options(MiddlewareSpec{"compress", {{"min_length", "10"}, {"prefer", "gzip, br"},
                                                                      {"gzip_level", "9"}, {"types", "text/*"}}});
    EXPECT_EQ(o.min_length, 10u);
    EXPECT_EQ(o.prefer, (std::vector<Coding>{Coding::gzip, Coding::br}));
    EXPECT_EQ(o.levels.gzip, 9);
    EXPECT_EQ(o.types, (std::vector<std::string>{"text/*"}));
    EXPECT_EQ(compress_options(MiddlewareSpec{"compress", {}}).prefer, CompressOptions{}.prefer);
    EXPECT_EQ(make_compress_middleware(MiddlewareSpec{"compress", {}})->name(), "compress");
}

}  // namespace
}  // namespace gantry
