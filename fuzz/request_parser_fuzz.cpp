// libFuzzer target: raw bytes from a client -> RequestParser -> the HttpRequest and split_target()
// parts that embed/ turns into the WSGI environ. The environ itself is built with the GIL held in
// embed/ (Python objects); this covers every C++ step that feeds it.
//
// The first byte picks how the input is sliced (a client's bytes arrive in pieces of any size)
// and the second one small or default limits, so both the incremental paths and the 414/431/413
// answers are reached. The rest is the byte stream; requests are pipelined, as on a connection.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/request.hpp"
#include "server/request_parser.hpp"

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();  // an invariant broken: libFuzzer reports it as a crash
}

gantry::ParserLimits limits_for(std::uint8_t selector) {
    gantry::ParserLimits limits;  // gunicorn's defaults
    if (selector & 1) {
        limits.request_line = 64;
        limits.fields = 4;
        limits.field_size = 64;
        limits.body = 128;
        limits.body_memory = 32;  // bodies above spill to a temporary file
    }
    if (selector & 2) limits.request_line = 0;  // "unlimited" is a value of its own
    return limits;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::size_t slice = 1 + data[0] % 64;  // 1..64 bytes per read; 64 = a big read
    const bool whole = data[0] >= 192;           // or all at once, as a fast client sends it
    const gantry::ParserLimits limits = limits_for(data[1]);
    std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);

    // The session's buffer: bytes arrive, the parser consumes a prefix, the rest stays.
    std::string buffer;
    std::size_t offered = 0;
    for (int requests = 0; requests < 64; ++requests) {
        gantry::RequestParser parser(limits);
        for (;;) {
            std::size_t used = parser.feed(buffer);
            check(used <= buffer.size());
            buffer.erase(0, used);
            auto state = parser.state();
            if (state == gantry::RequestParser::State::complete || state == gantry::RequestParser::State::error)
                break;
            if (offered == stream.size()) {
                parser.feed_eof();
                break;
            }
            std::size_t n = whole ? stream.size() - offered : std::min(slice, stream.size() - offered);
            buffer.append(stream.substr(offered, n));
            offered += n;
        }
        if (parser.state() == gantry::RequestParser::State::error) {
            int status = parser.error_status();
            check(status >= 400 && status <= 599);
            return 0;
        }
        if (parser.state() != gantry::RequestParser::State::complete) return 0;
        gantry::HttpRequest request = parser.take();
        check(!request.method.empty());
        check(request.version == 10 || request.version == 11);
        if (limits.body) check(request.body.size() <= limits.body);
        // What embed/ reads for the environ: PATH_INFO, QUERY_STRING and the headers.
        gantry::TargetParts parts = gantry::split_target(request.target);
        check(parts.path.size() <= request.target.size());
        check(parts.query.size() <= request.target.size());
        for (const auto& h : request.headers) check(!h.name.empty());
        (void)request.find_header("Content-Type");
        if (!request.body.in_memory()) check(request.body.file_descriptor() >= 0);
        if (buffer.empty() && offered == stream.size()) return 0;
    }
    return 0;
}
