#include "server/config_layer.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace gantry {
namespace {

std::string error_of(const ConfigLayer& layer, const std::string& source) {
    Config c;
    try {
        apply_layer(c, layer, source);
    } catch (const ConfigError& e) {
        return e.what();
    }
    ADD_FAILURE() << "no ConfigError";
    return {};
}

TEST(ConfigLayer, UnsetFieldsKeepWhatTheLayersBelowGave) {
    Config c;
    c.workers = 3;
    c.proc_name = "web";
    ConfigLayer layer;
    layer.workers = 5;
    apply_layer(c, layer, "");
    EXPECT_EQ(c.workers, 5);
    EXPECT_EQ(c.proc_name, "web");
    apply_layer(c, ConfigLayer{}, "");
    EXPECT_EQ(c.workers, 5);
}

TEST(ConfigLayer, ErrorsNameTheFlagAndTheSource) {
    ConfigLayer workers;
    workers.workers = 0;
    EXPECT_EQ(error_of(workers, " (in gantry.toml)"), "--workers (in gantry.toml) must be at least 1, got 0");
    ConfigLayer size;
    size.cache_size = "lots";
    EXPECT_EQ(error_of(size, ""), "--cache-size must be a size such as 256MB, 1GiB or a number of bytes, got 'lots'");
    ConfigLayer mounts;
    mounts.static_mounts = std::vector<std::string>{"static=/srv"};
    EXPECT_EQ(error_of(mounts, " (from the environment)"),
              "--static (from the environment) must be URL_PREFIX=DIR with the prefix starting with '/', got 'static=/srv'");
}

TEST(ConfigLayer, SharedValueForms) {
    EXPECT_EQ(parse_env_pair("--env", "A=b=c"), (std::pair<std::string, std::string>{"A", "b=c"}));
    EXPECT_THROW(parse_env_pair("--env", "=x"), ConfigError);
    auto specs = middleware_from_names({"timing", "", "static"});
    ASSERT_EQ(specs.size(), 2u);
    EXPECT_EQ(specs[1], (MiddlewareSpec{"static", {}}));
}

}  // namespace
}  // namespace gantry
