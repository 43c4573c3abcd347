#pragma once
// "compress": gzip, brotli or zstd on the I/O thread, by Django's GZipMiddleware rules and what
// it misses (q-values, no-transform, types, HEAD, streams flushed chunk by chunk). The coding is
// chosen in on_request from Accept-Encoding and kept in the request's state slot; the response
// hooks never read the request (no request copy per request).
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "middleware/codec.hpp"
#include "middleware/middleware.hpp"
#include "http/config_error.hpp"
#include "middleware/middleware_spec.hpp"

namespace gantry {

struct CompressOptions {
    std::size_t min_length = 200;  // Django's: shorter whole bodies are not worth it
    // Media types worth compressing; one '*' matches any run of characters ("text/*", "*+json").
    std::vector<std::string> types = default_types();
    std::vector<Coding> prefer = {Coding::br, Coding::zstd, Coding::gzip};  // ties go to the first
    CodecLevels levels;

    static std::vector<std::string> default_types();
};

class CompressMiddleware final : public Middleware {
public:
    static constexpr std::string_view kName = "compress";

    explicit CompressMiddleware(CompressOptions options);

    std::string_view name() const override { return kName; }
    Flow on_request(RequestContext& ctx) const override;
    void on_response(RequestContext& ctx, ResponseHead& head, std::string* whole_body) const override;
    void on_chunk(RequestContext& ctx, std::string& chunk) const override;
    void on_stream_end(RequestContext& ctx, std::string& tail) const override;
    bool reads_request_in_response() const override { return false; }

    // Whether a response of this Content-Type value is worth compressing ("text/html; charset=utf-8").
    bool compressible_type(std::string_view content_type) const;

    // Header rules, public for their unit tests.
    // Adds Accept-Encoding to Vary, merging with what is there ("Cookie" -> "Cookie, Accept-Encoding";
    // nothing when it is already listed or Vary is "*").
    static void add_vary_accept_encoding(ResponseHead& head);
    // A strong ETag "x" becomes W/"x" (the bytes differ from the identity ones; RFC 9110 §8.8.1).
    static void weaken_etag(ResponseHead& head);

private:
    CompressOptions options_;
    std::vector<std::string_view> offered_;  // options_.prefer as Accept-Encoding tokens
};

// Throws ConfigError naming the option.
CompressOptions compress_options(const MiddlewareSpec& spec);
std::unique_ptr<const Middleware> make_compress_middleware(const MiddlewareSpec& spec);

}  // namespace gantry
