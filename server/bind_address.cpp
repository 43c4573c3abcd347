#include "server/bind_address.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <charconv>
#include <stdexcept>

namespace gantry {

namespace {

constexpr std::uint16_t kDefaultPort = 8000;  // gunicorn's default when only a host is given

[[noreturn]] void fail(std::string_view text, std::string_view why) {
    throw std::invalid_argument("invalid bind address '" + std::string(text) + "': " + std::string(why));
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

std::uint16_t parse_port(std::string_view text, std::string_view port) {
    if (!all_digits(port)) fail(text, "'" + std::string(port) + "' is not a valid port number");
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    // 0 is kept, as gunicorn keeps it: the kernel picks a free port.
    if (ec != std::errc() || end != port.data() + port.size() || value > 65535)
        fail(text, "port " + std::string(port) + " is out of range 0-65535");
    return static_cast<std::uint16_t>(value);
}

// An IPv6 literal as found between brackets, optionally with a zone ("fe80::1%eth0").
bool valid_ipv6(std::string_view host) {
    std::string addr(host.substr(0, host.find('%')));
    if (addr.size() != host.size() && addr.size() + 1 == host.size()) return false;  // empty zone
    in6_addr out{};
    return ::inet_pton(AF_INET6, addr.c_str(), &out) == 1;
}

// A hostname or IPv4 literal: letters, digits, '-', '.', '_' (the resolver decides the rest).
bool valid_host(std::string_view host) {
    if (host.empty()) return false;
    for (char c : host) {
        auto u = static_cast<unsigned char>(c);
        if (!std::isalnum(u) && c != '-' && c != '.' && c != '_') return false;
    }
    return true;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

std::string BindAddress::to_string() const {
    if (kind == Kind::unix_socket) return "unix:" + path;
    std::string out;
    if (host.find(':') != std::string::npos)
        out = "[" + host + "]";
    else
        out = host;
    return out + ":" + std::to_string(port);
}

BindAddress parse_bind_address(std::string_view text) {
    if (text.empty()) fail(text, "empty");
    BindAddress addr;

    // "unix:/path" and gunicorn's "unix:///path" spelling.
    if (text.starts_with("unix:")) {
        std::string_view path = text.substr(5);
        if (path.starts_with("//")) path.remove_prefix(2);
        if (path.empty()) fail(text, "no socket path after 'unix:'");
        addr.kind = BindAddress::Kind::unix_socket;
        addr.path = std::string(path);
        return addr;
    }

    std::string_view rest = text;
    if (rest.starts_with("tcp://")) rest.remove_prefix(6);  // gunicorn accepts this prefix too
    if (rest.empty()) fail(text, "empty");

    if (rest.front() == '[') {
        auto close = rest.find(']');
        if (close == std::string_view::npos) fail(text, "missing ']' after the IPv6 address");
        std::string_view host = rest.substr(1, close - 1);
        if (!valid_ipv6(host)) fail(text, "'" + std::string(host) + "' is not an IPv6 address");
        std::string_view after = rest.substr(close + 1);
        addr.host = lower(host);
        if (after.empty()) {
            addr.port = kDefaultPort;
        } else if (after.front() == ':') {
            addr.port = parse_port(text, after.substr(1));
        } else {
            fail(text, "expected ':port' after ']'");
        }
        return addr;
    }

    auto colon = rest.find(':');
    if (colon == std::string_view::npos) {
        if (all_digits(rest)) {
            // A bare port listens on gantry's default host, like a bare --bind 8000 would
            // surprise nobody: loopback, never all interfaces by accident.
            addr.host = "127.0.0.1";
            addr.port = parse_port(text, rest);
        } else {
            if (!valid_host(rest)) fail(text, "'" + std::string(rest) + "' is not a valid host");
            addr.host = lower(rest);
            addr.port = kDefaultPort;
        }
        return addr;
    }
    if (rest.find(':', colon + 1) != std::string_view::npos)
        fail(text, "an IPv6 address must be written in brackets, e.g. [::1]:8000");

    std::string_view host = rest.substr(0, colon);
    std::string_view port = rest.substr(colon + 1);
    if (host.empty()) {
        addr.host = "0.0.0.0";  // ":8000" means all interfaces, as in gunicorn
    } else {
        if (!valid_host(host)) fail(text, "'" + std::string(host) + "' is not a valid host");
        addr.host = lower(host);
    }
    if (port.empty()) fail(text, "missing port after ':'");
    addr.port = parse_port(text, port);
    return addr;
}

}  // namespace gantry
