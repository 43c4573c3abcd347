// Compression codecs on real pages of ~20-50 KB (fixtures/: the demo's /big-page/ and /catalogue/,
// Django admin's product list, a JSON API answer, Django's admin stylesheet; make_fixtures.py
// writes them): MB/s of input per codec and level, and the output size (counter "out_bytes").
// Chooses the whole-body gzip implementation (libdeflate vs zlib vs ISA-L) and the default levels;
// also what the middleware's own paths cost (gantry's compress_whole, a pooled stream vs a fresh one).
//
//   build/release/bench/compress_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//   build/release/bench/compress_bench --benchmark_filter='gzip_levels'   # the gzip level sweep, every page
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <brotli/encode.h>
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>

#include "middleware/codec.hpp"

namespace {

const char* const kFixtures[] = {"page40k.html", "catalogue.html", "admin_changelist.html", "products.json",
                                 "admin_base.css"};
constexpr int kFixtureCount = sizeof(kFixtures) / sizeof(kFixtures[0]);

const std::string& fixture(int index) {
    static const std::vector<std::string> texts = [] {
        std::vector<std::string> all;
        for (const char* name : kFixtures) {
            std::ifstream in(std::string(GANTRY_BENCH_FIXTURES "/") + name, std::ios::binary);
            if (!in) throw std::runtime_error(std::string("missing fixture ") + name);
            std::stringstream s;
            s << in.rdbuf();
            all.push_back(s.str());
        }
        return all;
    }();
    return texts.at(static_cast<std::size_t>(index));
}

const std::string& page() { return fixture(0); }

void report(benchmark::State& state, std::size_t out_bytes, const std::string& in = page()) {
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
    state.counters["out_bytes"] = static_cast<double>(out_bytes);
    state.counters["ratio"] = static_cast<double>(in.size()) / static_cast<double>(out_bytes);
}

// zlib, as Python's gzip (Django's compress_string): deflateInit2 once, deflateReset per body.
void BM_zlib_gzip(benchmark::State& state) {
    const std::string& in = page();
    z_stream s{};
    deflateInit2(&s, static_cast<int>(state.range(0)), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&s, in.size()), '\0');
    std::size_t n = 0;
    for (auto _ : state) {
        deflateReset(&s);
        s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        s.avail_in = static_cast<uInt>(in.size());
        s.next_out = reinterpret_cast<Bytef*>(out.data());
        s.avail_out = static_cast<uInt>(out.size());
        deflate(&s, Z_FINISH);
        n = out.size() - s.avail_out;
        benchmark::DoNotOptimize(out.data());
    }
    deflateEnd(&s);
    report(state, n);
}
BENCHMARK(BM_zlib_gzip)->Arg(1)->Arg(6)->Arg(9);

void BM_libdeflate_gzip(benchmark::State& state) {
    const std::string& in = page();
    auto* c = libdeflate_alloc_compressor(static_cast<int>(state.range(0)));
    std::string out(libdeflate_gzip_compress_bound(c, in.size()), '\0');
    std::size_t n = 0;
    for (auto _ : state) {
        n = libdeflate_gzip_compress(c, in.data(), in.size(), out.data(), out.size());
        benchmark::DoNotOptimize(out.data());
    }
    libdeflate_free_compressor(c);
    report(state, n);
}
BENCHMARK(BM_libdeflate_gzip)->Arg(1)->Arg(4)->Arg(5)->Arg(6)->Arg(7)->Arg(9)->Arg(12);

// ISA-L igzip: levels 0-3 only (its speed is at the low end).
void BM_isal_gzip(benchmark::State& state) {
    const std::string& in = page();
    const int level = static_cast<int>(state.range(0));
    static const std::uint32_t level_buf_size[] = {0, ISAL_DEF_LVL1_DEFAULT, ISAL_DEF_LVL2_DEFAULT, ISAL_DEF_LVL3_DEFAULT};
    std::vector<std::uint8_t> level_buf(level_buf_size[level] + 1);
    std::string out(in.size() + 1024, '\0');
    std::size_t n = 0;
    for (auto _ : state) {
        isal_zstream s;
        isal_deflate_stateless_init(&s);
        s.level = static_cast<std::uint32_t>(level);
        s.level_buf = level ? level_buf.data() : nullptr;
        s.level_buf_size = level_buf_size[level];
        s.gzip_flag = IGZIP_GZIP;
        s.end_of_stream = 1;
        s.flush = NO_FLUSH;
        s.next_in = reinterpret_cast<std::uint8_t*>(const_cast<char*>(in.data()));
        s.avail_in = static_cast<std::uint32_t>(in.size());
        s.next_out = reinterpret_cast<std::uint8_t*>(out.data());
        s.avail_out = static_cast<std::uint32_t>(out.size());
        if (isal_deflate_stateless(&s) != COMP_OK) state.SkipWithError("isal_deflate_stateless failed");
        n = s.total_out;
        benchmark::DoNotOptimize(out.data());
    }
    report(state, n);
}
BENCHMARK(BM_isal_gzip)->Arg(0)->Arg(1)->Arg(2)->Arg(3);

// The level sweep on every fixture: zlib (Django's GZipMiddleware, Python's gzip), libdeflate
// (gantry's whole-body gzip) and ISA-L igzip, brotli and zstd, at the levels that could be a
// default. Arguments: {implementation (0 zlib, 1 libdeflate, 2 ISA-L, 3 brotli, 4 zstd), level, fixture}.
std::size_t gzip_once(int implementation, int level, const std::string& in, std::string& out) {
    if (implementation == 3) {
        out.resize(BrotliEncoderMaxCompressedSize(in.size()));
        std::size_t n = out.size();
        BrotliEncoderCompress(level, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, in.size(),
                              reinterpret_cast<const std::uint8_t*>(in.data()), &n, reinterpret_cast<std::uint8_t*>(out.data()));
        return n;
    }
    if (implementation == 4) {
        thread_local ZSTD_CCtx* cctx = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
        out.resize(ZSTD_compressBound(in.size()));
        return ZSTD_compress2(cctx, out.data(), out.size(), in.data(), in.size());
    }
    if (implementation == 0) {
        thread_local z_stream s{};
        thread_local int made_level = -1;
        if (made_level != level) {
            if (made_level >= 0) deflateEnd(&s);
            s = z_stream{};
            deflateInit2(&s, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
            made_level = level;
        }
        out.resize(deflateBound(&s, in.size()));
        deflateReset(&s);
        s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        s.avail_in = static_cast<uInt>(in.size());
        s.next_out = reinterpret_cast<Bytef*>(out.data());
        s.avail_out = static_cast<uInt>(out.size());
        deflate(&s, Z_FINISH);
        return out.size() - s.avail_out;
    }
    if (implementation == 1) {
        thread_local libdeflate_compressor* by_level[13] = {};
        auto*& c = by_level[level];
        if (!c) c = libdeflate_alloc_compressor(level);
        out.resize(libdeflate_gzip_compress_bound(c, in.size()));
        return libdeflate_gzip_compress(c, in.data(), in.size(), out.data(), out.size());
    }
    static const std::uint32_t level_buf_size[] = {0, ISAL_DEF_LVL1_DEFAULT, ISAL_DEF_LVL2_DEFAULT, ISAL_DEF_LVL3_DEFAULT};
    thread_local std::vector<std::uint8_t> level_buf(ISAL_DEF_LVL3_DEFAULT + ISAL_DEF_LVL2_DEFAULT + 1);
    out.resize(in.size() + 1024);
    isal_zstream s;
    isal_deflate_stateless_init(&s);
    s.level = static_cast<std::uint32_t>(level);
    s.level_buf = level ? level_buf.data() : nullptr;
    s.level_buf_size = level_buf_size[level];
    s.gzip_flag = IGZIP_GZIP;
    s.end_of_stream = 1;
    s.flush = NO_FLUSH;
    s.next_in = reinterpret_cast<std::uint8_t*>(const_cast<char*>(in.data()));
    s.avail_in = static_cast<std::uint32_t>(in.size());
    s.next_out = reinterpret_cast<std::uint8_t*>(out.data());
    s.avail_out = static_cast<std::uint32_t>(out.size());
    if (isal_deflate_stateless(&s) != COMP_OK) return 0;
    return s.total_out;
}

void BM_gzip_levels(benchmark::State& state) {
    const int implementation = static_cast<int>(state.range(0));
    const int level = static_cast<int>(state.range(1));
    const std::string& in = fixture(static_cast<int>(state.range(2)));
    std::string out;
    std::size_t n = 0;
    for (auto _ : state) {
        n = gzip_once(implementation, level, in, out);
        benchmark::DoNotOptimize(out.data());
    }
    if (!n) state.SkipWithError("compression failed");
    const std::string& name = kFixtures[state.range(2)];
    static const char* const kNames[] = {"zlib", "libdeflate", "isal", "brotli", "zstd"};
    state.SetLabel(std::string(kNames[implementation]) + " " + std::to_string(level) + " " + name);
    // Size against zlib 6 on the same page (what Django's GZipMiddleware sends).
    std::string reference;
    state.counters["vs_zlib6"] = static_cast<double>(n) / static_cast<double>(gzip_once(0, 6, in, reference));
    report(state, n, in);
}

void gzip_level_args(benchmark::internal::Benchmark* b) {
    for (int f = 0; f < kFixtureCount; ++f) {
        b->Args({0, 1, f})->Args({0, 6, f});
        for (int level : {1, 2, 3, 4, 5, 6}) b->Args({1, level, f});
        for (int level : {1, 2, 3}) b->Args({2, level, f});
        for (int level : {1, 2, 3, 4, 5}) b->Args({3, level, f});
        for (int level : {1, 2, 3, 4, 5, 6}) b->Args({4, level, f});
    }
}
BENCHMARK(BM_gzip_levels)->Apply(gzip_level_args);

// One-shot brotli: the encoder state is made and freed inside every call (brotli has no reset).
void BM_brotli(benchmark::State& state) {
    const std::string& in = page();
    std::string out(BrotliEncoderMaxCompressedSize(in.size()), '\0');
    std::size_t n = 0;
    for (auto _ : state) {
        n = out.size();
        BrotliEncoderCompress(static_cast<int>(state.range(0)), BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, in.size(),
                              reinterpret_cast<const std::uint8_t*>(in.data()), &n,
                              reinterpret_cast<std::uint8_t*>(out.data()));
        benchmark::DoNotOptimize(out.data());
    }
    report(state, n);
}
BENCHMARK(BM_brotli)->Arg(1)->Arg(4)->Arg(5)->Arg(6)->Arg(11);

void BM_zstd(benchmark::State& state) {
    const std::string& in = page();
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, static_cast<int>(state.range(0)));
    std::string out(ZSTD_compressBound(in.size()), '\0');
    std::size_t n = 0;
    for (auto _ : state) {
        n = ZSTD_compress2(cctx, out.data(), out.size(), in.data(), in.size());
        benchmark::DoNotOptimize(out.data());
    }
    ZSTD_freeCCtx(cctx);
    report(state, n);
}
BENCHMARK(BM_zstd)->Arg(1)->Arg(3)->Arg(6)->Arg(9);

// gantry's whole-body path as the middleware runs it (per-thread compressor and buffer swap):
// includes copying the page into the body string, as a fresh response would bring it.
void BM_gantry_whole(benchmark::State& state) {
    const auto coding = static_cast<gantry::Coding>(state.range(0));
    gantry::CodecLevels levels;
    std::string body;
    for (auto _ : state) {
        body.assign(page());
        if (!gantry::compress_whole(coding, levels, body)) state.SkipWithError("not compressed");
        benchmark::DoNotOptimize(body.data());
    }
    report(state, body.size());
    state.SetLabel(std::string(gantry::coding_token(coding)) + " at the default level");
}
BENCHMARK(BM_gantry_whole)
    ->Arg(static_cast<int>(gantry::Coding::gzip))
    ->Arg(static_cast<int>(gantry::Coding::br))
    ->Arg(static_cast<int>(gantry::Coding::zstd));

// A stream of the page in 4 KiB chunks, each flushed, through gantry's pooled stream compressors
// (the state comes from the thread's pool after the first iteration; brotli's is made each time).
void BM_gantry_stream(benchmark::State& state) {
    const auto coding = static_cast<gantry::Coding>(state.range(0));
    gantry::CodecLevels levels;
    const std::string& in = page();
    std::string out;
    for (auto _ : state) {
        out.clear();
        auto stream = gantry::make_stream_compressor(coding, levels);
        for (std::size_t at = 0; at < in.size(); at += 4096)
            stream->write(std::string_view(in).substr(at, 4096), out);
        stream->finish(out);
        benchmark::DoNotOptimize(out.data());
    }
    report(state, out.size());
    state.SetLabel(std::string(gantry::coding_token(coding)) + ", 4 KiB chunks, flushed");
}
BENCHMARK(BM_gantry_stream)
    ->Arg(static_cast<int>(gantry::Coding::gzip))
    ->Arg(static_cast<int>(gantry::Coding::br))
    ->Arg(static_cast<int>(gantry::Coding::zstd));

// What pooling saves: a zlib state made per stream (deflateInit2 + deflateEnd) vs reset.
void BM_zlib_state_fresh_vs_reset(benchmark::State& state) {
    const bool fresh = state.range(0) != 0;
    z_stream s{};
    deflateInit2(&s, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    for (auto _ : state) {
        if (fresh) {
            deflateEnd(&s);
            deflateInit2(&s, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
        } else {
            deflateReset(&s);
        }
        benchmark::DoNotOptimize(&s);
    }
    deflateEnd(&s);
    state.SetLabel(fresh ? "deflateInit2+deflateEnd" : "deflateReset");
}
BENCHMARK(BM_zlib_state_fresh_vs_reset)->Arg(1)->Arg(0);

// Brotli's per-stream state: create, one small flushed write, destroy.
void BM_brotli_state_per_stream(benchmark::State& state) {
    const std::string chunk = page().substr(0, 512);
    for (auto _ : state) {
        auto* s = BrotliEncoderCreateInstance(nullptr, nullptr, nullptr);
        BrotliEncoderSetParameter(s, BROTLI_PARAM_QUALITY, 4);
        std::size_t avail_in = chunk.size(), avail_out = 0;
        const auto* next_in = reinterpret_cast<const std::uint8_t*>(chunk.data());
        BrotliEncoderCompressStream(s, BROTLI_OPERATION_FLUSH, &avail_in, &next_in, &avail_out, nullptr, nullptr);
        std::size_t n = 0;
        benchmark::DoNotOptimize(BrotliEncoderTakeOutput(s, &n));
        BrotliEncoderDestroyInstance(s);
    }
}
BENCHMARK(BM_brotli_state_per_stream);

}  // namespace

namespace {

// Would recycling brotli's allocations help, as it has no reset? A per-thread cache of freed
// blocks by size, handed to BrotliEncoderCreateInstance, against the one-shot call's malloc/free.
struct BlockCache {
    std::vector<std::pair<std::size_t, void*>> idle;
    ~BlockCache() {
        for (auto& [n, p] : idle) std::free(p);
    }
};
thread_local BlockCache block_cache;

void* cached_alloc(void*, std::size_t n) {
    for (auto it = block_cache.idle.begin(); it != block_cache.idle.end(); ++it)
        if (it->first == n) {
            void* p = it->second;
            block_cache.idle.erase(it);
            return p;
        }
    auto* p = static_cast<std::size_t*>(std::malloc(n + 16));
    *p = n;
    return reinterpret_cast<char*>(p) + 16;
}
void cached_free(void*, void* p) {
    if (!p) return;
    char* base = static_cast<char*>(p) - 16;
    block_cache.idle.emplace_back(*reinterpret_cast<std::size_t*>(base), p);
}

void BM_brotli_recycled_allocations(benchmark::State& state) {
    const std::string& in = page();
    std::string out(BrotliEncoderMaxCompressedSize(in.size()), '\0');
    std::size_t n = 0;
    for (auto _ : state) {
        auto* s = BrotliEncoderCreateInstance(cached_alloc, cached_free, nullptr);
        BrotliEncoderSetParameter(s, BROTLI_PARAM_QUALITY, static_cast<std::uint32_t>(state.range(0)));
        BrotliEncoderSetParameter(s, BROTLI_PARAM_SIZE_HINT, static_cast<std::uint32_t>(in.size()));
        std::size_t avail_in = in.size(), avail_out = out.size();
        const auto* next_in = reinterpret_cast<const std::uint8_t*>(in.data());
        auto* next_out = reinterpret_cast<std::uint8_t*>(out.data());
        BrotliEncoderCompressStream(s, BROTLI_OPERATION_FINISH, &avail_in, &next_in, &avail_out, &next_out, nullptr);
        n = out.size() - avail_out;
        BrotliEncoderDestroyInstance(s);
        benchmark::DoNotOptimize(out.data());
    }
    report(state, n);
}
BENCHMARK(BM_brotli_recycled_allocations)->Arg(4)->Arg(5);

}  // namespace
