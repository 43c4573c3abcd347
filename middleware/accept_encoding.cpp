#include "middleware/accept_encoding.hpp"

#include <algorithm>
#include <cctype>

#include "http/text.hpp"

namespace gantry {

namespace {

void skip_ows(std::string_view s, std::size_t& i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
bool parse_qvalue(std::string_view s, double& q) {
    if (s.empty() || s.size() > 5 || (s[0] != '0' && s[0] != '1')) return false;
    if (s.size() == 1) {
        q = s[0] - '0';
        return true;
    }
    if (s[1] != '.') return false;
    double value = s[0] - '0', scale = 0.1;
    for (std::size_t i = 2; i < s.size(); ++i, scale /= 10) {
        if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
        value += (s[i] - '0') * scale;
    }
    if (value > 1) return false;
    q = value;
    return true;
}

}  // namespace

AcceptEncoding AcceptEncoding::parse(const std::string* header) {
    return header ? parse(std::string_view(*header)) : AcceptEncoding{};
}

AcceptEncoding AcceptEncoding::parse(std::string_view s) {
    AcceptEncoding out;
    std::size_t i = 0;
    for (;;) {
        skip_ows(s, i);
        if (i == s.size()) break;
        if (s[i] == ',') {  // empty list elements are allowed (RFC 9110 §5.6.1)
            ++i;
            continue;
        }
        Entry entry;
        std::size_t start = i;
        while (i < s.size() && is_tchar(s[i])) ++i;
        if (i == start) return {};
        entry.coding.assign(s.substr(start, i - start));
        std::transform(entry.coding.begin(), entry.coding.end(), entry.coding.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (entry.coding == "x-gzip") entry.coding = "gzip";
        skip_ows(s, i);
        while (i < s.size() && s[i] == ';') {  // parameters: only q means anything here
            ++i;
            skip_ows(s, i);
            std::size_t name_start = i;
            while (i < s.size() && is_tchar(s[i])) ++i;
            std::string_view name = s.substr(name_start, i - name_start);
            if (name.empty() || i == s.size() || s[i] != '=') return {};
            ++i;
            std::size_t value_start = i;
            while (i < s.size() && is_tchar(s[i])) ++i;
            std::string_view value = s.substr(value_start, i - value_start);
            if (name == "q" || name == "Q") {
                if (!parse_qvalue(value, entry.q)) return {};
            } else if (value.empty()) {
                return {};
            }
            skip_ows(s, i);
        }
        if (i < s.size() && s[i] != ',') return {};
        out.entries_.push_back(std::move(entry));
    }
    return out;
}

double AcceptEncoding::listed_quality(std::string_view coding) const {
    double best = -1;
    for (const auto& e : entries_)
        if (e.coding == coding) best = std::max(best, e.q);  // a repeated coding: its best q
    return best;
}

double AcceptEncoding::quality(std::string_view coding) const {
    double listed = listed_quality(coding);
    if (listed >= 0) return listed;
    for (const auto& e : entries_)
        if (e.coding == "*") return e.q;
    return coding == "identity" ? 1.0 : 0.0;
}

std::string_view choose_encoding(const AcceptEncoding& accept, std::span<const std::string_view> offered) {
    std::string_view best;
    double best_q = 0;
    for (std::string_view coding : offered) {
        double q = accept.quality(coding);
        if (q > best_q) {
            best = coding;
            best_q = q;
        }
    }
    if (best_q > 0 && accept.listed_quality("identity") > best_q) return {};
    return best;
}

}  // namespace gantry
