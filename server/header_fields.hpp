#pragma once
// Header fields as server/ and the middlewares read them: names (and tokens such as Cache-Control
// directives) compare without regard to ASCII case (RFC 9110 §5.1).
#include <strings.h>

#include <string_view>
#include <vector>

#include "server/http_request.hpp"

namespace gantry {

inline bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// The first field named `name`, or nullptr.
inline const HttpHeader* find_field(const std::vector<HttpHeader>& headers, std::string_view name) {
    for (const auto& h : headers)
        if (iequals(h.name, name)) return &h;
    return nullptr;
}
inline HttpHeader* find_field(std::vector<HttpHeader>& headers, std::string_view name) {
    for (auto& h : headers)
        if (iequals(h.name, name)) return &h;
    return nullptr;
}

}  // namespace gantry
