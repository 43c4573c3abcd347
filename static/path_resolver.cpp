#include "static/path_resolver.hpp"

#include <cstdint>

namespace gantry {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Bytes no file name we serve may hold, whether sent raw or percent-encoded.
bool forbidden_byte(unsigned char c) { return c < 0x20 || c == 0x7f || c == '\\'; }

}  // namespace

bool is_strict_utf8(std::string_view bytes) {
    std::size_t i = 0;
    const std::size_t n = bytes.size();
    while (i < n) {
        auto c = static_cast<unsigned char>(bytes[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len;
        std::uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;  // a continuation byte first, 0xc0/0xc1 (always overlong), or > 0xf4
        }
        if (i + len > n) return false;
        for (std::size_t k = 1; k < len; ++k) {
            auto cc = static_cast<unsigned char>(bytes[i + k]);
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;  // overlong
        if (cp >= 0xd800 && cp <= 0xdfff) return false;                              // surrogate
        if (cp > 0x10ffff) return false;
        i += len;
    }
    return true;
}

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
