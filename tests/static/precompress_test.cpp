#include "static/precompress.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <libdeflate.h>
#include <zstd.h>

namespace gantry {
namespace {

namespace fs = std::filesystem;

std::string text(std::size_t n) {
    std::string s;
    while (s.size() < n) s += ".card-" + std::to_string(s.size() % 97) + " { color: #333; margin: 0 auto; }\n";
    return s.substr(0, n);
}

std::string random_bytes(std::size_t n) {
    std::mt19937 rng(1);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
}


TEST(Precompress, GzipAndZstdRoundTrip) {
    std::string data = text(50000);
    std::string gz = gzip_bytes(data);
    EXPECT_LT(gz.size(), data.size() / 4);
    std::string back(data.size(), '\0');
    auto* d = libdeflate_alloc_decompressor();
    std::size_t got = 0;
    EXPECT_EQ(libdeflate_gzip_decompress(d, gz.data(), gz.size(), back.data(), back.size(), &got), LIBDEFLATE_SUCCESS);
    libdeflate_free_decompressor(d);
    EXPECT_EQ(back.substr(0, got), data);

    std::string zst = zstd_bytes(data);
    std::string zback(data.size(), '\0');
    EXPECT_EQ(ZSTD_decompress(zback.data(), zback.size(), zst.data(), zst.size()), data.size());
    EXPECT_EQ(zback, data);
    EXPECT_LT(brotli_bytes(data).size(), data.size() / 4);  // decoded by the e2e tests (python brotli)
}

TEST(Precompress, TreeSkipsIncompressibleTypesSmallGainsAndDotfiles) {
    char tmpl[] = "/tmp/gantry-precompress-XXXXXX";
    fs::path root = ::mkdtemp(tmpl);
    fs::create_directories(root / "css");
    fs::create_directories(root / ".git");
    std::ofstream(root / "css/site.css", std::ios::binary) << text(20000);
    std::ofstream(root / "noise.js", std::ios::binary) << random_bytes(20000);  // compressible type, no gain
    std::ofstream(root / "photo.png", std::ios::binary) << text(20000);        // never compressed
    std::ofstream(root / ".git/config.txt", std::ios::binary) << text(20000);
    std::ofstream(root / "noise.js.gz", std::ios::binary) << "stale";
    std::ostringstream log;
    auto report = precompress_tree(root.string(), log);
    EXPECT_TRUE(fs::exists(root / "css/site.css.gz"));
    EXPECT_TRUE(fs::exists(root / "css/site.css.br"));
    EXPECT_TRUE(fs::exists(root / "css/site.css.zst"));
    EXPECT_FALSE(fs::exists(root / "noise.js.br"));
    EXPECT_FALSE(fs::exists(root / "noise.js.gz"));  // a stale variant is removed
    EXPECT_FALSE(fs::exists(root / "photo.png.gz"));
    EXPECT_FALSE(fs::exists(root / ".git/config.txt.gz"));
    EXPECT_EQ(report.files, 3u);
    EXPECT_EQ(report.written, 3u);
    EXPECT_EQ(report.skipped_type, 1u);
    EXPECT_EQ(report.skipped_small_gain, 3u);
    EXPECT_EQ(report.errors, 0u);
    // Running again rewrites, never nests (.gz.gz).
    precompress_tree(root.string(), log);
    EXPECT_FALSE(fs::exists(root / "css/site.css.gz.gz"));
    fs::remove_all(root);
    EXPECT_THROW(precompress_tree((root / "gone").string(), log), std::runtime_error);
}

}  // namespace
}  // namespace gantry
