#include "static/static_index.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace gantry {
namespace {

namespace fs = std::filesystem;

class StaticIndexTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/gantry-static-index-XXXXXX";
        base_ = ::mkdtemp(tmpl);
        root_ = base_ / "root";
        fs::create_directories(root_ / "css");
    }
    void TearDown() override { fs::remove_all(base_); }
    void write(const fs::path& p, const std::string& text) {
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
    }
    StaticMountSpec spec() { return StaticMountSpec{"/static", {StaticSource{root_.string(), ""}}}; }

    fs::path base_, root_;
};

TEST_F(StaticIndexTest, IndexesFilesWithTypeEtagAndVariants) {
    write(root_ / "css/site.css", std::string(1000, 'a'));
    write(root_ / "css/site.css.gz", "gz");
    write(root_ / "css/site.css.br", "br");
    write(root_ / "img.png", "png");
    StaticIndex index(spec(), {}, false);
    EXPECT_EQ(index.url_prefix(), "/static/");
    const auto& snap = index.fixed_snapshot();
    const StaticFile* css = snap.find("css/site.css");
    ASSERT_NE(css, nullptr);
    EXPECT_EQ(css->content_type, "text/css; charset=utf-8");
    EXPECT_FALSE(css->immutable);
    ASSERT_EQ(css->variants.size(), 3u);  // identity, br, gzip (in that order)
    EXPECT_EQ(css->variants[0].encoding, "");
    EXPECT_EQ(css->variants[0].size, 1000u);
    EXPECT_EQ(css->variants[1].encoding, "br");
    EXPECT_EQ(css->variants[2].encoding, "gzip");
    EXPECT_NE(css->variants[0].etag, css->variants[2].etag);  // each encoding its own ETag
    EXPECT_EQ(css->variants[0].etag.front(), '"');
    ASSERT_TRUE(css->variants[0].bytes);
    EXPECT_EQ(*css->variants[0].bytes, std::string(1000, 'a'));
    const StaticFile* png = snap.find("img.png");
    ASSERT_NE(png, nullptr);
    EXPECT_FALSE(png->has_encodings());
    EXPECT_NE(snap.find("css/site.css.gz"), nullptr);  // a variant is also a file of its own
    EXPECT_EQ(snap.find("css"), nullptr);              // no directories
}

TEST_F(StaticIndexTest, HashedNamesAreImmutable) {
    write(root_ / "app.3f2a1b4c5d6e.js", "x");
    write(root_ / "app.js", "x");
    StaticIndex index(spec(), {}, false);
    EXPECT_TRUE(index.fixed_snapshot().find("app.3f2a1b4c5d6e.js")->immutable);
    EXPECT_FALSE(index.fixed_snapshot().find("app.js")->immutable);
    EXPECT_TRUE(is_hashed_name("css/base.0123456789ab.css"));
    EXPECT_FALSE(is_hashed_name("base.0123456789AB.css"));  // Django writes lower-case hex
    EXPECT_FALSE(is_hashed_name("base.0123456789a.css"));   // 11 hex
    EXPECT_FALSE(is_hashed_name("0123456789ab.css"));       // no name before the hash
    EXPECT_FALSE(is_hashed_name("base.css"));
}

TEST_F(StaticIndexTest, DotfilesAndOutsideSymlinksAreNotIndexed) {
    write(root_ / ".env", "SECRET=1");
    write(root_ / ".git/config", "x");
    write(root_ / "css/.hidden.css", "x");
    write(base_ / "outside/secret.txt", "secret");
    write(root_ / "real.txt", "real");
    fs::create_symlink(base_ / "outside/secret.txt", root_ / "leak.txt");
    fs::create_directory_symlink(base_ / "outside", root_ / "leakdir");
    fs::create_symlink(root_ / "real.txt", root_ / "alias.txt");  // stays inside: served
    fs::create_directory_symlink(root_, root_ / "css/loop");       // a loop: walked once
    fs::create_symlink(root_ / "nonexistent", root_ / "dangling.txt");
    StaticIndex index(spec(), {}, false);
    const auto& snap = index.fixed_snapshot();
    EXPECT_EQ(snap.find(".env"), nullptr);
    EXPECT_EQ(snap.find(".git/config"), nullptr);
    EXPECT_EQ(snap.find("css/.hidden.css"), nullptr);
    EXPECT_EQ(snap.find("leak.txt"), nullptr);
    EXPECT_EQ(snap.find("leakdir/secret.txt"), nullptr);
    EXPECT_EQ(snap.find("dangling.txt"), nullptr);
    ASSERT_NE(snap.find("alias.txt"), nullptr);
    EXPECT_EQ(snap.find("alias.txt")->variants[0].path, fs::canonical(root_ / "real.txt").string());
    EXPECT_NE(snap.find("real.txt"), nullptr);
}

TEST_F(StaticIndexTest, FirstSourceWinsAndSubPrefixes) {
    write(base_ / "one/app.css", "one");
    write(base_ / "two/app.css", "two");
    write(base_ / "two/only2.css", "2");
    write(base_ / "vendor/lib.js", "lib");
    StaticMountSpec s{"/static/", {{(base_ / "one").string(), ""}, {(base_ / "two").string(), ""},
                                   {(base_ / "vendor").string(), "vendor/"}}};
    StaticIndex index(s, {}, false);
    const auto& snap = index.fixed_snapshot();
    EXPECT_EQ(*snap.find("app.css")->variants[0].bytes, "one");
    EXPECT_NE(snap.find("only2.css"), nullptr);
    EXPECT_NE(snap.find("vendor/lib.js"), nullptr);
    EXPECT_EQ(snap.find("lib.js"), nullptr);
}

TEST_F(StaticIndexTest, MemoryLimits) {
    write(root_ / "small.txt", std::string(100, 's'));
    write(root_ / "big.txt", std::string(5000, 'b'));
    StaticMemoryLimits limits;
    limits.file_max = 1000;
    StaticIndex index(spec(), limits, false);
    EXPECT_TRUE(index.fixed_snapshot().find("small.txt")->variants[0].bytes);
    EXPECT_FALSE(index.fixed_snapshot().find("big.txt")->variants[0].bytes);  // sendfile instead
    limits.budget = 50;
    StaticIndex tight(spec(), limits, false);
    EXPECT_FALSE(tight.fixed_snapshot().find("small.txt")->variants[0].bytes);
    EXPECT_EQ(tight.fixed_snapshot().memory_bytes(), 0u);
}

TEST_F(StaticIndexTest, RebuildSeesChangesAndKeepsOldSnapshotsAlive) {
    write(root_ / "a.txt", "a");
    StaticIndex index(spec(), {}, true);
    auto before = index.snapshot();
    write(root_ / "b.txt", "b");
    fs::remove(root_ / "a.txt");
    index.rebuild();
    EXPECT_NE(before->find("a.txt"), nullptr);  // requests in flight keep theirs
    EXPECT_EQ(index.snapshot()->find("a.txt"), nullptr);
    EXPECT_NE(index.snapshot()->find("b.txt"), nullptr);
}

TEST_F(StaticIndexTest, MissingRootIsEmptyNotAnError) {
    StaticIndex index(StaticMountSpec{"/s/", {{(base_ / "nope").string(), ""}}}, {}, false);
    EXPECT_EQ(index.fixed_snapshot().size(), 0u);
}

TEST(StaticPrefix, Normalized) {
    EXPECT_EQ(normalize_url_prefix("/static"), "/static/");
    EXPECT_EQ(normalize_url_prefix("static/"), "/static/");
    EXPECT_EQ(normalize_url_prefix("/"), "/");
    EXPECT_EQ(normalize_url_prefix(""), "/");
}

}  // namespace
}  // namespace gantry
