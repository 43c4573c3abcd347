#include "server/forwarded_headers.hpp"

#include <string_view>

namespace gantry {

bool is_trusted_proxy(const std::string& peer, const std::vector<std::string>& allow) {
    if (peer.empty()) return true;
    for (const auto& a : allow)
        if (a == "*" || a == peer) return true;
    return false;
}

void apply_forwarded_headers(HttpRequest& request, const std::vector<std::string>& allow) {
    if (!is_trusted_proxy(request.remote_addr, allow)) return;
    if (const HttpHeader* xff = request.find_header("X-Forwarded-For")) {
        // Walk from the right: each trusted hop vouches for the one before it; the first address
        // not itself a trusted proxy is the client. Trusting everyone ("*") means the left-most.
        std::vector<std::string_view> hops;
        std::string_view list = xff->value;
        while (!list.empty()) {
            auto comma = list.find(',');
            std::string_view item = list.substr(0, comma);
            list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
            while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
            while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
            if (!item.empty()) hops.push_back(item);
        }
        std::string chosen;
        for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
            chosen.assign(*it);
            if (!is_trusted_proxy(chosen, allow)) break;
        }
        if (!chosen.empty()) {
            request.remote_addr = chosen;
            request.remote_port = 0;
        }
    }
    if (const HttpHeader* proto = request.find_header("X-Forwarded-Proto")) {
        if (proto->value == "https" || proto->value == "http") request.url_scheme = proto->value;
    }
}

}  // namespace gantry
