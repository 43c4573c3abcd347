#pragma once
// URL path -> the relative name of a static file, or "not found". Pure string work: the index is
// then looked up by that name and the filesystem is never asked about a client's path, so no
// spelling of "..", of an encoded slash or of a bad byte can name a file outside a root.
#include <optional>
#include <string>
#include <string_view>

namespace gantry {

// `rest`: the request-target after the mount's URL prefix, as received ("css/site.css?v=2").
// Returns the percent-decoded relative name ("css/site.css"), or nullopt when the path
//  - has a bad or encoded-separator escape (%2f, %5c, %00, "%zz", a lone "%"),
//  - holds a backslash, NUL or another control byte, raw or decoded,
//  - is not strict UTF-8 once decoded (overlong forms such as %c0%ae, surrogates, truncations),
//  - has an empty, "." or ".." segment, or any segment starting with "." (dotfiles),
//  - is empty or ends with "/" (a directory: no listings).
std::optional<std::string> resolve_static_path(std::string_view rest);

}  // namespace gantry
