#pragma once
// A parsed HTTP request with its body and the facts about its connection: everything the
// application side needs to build a WSGI environ, in plain C++ types (no Beast, no Python).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_body.hpp"
#include "http/request_body_stream.hpp"

namespace gantry {

struct HttpHeader {
    std::string name;   // as received (case preserved)
    std::string value;  // leading/trailing whitespace stripped
};

struct HttpRequest {
    std::string method;            // "GET"
    std::string target;            // raw request-target: "/a%20b?x=1" (or absolute-form)
    unsigned version = 11;         // 10 = HTTP/1.0, 11 = HTTP/1.1
    std::vector<HttpHeader> headers;
    RequestBody body;
    // Set when the body is streamed to the app as it arrives (the dispatcher asked for it, and it
    // had not all arrived with the head): `body` holds nothing then.
    std::shared_ptr<RequestBodyStream> body_stream;

    // The connection it came on. remote_* are already replaced by X-Forwarded-For when the peer
    // is trusted (--forwarded-allow-ips), and url_scheme by X-Forwarded-Proto.
    std::string remote_addr;       // "127.0.0.1", "::1", "" for a unix socket
    std::uint16_t remote_port = 0;
    std::string server_name;       // the listening address ("127.0.0.1", "unix:/path")
    std::uint16_t server_port = 0;
    std::string url_scheme = "http";
    bool keep_alive = true;        // what the client asked for (Connection header / version)

    bool is_head() const { return method == "HEAD"; }
    // The first header with this name (case-insensitive), or nullptr.
    const HttpHeader* find_header(std::string_view name) const;
};

// The request-target split for PATH_INFO and QUERY_STRING: path percent-decoded to raw bytes
// (to be read as latin-1, as PEP 3333 says), query left as received. An absolute-form target
// ("http://host/p?q") yields its path.
struct TargetParts {
    std::string path;
    std::string query;
};
TargetParts split_target(std::string_view target);

}  // namespace gantry
