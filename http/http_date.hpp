#pragma once
// HTTP-dates (RFC 9110 §5.6.7), read and written: Last-Modified, If-Modified-Since, Expires, Date.
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace gantry {

// Any of the three forms recipients must accept (IMF-fixdate, RFC 850, asctime); surrounding
// whitespace is ignored. nullopt when it is not an HTTP-date.
std::optional<std::time_t> parse_http_date(std::string_view text);
// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string format_http_date(std::time_t when);

}  // namespace gantry
