#include "middleware/registry.hpp"  // first: the header stands alone

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "middleware/codec.hpp"
#include "server/config.hpp"  // the chain as the command line sets it

namespace gantry {
namespace {

// The ConfigError message building `settings` gives, or a failure if it builds.
std::string error_of(const ChainSettings& settings, const PipelineInputs& inputs = {}) {
    try {
        build_pipeline(settings, inputs);
    } catch (const ConfigError& e) {
        return e.what();
    }
    ADD_FAILURE() << "no ConfigError";
    return {};
}

ChainSettings chain_of(std::vector<MiddlewareSpec> chain) {
    ChainSettings s;
    s.chain = std::move(chain);
    s.cache_size = 1 << 20;
    return s;
}

TEST(Registry, BuildsTheConfiguredChainAndRefusesBadOnes) {
    Config config;
    EXPECT_EQ(build_pipeline(chain_settings(config))->names(), (std::vector<std::string>{"timing", "static"}));
    config.middleware = {{"nope", {}}};
    EXPECT_THROW(build_pipeline(chain_settings(config)), ConfigError);
    config.middleware = {{"timing", {}}, {"timing", {}}};
    EXPECT_THROW(build_pipeline(chain_settings(config)), ConfigError);
    config.middleware = {{"timing", {{"colour", "blue"}}}};
    EXPECT_THROW(build_pipeline(chain_settings(config)), ConfigError);
    config.middleware = {{"timing", {{"server_timing", "maybe"}}}};
    EXPECT_THROW(build_pipeline(chain_settings(config)), ConfigError);
    config.middleware = {{"timing", {{"server_timing", "true"}, {"allow_ips", "10.0.0.1, 10.0.0.2"}}}};
    EXPECT_EQ(build_pipeline(chain_settings(config))->size(), 1u);
    config.middleware = {};
    EXPECT_TRUE(build_pipeline(chain_settings(config))->empty());
}

TEST(Registry, CacheOptionsAndItsStore) {
    Config config;
    config.middleware = {{"timing", {}}, {"cache", {{"rules", "/news/=60, /api/=5"}, {"max_entry_bytes", "1000"}}}};
    EXPECT_EQ(build_pipeline(chain_settings(config))->names(), (std::vector<std::string>{"timing", "cache"}));
    config.middleware = {{"cache", {{"rules", "news=60"}}}};
    EXPECT_THROW(build_pipeline(chain_settings(config)), ConfigError);
    config.middleware = {{"cache", {{"rules", "/news/=soon"}}}};
    EXPECT_THROW(build_pipeline(chain_settings(config)), ConfigError);
    config.middleware = {{"cache", {{"colour", "blue"}}}};
    EXPECT_THROW(build_pipeline(chain_settings(config)), ConfigError);
    config.middleware = {{"cache", {}}};
    config.cache_size = 0;
    EXPECT_THROW(build_pipeline(chain_settings(config)), ConfigError);  // no store to cache in
}

TEST(Registry, ChainErrorMessages) {
    EXPECT_EQ(error_of(chain_of({{"nope", {}}})), "unknown middleware 'nope' (known: cache, compress, static, timing)");
    EXPECT_EQ(error_of(chain_of({{"timing", {}}, {"timing", {}}})), "middleware 'timing' is listed twice");
    EXPECT_EQ(error_of(chain_of({{"compress", {}}, {"static", {}}})),
              "middleware 'compress' must come after 'static' in the chain");
    EXPECT_EQ(error_of(chain_of({{"cache", {}}, {"static", {}}})),
              "middleware 'cache' must come after 'static' in the chain");
    ChainSettings mounted = chain_of({{"timing", {}}});
    mounted.static_mounts = {{"/s/", "/tmp"}};
    EXPECT_EQ(error_of(mounted),
              "--static needs the 'static' middleware in the chain (e.g. --middleware timing,static)");
}

TEST(Registry, TimingErrorMessages) {
    EXPECT_EQ(error_of(chain_of({{"timing", {{"colour", "blue"}}}})),
              "middleware 'timing': unknown option 'colour' (known: server_timing, allow_ips)");
    EXPECT_EQ(error_of(chain_of({{"timing", {{"server_timing", "maybe"}}}})),
              "middleware 'timing': option 'server_timing' must be true or false, got 'maybe'");
}

TEST(Registry, CompressErrorMessages) {
    auto compress = [](std::string key, std::string value) {
        return error_of(chain_of({{"compress", {{std::move(key), std::move(value)}}}}));
    };
    EXPECT_EQ(compress("min_length", "-1"),
              "middleware 'compress': option 'min_length' must be an integer from 0 to 1099511627776, got '-1'");
    EXPECT_EQ(compress("types", "text/**"),
              "middleware 'compress': option 'types': 'text/**' is not a media type pattern (at most one '*', e.g. "
              "text/*, *+json)");
    EXPECT_EQ(compress("types", " , "), "middleware 'compress': option 'types' is empty");
    EXPECT_EQ(compress("prefer", "lzma"), "middleware 'compress': option 'prefer': unknown coding 'lzma' (known: br, zstd, gzip)");
    EXPECT_EQ(compress("prefer", "gzip, gzip"), "middleware 'compress': option 'prefer' lists 'gzip' twice");
    EXPECT_EQ(compress("prefer", ""), "middleware 'compress': option 'prefer' is empty");
    EXPECT_EQ(compress("gzip_level", "99"), "middleware 'compress': option 'gzip_level' must be an integer from " +
                                                std::to_string(kMinLevel[1]) + " to " + std::to_string(kMaxLevel[1]) +
                                                ", got '99'");
    EXPECT_EQ(compress("br_level", "x"), "middleware 'compress': option 'br_level' must be an integer from " +
                                             std::to_string(kMinLevel[2]) + " to " + std::to_string(kMaxLevel[2]) +
                                             ", got 'x'");
    EXPECT_EQ(compress("zstd_level", ""), "middleware 'compress': option 'zstd_level' must be an integer from " +
                                              std::to_string(kMinLevel[3]) + " to " + std::to_string(kMaxLevel[3]) +
                                              ", got ''");
    EXPECT_EQ(compress("breach_mitigation", "sometimes"),
              "middleware 'compress': option 'breach_mitigation' must be true or false, got 'sometimes'");
    EXPECT_EQ(compress("level", "9"),
              "middleware 'compress': unknown option 'level' (known: min_length, types, prefer, gzip_level, br_level, "
              "zstd_level, breach_mitigation)");
}

TEST(Registry, CacheErrorMessages) {
    auto cache = [](std::string key, std::string value) {
        return error_of(chain_of({{"cache", {{std::move(key), std::move(value)}}}}));
    };
    EXPECT_EQ(cache("rules", "news=60"), "middleware 'cache': option 'rules': 'news=60' is not /url-prefix=seconds");
    EXPECT_EQ(cache("rules", "/news/=soon"), "middleware 'cache': option 'rules' must be a whole number >= 0, got 'soon'");
    EXPECT_EQ(cache("max_entry_bytes", "-3"),
              "middleware 'cache': option 'max_entry_bytes' must be a whole number >= 0, got '-3'");
    EXPECT_EQ(cache("lock_timeout_ms", "soon"),
              "middleware 'cache': option 'lock_timeout_ms' must be a whole number >= 0, got 'soon'");
    EXPECT_EQ(cache("colour", "blue"),
              "middleware 'cache': unknown option 'colour' (known: rules, max_entry_bytes, lock_timeout_ms)");
    ChainSettings storeless = chain_of({{"cache", {}}});
    storeless.cache_size = 0;
    EXPECT_EQ(error_of(storeless), "middleware 'cache' needs a store: --cache-size must be more than 0");
    // The cache reads the options of the compress entry below it (the codings it keys by).
    EXPECT_EQ(error_of(chain_of({{"cache", {}}, {"compress", {{"prefer", "lzma"}}}})),
              "middleware 'compress': option 'prefer': unknown coding 'lzma' (known: br, zstd, gzip)");
}

TEST(Registry, StaticErrorMessages) {
    auto statics = [](std::string key, std::string value) {
        return error_of(chain_of({{"static", {{std::move(key), std::move(value)}}}}));
    };
    EXPECT_EQ(statics("max_age", "long"), "middleware 'static': option 'max_age' must be a whole number >= 0, got 'long'");
    EXPECT_EQ(statics("cors", "perhaps"), "middleware 'static': option 'cors' must be true or false, got 'perhaps'");
    EXPECT_EQ(statics("memory_budget", "-1"),
              "middleware 'static': option 'memory_budget' must be a whole number >= 0, got '-1'");
    EXPECT_EQ(statics("index", "yes"),
              "middleware 'static': unknown option 'index' (known: max_age, cors, memory_file_max, memory_budget, "
              "django, watch)");
    ChainSettings missing = chain_of({{"static", {}}});
    missing.static_mounts = {{"/s/", "/nonexistent-gantry-dir"}};
    EXPECT_EQ(error_of(missing), "--static /s/=/nonexistent-gantry-dir: /nonexistent-gantry-dir is not a directory");
    auto dir = std::filesystem::temp_directory_path().string();
    ChainSettings twice = chain_of({{"static", {}}});
    twice.static_mounts = {{"/s", dir}, {"/s/", dir}};
    EXPECT_EQ(error_of(twice), "--static: prefix /s/ given twice");
}

TEST(Registry, TimingIsBuiltLastAndNamesTheFinalChain) {
    // Its options are checked after the others'; it names only the middlewares left in the chain.
    EXPECT_EQ(error_of(chain_of({{"timing", {{"colour", "blue"}}}, {"cache", {{"colour", "blue"}}}})),
              "middleware 'cache': unknown option 'colour' (known: rules, max_entry_bytes, lock_timeout_ms)");
    ChainSettings settings = chain_of({{"timing", {{"server_timing", "on"}, {"allow_ips", "127.0.0.1"}}}, {"static", {}}});
    DjangoStaticSettings none;
    auto pipeline = build_pipeline(settings, PipelineInputs{true, &none});
    ASSERT_EQ(pipeline->names(), (std::vector<std::string>{"timing"}));  // nothing to serve: static left out
    HttpRequest request;
    request.method = "GET";
    request.target = "/";
    request.remote_addr = "127.0.0.1";
    RequestContext ctx(request);
    std::size_t entered = pipeline->run_request(ctx);
    ResponseHead head;
    std::string body;
    pipeline->run_response(ctx, head, &body, entered);
    ASSERT_EQ(head.headers.size(), 1u);
    EXPECT_EQ(head.headers[0].value.rfind("mw-timing;dur=", 0), 0u) << head.headers[0].value;
    EXPECT_EQ(head.headers[0].value.find("mw-static"), std::string::npos) << head.headers[0].value;
    // The master's check reads no file: the static entry stays, with nothing mounted.
    EXPECT_EQ(build_pipeline(settings)->names(), (std::vector<std::string>{"timing", "static"}));
}

}  // namespace
}  // namespace gantry
