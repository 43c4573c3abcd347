#include "middleware/codec.hpp"  // first: the header stands alone

#include <random>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

namespace gantry {
namespace {

// Decoders from the codecs' own libraries: what a client would run.
std::string gunzip(const std::string& in) {
    z_stream s{};
    EXPECT_EQ(inflateInit2(&s, 15 + 16), Z_OK);
    s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    s.avail_in = static_cast<uInt>(in.size());
    std::string out;
    char buf[16384];
    int rc;
    do {
        s.next_out = reinterpret_cast<Bytef*>(buf);
        s.avail_out = sizeof(buf);
        rc = inflate(&s, Z_NO_FLUSH);
        out.append(buf, sizeof(buf) - s.avail_out);
    } while (rc == Z_OK && (s.avail_in > 0 || s.avail_out == 0));
    EXPECT_EQ(rc, Z_STREAM_END) << "gzip stream not complete";
    inflateEnd(&s);
    return out;
}

std::string unbrotli(const std::string& in) {
    auto* d = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
    std::size_t avail_in = in.size();
    const auto* next_in = reinterpret_cast<const std::uint8_t*>(in.data());
    std::string out;
    BrotliDecoderResult rc;
    do {
        std::size_t avail_out = 0;
        rc = BrotliDecoderDecompressStream(d, &avail_in, &next_in, &avail_out, nullptr, nullptr);
        std::size_t n = 0;
        const std::uint8_t* p = BrotliDecoderTakeOutput(d, &n);
        out.append(reinterpret_cast<const char*>(p), n);
    } while (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT);
    EXPECT_EQ(rc, BROTLI_DECODER_RESULT_SUCCESS);
    BrotliDecoderDestroyInstance(d);
    return out;
}

std::string unzstd(const std::string& in) {
    auto* d = ZSTD_createDCtx();
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    std::string out;
    char buf[16384];
    std::size_t rc = 1;
    while (input.pos < input.size) {
        ZSTD_outBuffer output{buf, sizeof(buf), 0};
        rc = ZSTD_decompressStream(d, &output, &input);
        EXPECT_FALSE(ZSTD_isError(rc)) << ZSTD_getErrorName(rc);
        if (ZSTD_isError(rc)) break;
        out.append(buf, output.pos);
    }
    EXPECT_EQ(rc, 0u) << "zstd frame not complete";
    ZSTD_freeDCtx(d);
    return out;
}

std::string decode(Coding c, const std::string& in) {
    switch (c) {
    case Coding::gzip: return gunzip(in);
    case Coding::br: return unbrotli(in);
    case Coding::zstd: return unzstd(in);
    default: return in;
    }
}

std::string html(std::size_t size) {
    std::string out = "<!doctype html><html><body><ul>";
    for (int i = 0; out.size() < size; ++i)
        out += "<li class=\"product\"><a href=\"/p/" + std::to_string(i) + "\">Product " + std::to_string(i * 7) +
               "</a> <span>" + std::to_string(i * 13 % 97) + ".99</span></li>\n";
    out.resize(size);
    return out;
}

std::string random_bytes(std::size_t size) {
    std::mt19937 gen(42);
    std::string out(size, '\0');
    for (auto& c : out) c = static_cast<char>(gen());
    return out;
}

class Codecs : public ::testing::TestWithParam<std::tuple<Coding, bool>> {};

TEST_P(Codecs, WholeBodyRoundTripsAndIsShorter) {
    auto [coding, breach] = GetParam();
    CodecLevels levels;
    levels.breach_mitigation = breach;
    for (std::size_t size : {300u, 4000u, 40000u, 300000u}) {
        const std::string original = html(size);
        std::string body = original;
        ASSERT_TRUE(compress_whole(coding, levels, body)) << size;
        // Small bodies: only "shorter" is promised (the BREACH padding is up to 107 bytes).
        EXPECT_LT(body.size(), size >= 4000 ? original.size() / 3 : original.size()) << size;
        EXPECT_EQ(decode(coding, body), original) << size;
    }
}

TEST_P(Codecs, IncompressibleBodyIsLeftAlone) {
    auto [coding, breach] = GetParam();
    CodecLevels levels;
    levels.breach_mitigation = breach;
    const std::string original = random_bytes(5000);
    std::string body = original;
    EXPECT_FALSE(compress_whole(coding, levels, body));
    EXPECT_EQ(body, original);
}

TEST_P(Codecs, StreamFlushesEveryChunkSoEachDecodesAlone) {
    auto [coding, breach] = GetParam();
    CodecLevels levels;
    levels.breach_mitigation = breach;
    auto stream = make_stream_compressor(coding, levels);
    std::string wire, plain;
    for (int i = 0; i < 20; ++i) {
        std::string chunk = "data: event " + std::to_string(i) + " " + html(50 + i * 10) + "\n\n";
        plain += chunk;
        std::string out;
        stream->write(chunk, out);
        ASSERT_FALSE(out.empty());
        wire += out;
        // Everything written so far decodes now, before the stream ends (a client would show it).
        if (coding == Coding::gzip) {
            z_stream s{};
            inflateInit2(&s, 15 + 16);
            std::string got(plain.size() + 64, '\0');
            s.next_in = reinterpret_cast<Bytef*>(wire.data());
            s.avail_in = static_cast<uInt>(wire.size());
            s.next_out = reinterpret_cast<Bytef*>(got.data());
            s.avail_out = static_cast<uInt>(got.size());
            inflate(&s, Z_SYNC_FLUSH);
            got.resize(got.size() - s.avail_out);
            inflateEnd(&s);
            EXPECT_EQ(got, plain) << "chunk " << i;
        }
    }
    std::string out;
    stream->finish(out);
    wire += out;
    EXPECT_EQ(decode(coding, wire), plain);
}

TEST_P(Codecs, PooledStreamStatesStartClean) {
    auto [coding, breach] = GetParam();
    CodecLevels levels;
    levels.breach_mitigation = breach;
    for (int round = 0; round < 3; ++round) {
        auto stream = make_stream_compressor(coding, levels);
        std::string wire;
        std::string text = html(1000 + round * 100);
        stream->write(text, wire);
        stream->finish(wire);
        EXPECT_EQ(decode(coding, wire), text) << round;
        // A stream abandoned mid-way (client gone) must not leak into the next one.
        auto abandoned = make_stream_compressor(coding, levels);
        std::string ignored;
        abandoned->write("half of something", ignored);
    }
}

INSTANTIATE_TEST_SUITE_P(All, Codecs,
                         ::testing::Combine(::testing::Values(Coding::gzip, Coding::br, Coding::zstd),
                                            ::testing::Bool()));

TEST(Codec, BreachMitigationVariesTheLength) {
    CodecLevels levels;
    levels.breach_mitigation = true;
    const std::string original = html(10000);
    for (Coding c : {Coding::gzip, Coding::zstd}) {
        std::set<std::size_t> sizes;
        for (int i = 0; i < 20; ++i) {
            std::string body = original;
            ASSERT_TRUE(compress_whole(c, levels, body));
            EXPECT_EQ(decode(c, body), original);
            sizes.insert(body.size());
        }
        EXPECT_GT(sizes.size(), 5u) << coding_token(c);
    }
}

TEST(Codec, GzipLevelsAllWork) {
    const std::string original = html(40000);
    for (int level = 1; level <= 12; ++level) {
        CodecLevels levels;
        levels.gzip = level;
        std::string body = original;
        ASSERT_TRUE(compress_whole(Coding::gzip, levels, body));
        EXPECT_EQ(gunzip(body), original);
        auto stream = make_stream_compressor(Coding::gzip, levels);  // zlib stops at 9
        std::string wire;
        stream->write(original, wire);
        stream->finish(wire);
        EXPECT_EQ(gunzip(wire), original);
    }
}

TEST(Codec, Tokens) {
    EXPECT_EQ(coding_token(Coding::br), "br");
    EXPECT_EQ(coding_from_token("zstd"), Coding::zstd);
    EXPECT_FALSE(coding_from_token("deflate"));
    EXPECT_FALSE(coding_from_token("identity"));
}

}  // namespace
}  // namespace gantry
