#include "static/precompress.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <brotli/encode.h>
#include <libdeflate.h>
#include <zstd.h>

#include "static/content_types.hpp"

namespace gantry {

namespace fs = std::filesystem;

std::string gzip_bytes(std::string_view data) {
    libdeflate_compressor* c = libdeflate_alloc_compressor(12);
    if (!c) throw std::runtime_error("libdeflate: out of memory");
    std::string out(libdeflate_gzip_compress_bound(c, data.size()), '\0');
    std::size_t n = libdeflate_gzip_compress(c, data.data(), data.size(), out.data(), out.size());
    libdeflate_free_compressor(c);
    if (n == 0) throw std::runtime_error("libdeflate: gzip failed");
    out.resize(n);
    return out;
}

std::string brotli_bytes(std::string_view data) {
    std::size_t n = BrotliEncoderMaxCompressedSize(data.size());
    if (n == 0) n = data.size() + 1024;
    std::string out(n, '\0');
    if (!BrotliEncoderCompress(BROTLI_MAX_QUALITY, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, data.size(),
                               reinterpret_cast<const std::uint8_t*>(data.data()), &n,
                               reinterpret_cast<std::uint8_t*>(out.data())))
        throw std::runtime_error("brotli: compression failed");
    out.resize(n);
    return out;
}

std::string zstd_bytes(std::string_view data) {
    std::string out(ZSTD_compressBound(data.size()), '\0');
    std::size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 19);
    if (ZSTD_isError(n)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(n));
    out.resize(n);
    return out;
}

namespace {

bool is_variant_name(const std::string& name) {
    for (const char* s : {".gz", ".br", ".zst"})
        if (name.size() > std::strlen(s) && name.compare(name.size() - std::strlen(s), std::string::npos, s) == 0)
            return true;
    return false;
}

// Written beside the original through a dotfile (never served) renamed into place: a reader
// sees the old variant or the new one, never half of one.
void write_atomically(const fs::path& target, const std::string& bytes) {
    fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp");
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out) throw std::runtime_error("cannot write " + tmp.string());
    }
    fs::rename(tmp, target);
}

}  // namespace

PrecompressReport precompress_tree(const std::string& dir, std::ostream& log) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw std::runtime_error(dir + " is not a directory");
    PrecompressReport report;
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') {
            if (it->is_directory(ec)) it.disable_recursion_pending();
            continue;
        }
        if (it->is_regular_file(ec) && !is_variant_name(name)) files.push_back(it->path());
    }
    if (ec) throw std::runtime_error("cannot walk " + dir + ": " + ec.message());

    struct Codec {
        const char* suffix;
        std::string (*compress)(std::string_view);
    };
    static const Codec codecs[] = {{".gz", gzip_bytes}, {".br", brotli_bytes}, {".zst", zstd_bytes}};
    for (const auto& path : files) {
        ++report.files;
        if (!content_type_for(path.filename().string()).compressible) {
            ++report.skipped_type;
            continue;
        }
        std::ifstream in(path, std::ios::binary);
        std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (!in.eof() && in.fail()) {
            log << "error: cannot read " << path.string() << "\n";
            ++report.errors;
            continue;
        }
        for (const auto& codec : codecs) {
            fs::path target = path;
            target += codec.suffix;
            try {
                std::string packed = codec.compress(data);
                // Under 5% saved: the CPU to decode is not worth it (whitenoise's rule).
                if (data.empty() || packed.size() * 100 > data.size() * 95) {
                    ++report.skipped_small_gain;
                    fs::remove(target, ec);  // a stale variant of an older version must not stay
                    continue;
                }
                write_atomically(target, packed);
                ++report.written;
                log << target.string() << ": " << data.size() << " -> " << packed.size() << " bytes\n";
            } catch (const std::exception& e) {
                log << "error: " << target.string() << ": " << e.what() << "\n";
                ++report.errors;
            }
        }
    }
    return report;
}

}  // namespace gantry
