#pragma once
// A listen address as given to --bind: "host:port", "[v6]:port", ":port", "port" or "unix:/path".
#include <cstdint>
#include <string>
#include <string_view>

namespace gantry {

struct BindAddress {
    enum class Kind { tcp, unix_socket };
    Kind kind = Kind::tcp;
    std::string host;      // tcp: literal address or hostname, without brackets ("::1")
    std::uint16_t port = 0;
    std::string path;      // unix_socket: filesystem path

    // As a user would write it: "127.0.0.1:8000", "[::1]:8000", "unix:/run/g.sock".
    std::string to_string() const;
    bool operator==(const BindAddress&) const = default;
};

// Throws std::invalid_argument with a message naming the bad text.
BindAddress parse_bind_address(std::string_view text);

}  // namespace gantry
