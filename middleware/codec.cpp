#include "middleware/codec.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>
#include <vector>

#include <sys/random.h>

#include <brotli/encode.h>
#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>

namespace gantry {

namespace {

constexpr std::size_t kPoolKeep = 16;              // idle stream states kept per thread and codec
constexpr std::size_t kScratchKeep = 4u << 20;     // a larger per-thread buffer is given back
constexpr std::size_t kBreachMaxBytes = 100;       // Django's GZipMiddleware.max_random_bytes

// A random length in [0, kBreachMaxBytes), from getrandom(2) in batches (unpredictable to an
// attacker, which a seeded PRNG would not be; one syscall per 256 responses).
std::size_t breach_length() {
    thread_local unsigned char pool[256];
    thread_local std::size_t used = sizeof(pool);
    if (used == sizeof(pool)) {
        std::size_t got = 0;
        while (got < sizeof(pool)) {
            ssize_t n = ::getrandom(pool + got, sizeof(pool) - got, 0);
            if (n > 0) got += static_cast<std::size_t>(n);
        }
        used = 0;
    }
    return pool[used++] % kBreachMaxBytes;
}

// The per-thread output buffer whole bodies are compressed into, then swapped with the body: the
// body's old buffer becomes the next response's scratch.
std::string& scratch() {
    thread_local std::string buffer;
    return buffer;
}

void give_back(std::string& buffer) {
    if (buffer.capacity() > kScratchKeep) std::string().swap(buffer);
}

void put_le32(char* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// RFC 1952 member header: no mtime (as Django: mtime=0), OS "unknown" like Python's gzip; with
// the BREACH mitigation an FNAME field of random length.
std::size_t write_gzip_header(char* out, std::size_t name_length) {
    const unsigned char fixed[10] = {0x1f, 0x8b, 8, static_cast<unsigned char>(name_length ? 0x08 : 0), 0, 0, 0, 0, 0, 0xff};
    std::memcpy(out, fixed, sizeof(fixed));
    if (!name_length) return sizeof(fixed);
    std::memset(out + sizeof(fixed), 'a', name_length - 1);
    out[sizeof(fixed) + name_length - 1] = '\0';
    return sizeof(fixed) + name_length;
}

// A libdeflate compressor per thread and level: they hold no state between calls.
libdeflate_compressor* deflate_compressor(int level) {
    struct Cache {
        libdeflate_compressor* by_level[13] = {};
        ~Cache() {
            for (auto* c : by_level)
                if (c) libdeflate_free_compressor(c);
        }
    };
    thread_local Cache cache;
    auto*& c = cache.by_level[level];
    if (!c && !(c = libdeflate_alloc_compressor(level))) throw std::bad_alloc();
    return c;
}

// A per-thread free list of codec states that can be reset (z_stream, ZSTD_CCtx).
template <class State>
class StatePool {
public:
    ~StatePool() {
        for (State* s : idle_) delete s;
    }
    std::unique_ptr<State> take() {
        if (idle_.empty()) return nullptr;
        State* s = idle_.back();
        idle_.pop_back();
        return std::unique_ptr<State>(s);
    }
    void put(std::unique_ptr<State> s) {
        if (idle_.size() < kPoolKeep) idle_.push_back(s.release());
    }

private:
    std::vector<State*> idle_;
};

// ---- gzip -------------------------------------------------------------------------------------

bool gzip_whole(const CodecLevels& levels, std::string& body) {
    const std::size_t name_length = levels.breach_mitigation ? breach_length() + 1 : 0;
    const std::size_t header = 10 + name_length, trailer = 8;
    // Keep it only if shorter: give the compressor no more room than that.
    if (body.size() <= header + trailer + 1) return false;
    const std::size_t room = body.size() - 1 - header - trailer;
    std::string& out = scratch();
    if (out.size() < body.size()) out.resize(body.size());
    write_gzip_header(out.data(), name_length);
    std::size_t n = libdeflate_deflate_compress(deflate_compressor(levels.gzip), body.data(), body.size(),
                                                out.data() + header, room);
    if (n == 0) return false;  // would not be shorter
    char* tail = out.data() + header + n;
    put_le32(tail, libdeflate_crc32(0, body.data(), body.size()));
    put_le32(tail + 4, static_cast<std::uint32_t>(body.size()));  // ISIZE: the size mod 2^32
    out.resize(header + n + trailer);
    body.swap(out);
    give_back(out);
    return true;
}

struct ZlibState {
    z_stream stream{};
    int level = -1;
    gz_header head{};
    std::string name;
    ZlibState() = default;
    ZlibState(const ZlibState&) = delete;
    ~ZlibState() {
        if (level >= 0) deflateEnd(&stream);
    }
};

StatePool<ZlibState>& zlib_pool() {
    thread_local StatePool<ZlibState> pool;
    return pool;
}

class GzipStream final : public StreamCompressor {
public:
    GzipStream(int level, bool breach) {
        level = std::min(level, 9);  // zlib's maximum; libdeflate's 10-12 have no zlib twin
        state_ = zlib_pool().take();
        if (state_ && state_->level == level) {
            deflateReset(&state_->stream);
        } else {
            state_ = std::make_unique<ZlibState>();
            // 15 + 16: a gzip wrapper, the full 32 KiB window.
            if (deflateInit2(&state_->stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
                throw std::bad_alloc();
            state_->level = level;
        }
        // deflateReset keeps the last header: set this stream's own (or none) every time.
        if (breach) {
            state_->name.assign(breach_length() + 1, 'a');
            state_->head = gz_header{};
            state_->head.os = 255;
            state_->head.name = reinterpret_cast<Bytef*>(state_->name.data());
            state_->name.back() = '\0';
            deflateSetHeader(&state_->stream, &state_->head);
        } else {
            deflateSetHeader(&state_->stream, Z_NULL);
        }
    }
    ~GzipStream() override { zlib_pool().put(std::move(state_)); }

    void write(std::string_view in, std::string& out) override { run(in, out, Z_SYNC_FLUSH); }
    void finish(std::string& out) override { run({}, out, Z_FINISH); }

private:
    void run(std::string_view in, std::string& out, int flush) {
        z_stream& s = state_->stream;
        s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        s.avail_in = static_cast<uInt>(in.size());
        std::size_t step = deflateBound(&s, in.size()) + 16;
        for (;;) {
            std::size_t used = out.size();
            out.resize(used + step);
            s.next_out = reinterpret_cast<Bytef*>(out.data() + used);
            s.avail_out = static_cast<uInt>(step);
            int rc = deflate(&s, flush);
            out.resize(used + step - s.avail_out);
            if (rc == Z_STREAM_END) return;
            if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("zlib deflate failed");
            // Room left means everything was flushed (zlib's own rule for Z_SYNC_FLUSH).
            if (s.avail_out != 0 && flush != Z_FINISH) return;
            step = 16 * 1024;
        }
    }

    std::unique_ptr<ZlibState> state_;
};

// ---- brotli ----------------------------------------------------------------------------------

bool brotli_whole(const CodecLevels& levels, std::string& body) {
    if (body.size() < 2) return false;
    std::string& out = scratch();
    if (out.size() < body.size()) out.resize(body.size());
    std::size_t n = body.size() - 1;  // in: the room (keep it only if shorter); out: the size
    if (!BrotliEncoderCompress(levels.br, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, body.size(),
                               reinterpret_cast<const std::uint8_t*>(body.data()), &n,
                               reinterpret_cast<std::uint8_t*>(out.data())))
        return false;
    out.resize(n);
    body.swap(out);
    give_back(out);
    return true;
}

class BrotliStream final : public StreamCompressor {
public:
    explicit BrotliStream(int quality) {
        // No reset in brotli's API: a state per stream (created lazily by the encoder's tables).
        state_ = BrotliEncoderCreateInstance(nullptr, nullptr, nullptr);
        if (!state_) throw std::bad_alloc();
        BrotliEncoderSetParameter(state_, BROTLI_PARAM_QUALITY, static_cast<std::uint32_t>(quality));
    }
    ~BrotliStream() override { BrotliEncoderDestroyInstance(state_); }

    void write(std::string_view in, std::string& out) override { run(in, out, BROTLI_OPERATION_FLUSH); }
    void finish(std::string& out) override { run({}, out, BROTLI_OPERATION_FINISH); }

private:
    void run(std::string_view in, std::string& out, BrotliEncoderOperation op) {
        std::size_t avail_in = in.size();
        const auto* next_in = reinterpret_cast<const std::uint8_t*>(in.data());
        for (;;) {
            std::size_t avail_out = 0;  // the encoder's own buffer, drained with TakeOutput
            if (!BrotliEncoderCompressStream(state_, op, &avail_in, &next_in, &avail_out, nullptr, nullptr))
                throw std::runtime_error("brotli encoder failed");
            while (BrotliEncoderHasMoreOutput(state_)) {
                std::size_t n = 0;
                const std::uint8_t* p = BrotliEncoderTakeOutput(state_, &n);
                out.append(reinterpret_cast<const char*>(p), n);
            }
            bool done = op == BROTLI_OPERATION_FINISH ? BrotliEncoderIsFinished(state_) : avail_in == 0;
            if (done && !BrotliEncoderHasMoreOutput(state_)) return;
        }
    }

    BrotliEncoderState* state_ = nullptr;
};

// ---- zstd ------------------------------------------------------------------------------------

struct ZstdState {
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ZstdState() {
        if (!cctx) throw std::bad_alloc();
    }
    ZstdState(const ZstdState&) = delete;
    ~ZstdState() { ZSTD_freeCCtx(cctx); }
};

StatePool<ZstdState>& zstd_pool() {
    thread_local StatePool<ZstdState> pool;
    return pool;
}

std::unique_ptr<ZstdState> take_zstd(int level) {
    auto state = zstd_pool().take();
    if (state)
        ZSTD_CCtx_reset(state->cctx, ZSTD_reset_session_and_parameters);
    else
        state = std::make_unique<ZstdState>();
    ZSTD_CCtx_setParameter(state->cctx, ZSTD_c_compressionLevel, level);
    return state;
}

// A skippable frame (RFC 8878 §3.1.2) of random length: every decoder ignores it.
std::size_t write_zstd_padding(char* out) {
    std::size_t n = breach_length();
    put_le32(out, 0x184D2A50u);
    put_le32(out + 4, static_cast<std::uint32_t>(n));
    std::memset(out + 8, 0, n);
    return 8 + n;
}

bool zstd_whole(const CodecLevels& levels, std::string& body) {
    std::string& out = scratch();
    if (out.size() < body.size()) out.resize(body.size());
    std::size_t pad = levels.breach_mitigation ? 8 + kBreachMaxBytes : 0;
    if (body.size() <= pad + 1) return false;
    std::size_t used = levels.breach_mitigation ? write_zstd_padding(out.data()) : 0;
    auto state = take_zstd(levels.zstd);
    std::size_t n = ZSTD_compress2(state->cctx, out.data() + used, body.size() - 1 - used, body.data(), body.size());
    zstd_pool().put(std::move(state));
    if (ZSTD_isError(n)) return false;  // dstSize_tooSmall: would not be shorter
    out.resize(used + n);
    body.swap(out);
    give_back(out);
    return true;
}

class ZstdStream final : public StreamCompressor {
public:
    ZstdStream(int level, bool breach) : state_(take_zstd(level)), padding_(breach) {}
    ~ZstdStream() override { zstd_pool().put(std::move(state_)); }

    void write(std::string_view in, std::string& out) override { run(in, out, ZSTD_e_flush); }
    void finish(std::string& out) override { run({}, out, ZSTD_e_end); }

private:
    void run(std::string_view in, std::string& out, ZSTD_EndDirective mode) {
        if (padding_) {
            padding_ = false;
            std::size_t used = out.size();
            out.resize(used + 8 + kBreachMaxBytes);
            out.resize(used + write_zstd_padding(out.data() + used));
        }
        ZSTD_inBuffer input{in.data(), in.size(), 0};
        std::size_t step = ZSTD_compressBound(in.size()) + 32;
        for (;;) {
            std::size_t used = out.size();
            out.resize(used + step);
            ZSTD_outBuffer output{out.data() + used, step, 0};
            std::size_t remaining = ZSTD_compressStream2(state_->cctx, &output, &input, mode);
            out.resize(used + output.pos);
            if (ZSTD_isError(remaining)) throw std::runtime_error(ZSTD_getErrorName(remaining));
            if (remaining == 0) return;  // all input taken and flushed (or the frame ended)
            step = ZSTD_CStreamOutSize();
        }
    }

    std::unique_ptr<ZstdState> state_;
    bool padding_;
};

}  // namespace

std::string_view coding_token(Coding c) {
    switch (c) {
    case Coding::gzip: return "gzip";
    case Coding::br: return "br";
    case Coding::zstd: return "zstd";
    case Coding::identity: break;
    }
    return "";
}

std::optional<Coding> coding_from_token(std::string_view token) {
    if (token == "gzip") return Coding::gzip;
    if (token == "br") return Coding::br;
    if (token == "zstd") return Coding::zstd;
    return std::nullopt;
}

bool compress_whole(Coding coding, const CodecLevels& levels, std::string& body) {
    switch (coding) {
    case Coding::gzip: return gzip_whole(levels, body);
    case Coding::br: return brotli_whole(levels, body);
    case Coding::zstd: return zstd_whole(levels, body);
    case Coding::identity: break;
    }
    return false;
}

std::unique_ptr<StreamCompressor> make_stream_compressor(Coding coding, const CodecLevels& levels) {
    switch (coding) {
    case Coding::gzip: return std::make_unique<GzipStream>(levels.gzip, levels.breach_mitigation);
    case Coding::br: return std::make_unique<BrotliStream>(levels.br);
    case Coding::zstd: return std::make_unique<ZstdStream>(levels.zstd, levels.breach_mitigation);
    case Coding::identity: break;
    }
    return nullptr;
}

}  // namespace gantry
