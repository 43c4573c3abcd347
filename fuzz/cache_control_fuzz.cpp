// libFuzzer target: the Cache-Control parser (one field, and the same bytes split into several
// fields at each NUL), and the Vary-style list lookup. Delta-seconds are never negative.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "cache/cache_control.hpp"
#include "http/text.hpp"

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

void check_deltas(const gantry::CacheControl& cc) {
    for (const auto* v : {&cc.max_age, &cc.s_maxage, &cc.stale_while_revalidate, &cc.stale_if_error})
        if (*v) check(**v >= 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view value(reinterpret_cast<const char*>(data), size);
    check_deltas(gantry::CacheControl::parse(value));

    std::vector<std::string_view> fields;
    std::size_t start = 0;
    while (start <= value.size()) {
        std::size_t nul = value.find('\0', start);
        if (nul == std::string_view::npos) nul = value.size();
        fields.push_back(value.substr(start, nul - start));
        start = nul + 1;
    }
    check_deltas(gantry::CacheControl::parse(fields));
    if (fields.size() >= 2) (void)gantry::list_contains(fields[0], fields[1]);
    (void)gantry::list_contains(value, "accept-encoding");
    return 0;
}
