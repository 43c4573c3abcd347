#include "cache/cache_key.hpp"

#include <algorithm>
#include <cctype>

#include "http/text.hpp"

namespace gantry {

namespace {



void append_field(std::string& out, std::string_view text) {
    // Length-prefixed, so no value can forge a separator and collide with another key.
    out += std::to_string(text.size());
    out += ':';
    out += text;
}

}  // namespace

CacheKey::CacheKey(const HttpRequest& request, std::string_view host) : request_(&request) {
    std::string_view method = request.method == "HEAD" ? std::string_view("GET") : std::string_view(request.method);
    url_.reserve(request.target.size() + host.size() + 24);
    url_ += method;
    url_ += ' ';
    url_ += request.url_scheme;
    url_ += "://";
    url_ += to_lower(host);
    std::string_view target = request.target;
    if (target.substr(0, 7) == "http://" || target.substr(0, 8) == "https://") {  // absolute-form: its path
        auto slash = target.find('/', target.find("//") + 2);
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    url_ += target;
}

std::string CacheKey::vary_list_key() const { return "gantry:vary:" + url_; }

std::string CacheKey::variant_key(const std::vector<std::string>& vary, std::string_view coding) const {
    std::string key = "gantry:page:" + url_;
    for (const auto& name : vary) {
        key += '\n';
        key += name;
        if (name == "accept-encoding") {
            key += '=';
            append_field(key, coding);
            continue;
        }
        // Every value of the field, joined as a WSGI environ would join them; an absent field
        // must not share a key with an empty one (RFC 9111 §4.1).
        bool present = false;
        std::string joined;
        for (const auto& h : request_->headers) {
            if (!iequals(h.name, name)) continue;
            if (present) joined += ", ";
            joined += h.value;
            present = true;
        }
        if (present) {
            key += '=';
            append_field(key, joined);
        } else {
            key += '-';
        }
    }
    return key;
}

std::vector<std::string> vary_names(const std::vector<HttpHeader>& response_headers) {
    std::vector<std::string> names;
    for (const auto& h : response_headers) {
        if (!iequals(h.name, "vary")) continue;
        for_each_list_element(h.value, [&](std::string_view item) { names.push_back(to_lower(item)); });
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    return names;
}

std::string join_vary(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) {
        if (!out.empty()) out += ',';
        out += n;
    }
    return out;
}

std::vector<std::string> split_vary(std::string_view joined) {
    std::vector<std::string> out;
    while (!joined.empty()) {
        auto comma = joined.find(',');
        out.emplace_back(joined.substr(0, comma));
        if (comma == std::string_view::npos) break;
        joined.remove_prefix(comma + 1);
    }
    return out;
}

}  // namespace gantry
