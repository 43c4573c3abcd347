#pragma once
// The status line and header fields of a response, as the app (or a middleware) gave them.
#include <string>
#include <vector>

#include "http/request.hpp"

namespace gantry {

struct ResponseHead {
    int status = 200;
    std::string reason;               // "OK"; the app's own reason phrase
    std::vector<HttpHeader> headers;  // validated by the app side: no CR/LF, valid token names
};

}  // namespace gantry
