#include "static/content_types.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

namespace gantry {
namespace {

TEST(ContentTypes, ModernTypesWithCharsetOnText) {
    EXPECT_EQ(content_type_for("app.js").value, "text/javascript; charset=utf-8");
    EXPECT_EQ(content_type_for("mod.mjs").value, "text/javascript; charset=utf-8");
    EXPECT_EQ(content_type_for("a/b/site.css").value, "text/css; charset=utf-8");
    EXPECT_EQ(content_type_for("x.json").value, "application/json; charset=utf-8");
    EXPECT_EQ(content_type_for("app.js.map").value, "application/json; charset=utf-8");
    EXPECT_EQ(content_type_for("logo.svg").value, "image/svg+xml; charset=utf-8");
    EXPECT_EQ(content_type_for("m.wasm").value, "application/wasm");
    EXPECT_EQ(content_type_for("p.webp").value, "image/webp");
    EXPECT_EQ(content_type_for("p.avif").value, "image/avif");
    EXPECT_EQ(content_type_for("f.woff2").value, "font/woff2");
    EXPECT_EQ(content_type_for("APP.JS").value, "text/javascript; charset=utf-8");
    EXPECT_EQ(content_type_for("site.webmanifest").value, "application/manifest+json; charset=utf-8");
}

TEST(ContentTypes, UnknownIsOctetStream) {
    EXPECT_EQ(content_type_for("README").value, "application/octet-stream");
    EXPECT_EQ(content_type_for("x.unknownext").value, "application/octet-stream");
    EXPECT_EQ(content_type_for("trailing.").value, "application/octet-stream");
    EXPECT_FALSE(content_type_for("x.unknownext").compressible);
}

TEST(ContentTypes, Compressibility) {
    EXPECT_TRUE(content_type_for("a.css").compressible);
    EXPECT_TRUE(content_type_for("a.js").compressible);
    EXPECT_TRUE(content_type_for("a.svg").compressible);
    EXPECT_TRUE(content_type_for("a.wasm").compressible);
    EXPECT_FALSE(content_type_for("a.png").compressible);
    EXPECT_FALSE(content_type_for("a.woff2").compressible);
    EXPECT_FALSE(content_type_for("a.gz").compressible);
    EXPECT_FALSE(content_type_for("a.jpg").compressible);
}

}  // namespace
}  // namespace gantry
