#pragma once
// X-Forwarded-For / X-Forwarded-Proto from trusted proxies (--forwarded-allow-ips). Pure: the
// session applies it to each request before anything reads the client's address or scheme.
#include <string>
#include <vector>

#include "http/request.hpp"

namespace gantry {

// Whether `peer` is allowed to set X-Forwarded-For/-Proto: listed, or the list holds "*".
// Unix-socket peers (empty address) are local and trusted.
bool is_trusted_proxy(const std::string& peer, const std::vector<std::string>& allow);

// Applies X-Forwarded-For (the right-most address not itself a trusted proxy) and
// X-Forwarded-Proto to the request when its peer is trusted.
void apply_forwarded_headers(HttpRequest& request, const std::vector<std::string>& allow);

}  // namespace gantry
