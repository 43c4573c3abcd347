#include "http/request.hpp"

#include "http/text.hpp"

namespace gantry {

const HttpHeader* HttpRequest::find_header(std::string_view name) const {
    for (const auto& h : headers)
        if (iequals(h.name, name)) return &h;
    return nullptr;
}

namespace {


// %XX to its byte; a '%' not followed by two hex digits stays as it is (as gunicorn does).
std::string percent_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size()) {
            int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        out.push_back(in[i]);
    }
    return out;
}

}  // namespace

TargetParts split_target(std::string_view target) {
    // absolute-form: scheme://authority/path?query
    if (auto scheme_end = target.find("://"); scheme_end != std::string_view::npos && target.front() != '/') {
        auto path_start = target.find('/', scheme_end + 3);
        if (path_start == std::string_view::npos) {
            auto q = target.find('?', scheme_end + 3);
            TargetParts parts{"/", ""};
            if (q != std::string_view::npos) parts.query = std::string(target.substr(q + 1));
            return parts;
        }
        target.remove_prefix(path_start);
    }
    auto fragment = target.find('#');
    if (fragment != std::string_view::npos) target = target.substr(0, fragment);
    auto q = target.find('?');
    TargetParts parts;
    parts.path = percent_decode(target.substr(0, q));
    if (q != std::string_view::npos) parts.query = std::string(target.substr(q + 1));
    return parts;
}

}  // namespace gantry
