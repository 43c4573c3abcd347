#pragma once
// gunicorn's --access-logformat: the format string is compiled once into pieces (literal text and
// atoms); each request is then formatted by walking the pieces, with no parsing or regex per line.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_timings.hpp"
#include "http/request.hpp"

namespace gantry {

// A WebSocket session's traffic, for its one access-log line: messages and payload bytes each
// way, and the close code it ended with (1006: the connection dropped without a close).
struct WebSocketTotals {
    std::uint64_t messages_received = 0;
    std::uint64_t bytes_received = 0;
    std::uint64_t messages_sent = 0;
    std::uint64_t bytes_sent = 0;
    int close_code = 0;
};

// What one finished request contributes to its access-log line. Views and pointers only: they
// must outlive the format() call, nothing more.
struct AccessLogRecord {
    std::string_view remote_addr;   // "127.0.0.1"; empty for a unix socket (logged as "-")
    std::string_view method;        // "GET"
    std::string_view target;        // raw request-target as received: "/p?q=1"
    unsigned version = 11;          // 10 = HTTP/1.0, 11 = HTTP/1.1
    const std::vector<HttpHeader>* request_headers = nullptr;
    const std::vector<HttpHeader>* response_headers = nullptr;
    int status = 0;
    std::uint64_t response_bytes = 0;                       // body bytes sent
    std::chrono::system_clock::time_point start{};          // when the request arrived (%(t)s)
    std::chrono::steady_clock::duration duration{};         // how long it took (%(T)s %(D)s ...)
    const RequestTimings* timings = nullptr;                // the stages, for %(timing)s; may be null
    const std::vector<std::string>* middleware_names = nullptr;  // names of timings' middleware entries
    const WebSocketTotals* websocket = nullptr;             // a WebSocket session (status 101); else null
};

// The stages as "mw-timing=0.002ms python-wait=0.010ms app=3.104ms write=0.051ms" (%(timing)s).
void append_timing_summary(std::string& out, const RequestTimings& timings, const std::vector<std::string>* names);

// A WebSocket session as "in=3msg/120B out=3msg/120B close=1000" (%(ws)s).
void append_websocket_summary(std::string& out, const WebSocketTotals& ws);

// One JSON object (no newline) with the request and every stage in microseconds: the record of
// --access-log-json.
std::string format_access_json(const AccessLogRecord& record);

class AccessLogFormat {
public:
    // Accepts any text; unknown atoms format as "-" (as gunicorn does). Never throws on content.
    explicit AccessLogFormat(std::string_view fmt);

    std::string format(const AccessLogRecord& record) const;
    // Appends to `out` (reuse one buffer per thread to avoid an allocation per line).
    void format_to(std::string& out, const AccessLogRecord& record) const;

    enum class Atom {
        literal,
        remote_addr,     // h
        dash,            // l
        user,            // u
        time,            // t
        request_line,    // r
        method,          // m
        path,            // U
        query,           // q
        protocol,        // H
        status,          // s
        bytes_zero,      // B
        bytes_dash,      // b
        referer,         // f
        user_agent,      // a
        seconds,         // T
        microseconds,    // D
        milliseconds,    // M
        decimal_seconds, // L
        pid,             // p
        request_header,  // {name}i
        response_header, // {name}o
        environ,         // {name}e
        timing,          // timing: where the time went, stage by stage (gantry's own atom)
        websocket,       // ws: a WebSocket session's messages, bytes and close code (gantry's own atom)
        unknown,         // anything else: "-"
    };
    struct Piece {
        Atom atom = Atom::literal;
        std::string text;  // literal text, or the lower-cased header / variable name
    };
    const std::vector<Piece>& pieces() const { return pieces_; }

private:
    std::vector<Piece> pieces_;
};

}  // namespace gantry
