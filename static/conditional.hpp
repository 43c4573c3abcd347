#pragma once
// What a GET or HEAD of a static file gets, from its validators and the request's conditional and
// range headers (RFC 9110 §13.2.2 order): 304 Not Modified, 206 with one byte range, 416, or
// 200 with the whole representation. Pure: strings in, a decision out.
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "http/http_date.hpp"

namespace gantry {

// The representation being served (the identity file or the chosen precompressed variant).
struct Representation {
    std::string_view etag;      // strong, quoted: "\"67a1b2c3-1f40\""
    std::time_t last_modified;  // seconds since the epoch
    std::uint64_t size;
};

// The request's headers that matter (nullptr: absent).
struct ConditionalRequest {
    bool is_get = true;  // false for HEAD: Range is defined for GET only
    const std::string* if_none_match = nullptr;
    const std::string* if_modified_since = nullptr;
    const std::string* range = nullptr;
    const std::string* if_range = nullptr;
};

struct ServeDecision {
    int status = 200;            // 200, 206, 304 or 416
    std::uint64_t offset = 0;    // 206: first byte
    std::uint64_t length = 0;    // 200/206: bytes to send
};

ServeDecision decide_static_response(const ConditionalRequest& request, const Representation& rep);

// If-None-Match: "*", or a list of entity tags one of which equals `etag` by weak comparison
// (W/ ignored on both sides).
bool if_none_match_matches(std::string_view header, std::string_view etag);

// One "bytes=" range against a representation of `size` bytes.
struct ByteRange {
    enum class Kind { none, single, multiple, unsatisfiable } kind = Kind::none;  // none: absent/invalid: ignore
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};
ByteRange parse_byte_range(std::string_view header, std::uint64_t size);

}  // namespace gantry
