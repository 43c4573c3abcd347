#include "static/conditional.hpp"

#include <charconv>
#include <cstring>
#include <limits>


#include "http/text.hpp"

namespace gantry {

namespace {


std::string_view strip_weak(std::string_view tag) {
    if (tag.size() >= 2 && tag[0] == 'W' && tag[1] == '/') tag.remove_prefix(2);
    return tag;
}

// Digits only; a number too large for 64 bits becomes the largest one (still "past the end").
std::optional<std::uint64_t> parse_digits(std::string_view s) {
    if (s.empty()) return std::nullopt;
    for (char c : s)
        if (c < '0' || c > '9') return std::nullopt;
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc::result_out_of_range) return std::numeric_limits<std::uint64_t>::max();
    return n;
}

// If-Range: an entity tag must match strongly (a weak one never does); a date must be exactly the
// Last-Modified. Anything else: the range is not honoured.
bool if_range_holds(std::string_view value, const Representation& rep) {
    value = trim(value);
    if (value.starts_with("W/")) return false;
    if (value.starts_with("\"")) return value == rep.etag;
    auto date = parse_http_date(value);
    return date && *date == rep.last_modified;
}

}  // namespace

bool if_none_match_matches(std::string_view header, std::string_view etag) {
    header = trim(header);
    if (header == "*") return true;
    std::string_view want = strip_weak(etag);
    while (!header.empty()) {
        auto comma = header.find(',');
        std::string_view item = trim(header.substr(0, comma));
        if (!item.empty() && strip_weak(item) == want) return true;
        if (comma == std::string_view::npos) break;
        header.remove_prefix(comma + 1);
    }
    return false;
}

ByteRange parse_byte_range(std::string_view header, std::uint64_t size) {
    ByteRange out;
    header = trim(header);
    auto eq = header.find('=');
    if (eq == std::string_view::npos) return out;
    std::string_view unit = trim(header.substr(0, eq));
    if (!iequals(unit, "bytes")) return out;
    std::string_view set = header.substr(eq + 1);

    int specs = 0;
    bool any_satisfiable = false;
    ByteRange first;
    while (true) {
        auto comma = set.find(',');
        std::string_view spec = trim(set.substr(0, comma));
        if (!spec.empty()) {
            auto dash = spec.find('-');
            if (dash == std::string_view::npos) return out;  // invalid: ignore the header
            std::string_view a = trim(spec.substr(0, dash)), b = trim(spec.substr(dash + 1));
            ByteRange r;
            if (a.empty()) {  // suffix: the last b bytes
                auto n = parse_digits(b);
                if (!n) return out;
                if (*n == 0 || size == 0) {
                    r.kind = ByteRange::Kind::unsatisfiable;
                } else {
                    r.kind = ByteRange::Kind::single;
                    r.length = std::min(*n, size);
                    r.offset = size - r.length;
                }
            } else {
                auto first_byte = parse_digits(a);
                if (!first_byte) return out;
                std::optional<std::uint64_t> last_byte;
                if (!b.empty()) {
                    last_byte = parse_digits(b);
                    if (!last_byte || *last_byte < *first_byte) return out;
                }
                if (*first_byte >= size) {
                    r.kind = ByteRange::Kind::unsatisfiable;
                } else {
                    std::uint64_t last = last_byte ? std::min(*last_byte, size - 1) : size - 1;
                    r.kind = ByteRange::Kind::single;
                    r.offset = *first_byte;
                    r.length = last - *first_byte + 1;
                }
            }
            if (specs == 0) first = r;
            ++specs;
            any_satisfiable = any_satisfiable || r.kind == ByteRange::Kind::single;
        }
        if (comma == std::string_view::npos) break;
        set.remove_prefix(comma + 1);
    }
    if (specs == 0) return out;
    if (!any_satisfiable) {
        out.kind = ByteRange::Kind::unsatisfiable;
        return out;
    }
    if (specs > 1) {
        out.kind = ByteRange::Kind::multiple;
        return out;
    }
    return first;
}

ServeDecision decide_static_response(const ConditionalRequest& req, const Representation& rep) {
    ServeDecision d;
    d.length = rep.size;
    // If-None-Match wins over If-Modified-Since (RFC 9110 §13.1.3).
    if (req.if_none_match) {
        if (if_none_match_matches(*req.if_none_match, rep.etag)) {
            d.status = 304;
            d.length = 0;
            return d;
        }
    } else if (req.if_modified_since) {
        auto since = parse_http_date(*req.if_modified_since);
        if (since && rep.last_modified <= *since) {
            d.status = 304;
            d.length = 0;
            return d;
        }
    }
    if (!req.is_get || !req.range) return d;
    if (req.if_range && !if_range_holds(*req.if_range, rep)) return d;
    ByteRange range = parse_byte_range(*req.range, rep.size);
    switch (range.kind) {
    case ByteRange::Kind::none:
    case ByteRange::Kind::multiple:  // several ranges: the whole file (RFC 9110 allows it)
        return d;
    case ByteRange::Kind::unsatisfiable:
        d.status = 416;
        d.length = 0;
        return d;
    case ByteRange::Kind::single:
        d.status = 206;
        d.offset = range.offset;
        d.length = range.length;
        return d;
    }
    return d;
}

}  // namespace gantry
