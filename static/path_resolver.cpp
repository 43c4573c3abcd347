#include "static/path_resolver.hpp"

#include <cstdint>

#include "http/text.hpp"

namespace gantry {

namespace {


// Bytes no file name we serve may hold, whether sent raw or percent-encoded.
bool forbidden_byte(unsigned char c) { return c < 0x20 || c == 0x7f || c == '\\'; }

}  // namespace


std::optional<std::string> resolve_static_path(std::string_view rest) {
    auto query = rest.find_first_of("?#");
    if (query != std::string_view::npos) rest = rest.substr(0, query);
    if (rest.empty()) return std::nullopt;

    std::string decoded;
    decoded.reserve(rest.size());
    for (std::size_t i = 0; i < rest.size(); ++i) {
        char c = rest[i];
        if (c == '%') {
            if (i + 2 >= rest.size()) return std::nullopt;  // a truncated escape
            int hi = hex_value(rest[i + 1]);
            int lo = hex_value(rest[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            auto byte = static_cast<unsigned char>(hi * 16 + lo);
            // An encoded "/" would let one segment hide a separator from the checks below.
            if (byte == '/' || forbidden_byte(byte)) return std::nullopt;
            decoded.push_back(static_cast<char>(byte));
            i += 2;
            continue;
        }
        if (forbidden_byte(static_cast<unsigned char>(c))) return std::nullopt;
        decoded.push_back(c);
    }
    if (!is_strict_utf8(decoded)) return std::nullopt;

    // Every segment must be a plain name: not empty ("//", a trailing "/"), not "." or "..",
    // not a dotfile (".env", ".git").
    std::size_t start = 0;
    for (;;) {
        auto slash = decoded.find('/', start);
        std::size_t end = slash == std::string::npos ? decoded.size() : slash;
        if (end == start || decoded[start] == '.') return std::nullopt;
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    return decoded;
}

}  // namespace gantry
