#pragma once
// `gantry compress-static DIR`: writes .gz (libdeflate, level 12), .br (brotli, quality 11) and
// .zst (zstd, level 19) beside each compressible file, as whitenoise's CompressedManifest storage
// and nginx's gzip_static expect. Skips incompressible types and variants that save under 5%.
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

namespace gantry {

std::string gzip_bytes(std::string_view data);
std::string brotli_bytes(std::string_view data);
std::string zstd_bytes(std::string_view data);

struct PrecompressReport {
    std::uint64_t files = 0;               // originals considered
    std::uint64_t written = 0;             // variants written
    std::uint64_t skipped_type = 0;        // incompressible type (images, fonts, archives...)
    std::uint64_t skipped_small_gain = 0;  // a variant that would save < 5%: not written
    std::uint64_t errors = 0;
};

// Walks `dir` (dotfiles skipped, existing .gz/.br/.zst not recompressed); logs one line per
// file to `log`. Throws std::runtime_error if `dir` is not a readable directory.
PrecompressReport precompress_tree(const std::string& dir, std::ostream& log);

}  // namespace gantry
