// libFuzzer target: the Accept-Encoding parser and the coding choice. Any header value must give
// q-values within 0..1 and a choice that is one of the codings offered (or identity).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "middleware/accept_encoding.hpp"

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view header(reinterpret_cast<const char*>(data), size);
    auto accept = gantry::AcceptEncoding::parse(header);
    static constexpr std::array<std::string_view, 5> codings{"zstd", "br", "gzip", "identity", "x-gzip"};
    for (auto coding : codings) {
        double q = accept.quality(coding);
        check(q >= 0 && q <= 1);
        double listed = accept.listed_quality(coding);
        check(listed == -1 || (listed >= 0 && listed <= 1));
    }
    static constexpr std::array<std::string_view, 3> offered{"zstd", "br", "gzip"};
    auto chosen = gantry::choose_encoding(accept, offered);
    check(chosen.empty() || chosen == "zstd" || chosen == "br" || chosen == "gzip");
    if (!chosen.empty()) check(accept.acceptable(chosen));
    return 0;
}
