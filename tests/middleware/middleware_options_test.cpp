#include "middleware/middleware_options.hpp"  // first: the header stands alone

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace gantry {
namespace {

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const ConfigError& e) {
        return e.what();
    }
    ADD_FAILURE() << "no ConfigError";
    return {};
}

const MiddlewareSpec kSpec{"demo", {}};

TEST(MiddlewareOptions, Booleans) {
    for (const char* yes : {"true", "1", "yes", "on"}) EXPECT_TRUE(bool_option(kSpec, "k", yes));
    for (const char* no : {"false", "0", "no", "off"}) EXPECT_FALSE(bool_option(kSpec, "k", no));
    EXPECT_EQ(error_of([] { bool_option(kSpec, "cors", "True"); }),
              "middleware 'demo': option 'cors' must be true or false, got 'True'");
}

TEST(MiddlewareOptions, IntegersInARange) {
    EXPECT_EQ(int_option(kSpec, "level", "9", 1, 9), 9);
    for (const char* bad : {"", "0", "10", "5x", " 5", "-"})
        EXPECT_EQ(error_of([&] { int_option(kSpec, "level", bad, 1, 9); }),
                  std::string("middleware 'demo': option 'level' must be an integer from 1 to 9, got '") + bad + "'");
}

TEST(MiddlewareOptions, Counts) {
    EXPECT_EQ(count_option(kSpec, "max_age", "0"), 0);
    EXPECT_EQ(count_option(kSpec, "max_age", "31536000"), 31536000);
    EXPECT_EQ(error_of([] { count_option(kSpec, "max_age", "-1"); }),
              "middleware 'demo': option 'max_age' must be a whole number >= 0, got '-1'");
    EXPECT_THROW(count_option(kSpec, "max_age", "1.5"), ConfigError);
}

TEST(MiddlewareOptions, ListsAndUnknownOptions) {
    EXPECT_EQ(list_option(" a, b,,c "), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_TRUE(list_option("").empty());
    EXPECT_EQ(error_of([] { unknown_option(kSpec, "colour", "size, shape"); }),
              "middleware 'demo': unknown option 'colour' (known: size, shape)");
    EXPECT_EQ(error_of([] { option_error(kSpec, "option 'size' is empty"); }), "middleware 'demo': option 'size' is empty");
}

}  // namespace
}  // namespace gantry
