#include "server/response_framing.hpp"
#include "http/header_fields.hpp"

#include <charconv>
#include <ctime>
#include <string_view>

#include <strings.h>

namespace gantry {

namespace {


bool contains_token(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        auto comma = list.find(',');
        auto item = list.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (iequals(item, token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

void append_number(std::string& out, std::uint64_t n) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), n);
    out.append(buf, end);
}

std::optional<std::uint64_t> parse_length(std::string_view v) {
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size() || v.empty()) return std::nullopt;
    return n;
}

}  // namespace

RenderedHead render_head(const ResponseHead& head, const RequestFacts& request,
                         std::optional<std::uint64_t> whole_body_size) {
    RenderedHead out;
    out.keep_alive = request.keep_alive && !request.must_close;
    const bool bodyless_status = (head.status >= 100 && head.status < 200) || head.status == 204 || head.status == 304;

    std::optional<std::uint64_t> app_length;
    bool has_server = false, has_date = false;
    std::string& s = out.bytes;
    s.reserve(256);
    s.append("HTTP/1.1 ");
    append_number(s, static_cast<std::uint64_t>(head.status));
    s.push_back(' ');
    s.append(head.reason.empty() ? reason_phrase(head.status) : head.reason);
    s.append("\r\n");
    for (const auto& h : head.headers) {
        // Hop-by-hop headers are the server's business (PEP 3333): the framing is ours, but an
        // app that asks to close the connection gets its way.
        if (iequals(h.name, "Connection")) {
            if (contains_token(h.value, "close")) out.keep_alive = false;
            continue;
        }
        if (iequals(h.name, "Transfer-Encoding") || iequals(h.name, "Keep-Alive")) continue;
        if (iequals(h.name, "Content-Length")) {
            app_length = parse_length(h.value);
            continue;  // re-emitted below, once, with the value we actually honour
        }
        if (iequals(h.name, "Server")) has_server = true;
        if (iequals(h.name, "Date")) has_date = true;
        s.append(h.name).append(": ").append(h.value).append("\r\n");
    }
    if (!has_server) s.append("Server: gantry\r\n");
    if (!has_date) s.append("Date: ").append(http_date_now()).append("\r\n");

    if (bodyless_status) {
        out.framing = BodyFraming::none;
        if (app_length && head.status != 204 && !(head.status < 200)) {
            s.append("Content-Length: ");
            append_number(s, *app_length);
            s.append("\r\n");
        }
    } else if (whole_body_size) {
        // The whole body is known: the app's Content-Length if it gave one (we send at most that
        // many bytes), else the real size.
        std::uint64_t length = app_length ? *app_length : *whole_body_size;
        s.append("Content-Length: ");
        append_number(s, length);
        s.append("\r\n");
        out.framing = request.is_head ? BodyFraming::none : BodyFraming::content_length;
        out.content_length = length;
        // Fewer bytes than promised: the close tells the client the response is cut short.
        if (!request.is_head && *whole_body_size < length) out.keep_alive = false;
    } else if (app_length) {
        s.append("Content-Length: ");
        append_number(s, *app_length);
        s.append("\r\n");
        out.framing = request.is_head ? BodyFraming::none : BodyFraming::content_length;
        out.content_length = *app_length;
    } else if (request.is_head) {
        out.framing = BodyFraming::none;
    } else if (request.version >= 11) {
        s.append("Transfer-Encoding: chunked\r\n");
        out.framing = BodyFraming::chunked;
    } else {
        out.framing = BodyFraming::until_close;
        out.keep_alive = false;
    }

    if (!out.keep_alive)
        s.append("Connection: close\r\n");
    else if (request.version == 10)
        s.append("Connection: keep-alive\r\n");
    s.append("\r\n");
    return out;
}

std::string render_error_response(int status, const char* reason, bool keep_alive, bool with_body) {
    std::string body = std::to_string(status) + " " + reason + "\n";
    std::string s = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
    s += "Server: gantry\r\nDate: " + http_date_now() + "\r\n";
    s += "Content-Type: text/plain; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    s += keep_alive ? "" : "Connection: close\r\n";
    s += "\r\n";
    if (with_body) s += body;
    return s;
}

const char* reason_phrase(int status) {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

const std::string& http_date_now() {
    thread_local std::time_t cached_second = 0;
    thread_local std::string cached;
    std::time_t now = std::time(nullptr);
    if (now != cached_second) {
        cached_second = now;
        std::tm tm{};
        ::gmtime_r(&now, &tm);
        char buf[64];
        std::size_t n = std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached.assign(buf, n);
    }
    return cached;
}

}  // namespace gantry
