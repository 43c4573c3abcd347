#pragma once
// Content codings for the compression middleware: gzip, brotli and zstd, each in two modes.
//
// - Whole body (`compress_whole`): the common case. gzip is libdeflate (several times faster than
//   zlib at an equal or smaller size, measured in bench/micro/compress_bench.cpp), brotli the
//   one-shot encoder, zstd a per-thread ZSTD_CCtx. Output goes into a per-thread buffer that is
//   swapped with the body, so a response costs no allocation once the thread is warm.
// - Stream (`StreamCompressor`): one per streamed response, flushed after every chunk so that
//   what the app yields reaches the client at once (server-sent events, streamed pages). gzip is
//   zlib (libdeflate cannot stream) with Z_SYNC_FLUSH, brotli BROTLI_OPERATION_FLUSH, zstd
//   ZSTD_e_flush. zlib and zstd states come from a per-thread free list and are reset, never
//   created per response; brotli has no reset, so its state is made per stream.
//
// Everything here runs on the I/O thread that owns the response; the per-thread pools are
// thread_local, so no locks.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace gantry {

enum class Coding : std::uint8_t { identity, gzip, br, zstd };

// "gzip", "br", "zstd", "" for identity: the Content-Encoding token.
std::string_view coding_token(Coding c);
// The inverse of coding_token; nullopt for anything else.
std::optional<Coding> coding_from_token(std::string_view token);

// The defaults are the fastest levels whose output stays within ~10% of zlib 6 (Django's
// GZipMiddleware) on real pages: measured in bench/micro/compress_bench.cpp (BM_gzip_levels),
// figures in docs/benchmarks.md.
struct CodecLevels {
    int gzip = 5;  // 1..12 (libdeflate): 1.5x faster than its 6 for at most 2% more bytes; streams use zlib (<= 9)
    int br = 3;    // 0..11: at most 9% larger than zlib 6, half brotli 5's CPU
    int zstd = 3;  // 1..19: the library's default; 11-12% over zlib 6 at a third of gzip's CPU
    // BREACH mitigation (as Django 4.2+): a random-length random file name in the gzip header and
    // a random-length skippable frame before zstd output, so the compressed length no longer
    // tracks the secret alone. brotli has no ignorable field: not covered.
    bool breach_mitigation = false;
};

inline constexpr int kMinLevel[] = {0, 1, 0, 1};   // by Coding
inline constexpr int kMaxLevel[] = {0, 12, 11, 19};

// Compresses `body` with `coding` and, if the result is shorter, swaps it into `body` and returns
// true; otherwise leaves `body` as it was and returns false. Never throws on data; throws
// std::bad_alloc only if memory runs out.
bool compress_whole(Coding coding, const CodecLevels& levels, std::string& body);

// A streamed response's compressor. `write` appends to `out` the compressed form of `in`, flushed
// so the client can decode everything written so far; `finish` appends the end of the stream.
class StreamCompressor {
public:
    virtual ~StreamCompressor() = default;
    virtual void write(std::string_view in, std::string& out) = 0;
    virtual void finish(std::string& out) = 0;
};

// A compressor for one stream (its state taken from this thread's pool, returned when destroyed:
// destroy it on the thread that made it).
std::unique_ptr<StreamCompressor> make_stream_compressor(Coding coding, const CodecLevels& levels);

}  // namespace gantry
