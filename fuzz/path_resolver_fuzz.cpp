// libFuzzer target: the static path resolver, URL path -> relative file name. Whatever it
// accepts must be a name that cannot leave the static root: no "..", "." or empty segment, no
// leading "/", no backslash or control byte, strict UTF-8.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/text.hpp"
#include "static/path_resolver.hpp"

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view rest(reinterpret_cast<const char*>(data), size);
    (void)gantry::is_strict_utf8(rest);
    auto name = gantry::resolve_static_path(rest);
    if (!name) return 0;
    const std::string& n = *name;
    check(!n.empty());
    check(n.front() != '/' && n.back() != '/');
    check(gantry::is_strict_utf8(n));
    for (unsigned char c : n) check(c >= 0x20 && c != 0x7f && c != '\\');
    std::size_t start = 0;
    while (start <= n.size()) {
        std::size_t slash = n.find('/', start);
        if (slash == std::string::npos) slash = n.size();
        std::string_view segment(n.data() + start, slash - start);
        check(!segment.empty() && segment.front() != '.');
        start = slash + 1;
    }
    return 0;
}
