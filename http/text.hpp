#pragma once
// The small text helpers every folder needs for HTTP's grammar (RFC 9110 §5.6): optional
// whitespace, comma-separated lists, ASCII case-insensitive tokens, hex digits. One copy each.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace gantry {

// Without leading and trailing OWS (spaces and horizontal tabs).
inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

inline char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = ascii_lower(c);
    return out;
}

// Field names, tokens and directives compare without regard to ASCII case (RFC 9110 §5.1); the
// locale plays no part.
inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

inline bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// RFC 9110 §5.6.2 tchar: the characters of a token (a field name, a method, a coding).
inline bool is_tchar(char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != 0 && std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
inline bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

// A header field value as a server may send it (RFC 9110 5.5): no control bytes but HTAB.
inline bool is_field_value(std::string_view s) {
    for (unsigned char c : s)
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    return true;
}

// Whether `bytes` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, <= U+10FFFF).
bool is_strict_utf8(std::string_view bytes);

// 0-15 for a hex digit, -1 for anything else.
inline int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Calls f(element) for each non-empty element of a comma-separated list, trimmed: "gzip, chunked"
// gives "gzip" and "chunked" (empty elements are allowed and ignored, RFC 9110 §5.6.1). Commas
// inside quoted strings do not split (Cache-Control: private="a, b").
template <class F>
void for_each_list_element(std::string_view list, F&& f) {
    std::size_t start = 0;
    bool quoted = false;
    for (std::size_t i = 0; i <= list.size(); ++i) {
        if (i < list.size()) {
            char c = list[i];
            if (c == '"') quoted = !quoted;
            if (c == '\\' && quoted) {
                ++i;
                continue;
            }
            if (c != ',' || quoted) continue;
        }
        std::string_view element = trim(list.substr(start, i - start));
        if (!element.empty()) f(element);
        start = i + 1;
    }
}

// The items of a comma-separated setting, trimmed, empty ones skipped: "a, b,,c" -> {"a", "b",
// "c"} (--forwarded-allow-ips, --pythonpath, middleware options). Quotes mean nothing here: a
// setting is not a header.
inline std::vector<std::string> split_commas(std::string_view list) {
    std::vector<std::string> out;
    while (true) {
        auto comma = list.find(',');
        std::string_view item = trim(list.substr(0, comma));
        if (!item.empty()) out.emplace_back(item);
        if (comma == std::string_view::npos) return out;
        list.remove_prefix(comma + 1);
    }
}

// Whether the comma-separated list holds `token`, compared without regard to case.
inline bool list_contains(std::string_view list, std::string_view token) {
    bool found = false;
    for_each_list_element(list, [&](std::string_view e) { found = found || iequals(e, token); });
    return found;
}

}  // namespace gantry
