#pragma once
// Header fields by name: names compare without regard to ASCII case (RFC 9110 §5.1).
#include <string_view>
#include <vector>

#include "http/request.hpp"
#include "http/text.hpp"

namespace gantry {

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
