#pragma once
// Reading a middleware's options, which arrive as text (`[[middleware]]` keys in the TOML file): each
// helper names the middleware and the option in its error, so a factory only says which to read.
#include <string>
#include <string_view>
#include <vector>

#include "http/config_error.hpp"
#include "middleware/middleware_spec.hpp"

namespace gantry {

// true/1/yes/on or false/0/no/off.
bool bool_option(const MiddlewareSpec& spec, const std::string& key, const std::string& value);
// A decimal integer in [lo, hi].
long int_option(const MiddlewareSpec& spec, const std::string& key, const std::string& value, long lo, long hi);
// A whole number >= 0 (seconds, bytes).
long long count_option(const MiddlewareSpec& spec, const std::string& key, const std::string& value);
// "a, b,c" -> {"a", "b", "c"} (empty items dropped).
std::vector<std::string> list_option(const std::string& value);

// "middleware 'NAME': " + detail.
[[noreturn]] void option_error(const MiddlewareSpec& spec, const std::string& detail);
// An option the middleware does not have; `known` lists those it has, in its documented order.
[[noreturn]] void unknown_option(const MiddlewareSpec& spec, const std::string& key, std::string_view known);

}  // namespace gantry
