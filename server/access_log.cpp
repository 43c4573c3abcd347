#include "server/access_log.hpp"
#include "http/header_fields.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace gantry {

namespace {

using Atom = AccessLogFormat::Atom;

Atom letter_atom(char c) {
    switch (c) {
        case 'h': return Atom::remote_addr;
        case 'l': return Atom::dash;
        case 'u': return Atom::user;
        case 't': return Atom::time;
        case 'r': return Atom::request_line;
        case 'm': return Atom::method;
        case 'U': return Atom::path;
        case 'q': return Atom::query;
        case 'H': return Atom::protocol;
        case 's': return Atom::status;
        case 'B': return Atom::bytes_zero;
        case 'b': return Atom::bytes_dash;
        case 'f': return Atom::referer;
        case 'a': return Atom::user_agent;
        case 'T': return Atom::seconds;
        case 'D': return Atom::microseconds;
        case 'M': return Atom::milliseconds;
        case 'L': return Atom::decimal_seconds;
        case 'p': return Atom::pid;
        default: return Atom::unknown;
    }
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// "h" -> remote_addr; "{user-agent}i" -> request_header "user-agent"; anything else -> unknown.
AccessLogFormat::Piece compile_atom(std::string_view name) {
    if (name.size() == 1) return {letter_atom(name[0]), {}};
    if (name == "timing") return {Atom::timing, {}};
    if (name == "ws") return {Atom::websocket, {}};
    if (name.size() >= 3 && name.front() == '{' && name[name.size() - 2] == '}') {
        std::string_view inner = name.substr(1, name.size() - 3);
        switch (name.back()) {
            case 'i': return {Atom::request_header, lower(inner)};
            case 'o': return {Atom::response_header, lower(inner)};
            case 'e': return {Atom::environ, std::string(inner)};  // variable names are case-sensitive
            default: break;
        }
    }
    return {Atom::unknown, {}};
}

void append_number(std::string& out, std::uint64_t v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
}

// Values that come from the client are escaped the way Apache does it, so a hostile header can
// neither forge a line (control bytes) nor break the quoting of the default format ('"').
void append_escaped(std::string& out, std::string_view v) {
    static constexpr char hex[] = "0123456789abcdef";
    for (char c : v) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 0xf];
        } else if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else {
            out += c;
        }
    }
}

void append_or_dash(std::string& out, std::string_view v) {
    if (v.empty())
        out += '-';
    else
        append_escaped(out, v);
}

const HttpHeader* find(const std::vector<HttpHeader>* headers, std::string_view name) {
    return headers ? find_field(*headers, name) : nullptr;
}

void append_header(std::string& out, const std::vector<HttpHeader>* headers, std::string_view lower_name) {
    const HttpHeader* h = find(headers, lower_name);
    append_or_dash(out, h ? std::string_view(h->value) : std::string_view());
}

// The path part of a request-target, without the query; absolute-form loses scheme and authority.
std::string_view target_path(std::string_view target) {
    if (auto scheme = target.find("://"); scheme != std::string_view::npos && target.front() != '/') {
        auto slash = target.find('/', scheme + 3);
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    return target.substr(0, target.find('?'));
}

std::string_view target_query(std::string_view target) {
    auto q = target.find('?');
    return q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// The user name of "Authorization: Basic base64(user:password)", or "" (gunicorn's %(u)s).
std::string basic_auth_user(const std::vector<HttpHeader>* headers) {
    const HttpHeader* h = find(headers, "authorization");
    if (!h) return {};
    std::string_view v = h->value;
    if (!istarts_with(v, "basic ")) return {};
    v.remove_prefix(6);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    std::string decoded;
    unsigned bits = 0;
    int nbits = 0;
    std::size_t i = 0;
    for (; i < v.size() && v[i] != '='; ++i) {
        int d = base64_value(v[i]);
        if (d < 0) return {};  // not base64: gunicorn logs no user either
        bits = (bits << 6) | static_cast<unsigned>(d);
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            decoded += static_cast<char>((bits >> nbits) & 0xff);
        }
    }
    for (; i < v.size(); ++i)
        if (v[i] != '=') return {};
    return decoded.substr(0, decoded.find(':'));
}

// "[26/Nov/2026:21:39:39 +0000]" in local time, as gunicorn's %(t)s. Cached per thread for the
// current second: a busy server formats the same second thousands of times.
void append_time(std::string& out, std::chrono::system_clock::time_point tp) {
    thread_local std::time_t cached_second = -1;
    thread_local char cached[40];
    thread_local std::size_t cached_len = 0;
    std::time_t t = std::chrono::system_clock::to_time_t(tp);
    if (t != cached_second) {
        static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        std::tm tm{};
        ::localtime_r(&t, &tm);
        long off = tm.tm_gmtoff / 60;
        char sign = off < 0 ? '-' : '+';
        if (off < 0) off = -off;
        int n = std::snprintf(cached, sizeof cached, "[%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld]", tm.tm_mday,
                              months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
                              off / 60, off % 60);
        cached_len = n > 0 ? static_cast<std::size_t>(n) : 0;
        cached_second = t;
    }
    out.append(cached, cached_len);
}

void append_protocol(std::string& out, unsigned version) {
    out += "HTTP/";
    append_number(out, version / 10);
    out += '.';
    append_number(out, version % 10);
}

}  // namespace

AccessLogFormat::AccessLogFormat(std::string_view fmt) {
    auto add_literal = [&](std::string_view text) {
        if (text.empty()) return;
        if (!pieces_.empty() && pieces_.back().atom == Atom::literal)
            pieces_.back().text += text;
        else
            pieces_.push_back({Atom::literal, std::string(text)});
    };
    std::size_t i = 0;
    while (i < fmt.size()) {
        auto pct = fmt.find('%', i);
        if (pct == std::string_view::npos) {
            add_literal(fmt.substr(i));
            break;
        }
        add_literal(fmt.substr(i, pct - i));
        // Python %-formatting, as gunicorn applies it: "%%" and "%(name)<conversion>".
        if (pct + 1 < fmt.size() && fmt[pct + 1] == '%') {
            add_literal("%");
            i = pct + 2;
            continue;
        }
        if (pct + 1 < fmt.size() && fmt[pct + 1] == '(') {
            auto close = fmt.find(')', pct + 2);
            if (close != std::string_view::npos && close + 1 < fmt.size() &&
                std::string_view("sdirf").find(fmt[close + 1]) != std::string_view::npos) {
                pieces_.push_back(compile_atom(fmt.substr(pct + 2, close - pct - 2)));
                i = close + 2;
                continue;
            }
        }
        add_literal("%");  // a lone '%' stays as text rather than failing every line
        i = pct + 1;
    }
}

std::string AccessLogFormat::format(const AccessLogRecord& r) const {
    std::string out;
    out.reserve(256);
    format_to(out, r);
    return out;
}

void AccessLogFormat::format_to(std::string& out, const AccessLogRecord& r) const {
    using namespace std::chrono;
    const auto us = static_cast<std::uint64_t>(std::max<long long>(0, duration_cast<microseconds>(r.duration).count()));
    for (const Piece& p : pieces_) {
        switch (p.atom) {
            case Atom::literal: out += p.text; break;
            case Atom::remote_addr: append_or_dash(out, r.remote_addr); break;
            case Atom::dash: out += '-'; break;
            case Atom::user: append_or_dash(out, basic_auth_user(r.request_headers)); break;
            case Atom::time: append_time(out, r.start); break;
            case Atom::request_line:
                append_escaped(out, r.method);
                out += ' ';
                append_escaped(out, r.target);
                out += ' ';
                append_protocol(out, r.version);
                break;
            case Atom::method: append_or_dash(out, r.method); break;
            case Atom::path: append_escaped(out, target_path(r.target)); break;
            case Atom::query: append_escaped(out, target_query(r.target)); break;
            case Atom::protocol: append_protocol(out, r.version); break;
            case Atom::status:
                if (r.status < 0) out += '-';
                else append_number(out, static_cast<std::uint64_t>(r.status));
                break;
            case Atom::bytes_zero: append_number(out, r.response_bytes); break;
            case Atom::bytes_dash:
                if (r.response_bytes == 0)
                    out += '-';
                else
                    append_number(out, r.response_bytes);
                break;
            case Atom::referer: append_header(out, r.request_headers, "referer"); break;
            case Atom::user_agent: append_header(out, r.request_headers, "user-agent"); break;
            case Atom::seconds: append_number(out, us / 1000000); break;
            case Atom::microseconds: append_number(out, us); break;
            case Atom::milliseconds: append_number(out, us / 1000); break;
            case Atom::decimal_seconds: {
                append_number(out, us / 1000000);
                char frac[8];
                std::snprintf(frac, sizeof frac, ".%06u", static_cast<unsigned>(us % 1000000));
                out += frac;
                break;
            }
            case Atom::pid:
                // getpid() per line, not cached: the format is compiled before the workers fork.
                out += '<';
                append_number(out, static_cast<std::uint64_t>(::getpid()));
                out += '>';
                break;
            case Atom::request_header: append_header(out, r.request_headers, p.text); break;
            case Atom::response_header: append_header(out, r.response_headers, p.text); break;
            case Atom::environ: {
                const char* v = std::getenv(p.text.c_str());
                append_or_dash(out, v ? std::string_view(v) : std::string_view());
                break;
            }
            case Atom::timing:
                if (r.timings)
                    append_timing_summary(out, *r.timings, r.middleware_names);
                else
                    out += '-';
                break;
            case Atom::websocket:
                if (r.websocket)
                    append_websocket_summary(out, *r.websocket);
                else
                    out += '-';
                break;
            case Atom::unknown: out += '-'; break;
        }
    }
}

namespace {

void append_ms(std::string& out, std::string_view name, std::int64_t ns) {
    if (!out.empty() && out.back() != ' ') out += ' ';
    char buf[48];
    int n = std::snprintf(buf, sizeof buf, "=%.3fms", static_cast<double>(ns) / 1e6);
    out.append(name);
    out.append(buf, static_cast<std::size_t>(n));
}

}  // namespace

void append_websocket_summary(std::string& out, const WebSocketTotals& ws) {
    out += "in=";
    append_number(out, ws.messages_received);
    out += "msg/";
    append_number(out, ws.bytes_received);
    out += "B out=";
    append_number(out, ws.messages_sent);
    out += "msg/";
    append_number(out, ws.bytes_sent);
    out += "B close=";
    append_number(out, static_cast<std::uint64_t>(ws.close_code));
}

void append_timing_summary(std::string& out, const RequestTimings& t, const std::vector<std::string>* names) {
    std::size_t start = out.size();
    std::string key;
    for (std::size_t i = 0; i < t.middleware_count; ++i) {
        key = "mw-" + (names && i < names->size() ? (*names)[i] : std::to_string(i));
        append_ms(out, key, t.on_request_ns[i] + t.on_response_ns[i]);
    }
    if (t.python_wait_ns >= 0) append_ms(out, "python-wait", t.python_wait_ns);
    if (t.app_ns >= 0) append_ms(out, "app", t.app_ns);
    if (const AppBreakdown* b = t.app_breakdown.get()) {
        if (b->view_ns >= 0) append_ms(out, "view", b->view_ns);
        append_ms(out, "db", b->db_ns);
        out += '/';
        out += std::to_string(b->db_queries);
        out += 'q';
        if (b->db_repeated > 0) out += "(" + std::to_string(b->db_repeated) + " repeated)";
    }
    if (t.write_ns >= 0) append_ms(out, "write", t.write_ns);
    append_ms(out, "total", t.total_ns);
    if (out.size() > start && out[start] == ' ') out.erase(start, 1);
}

std::string format_access_json(const AccessLogRecord& r) {
    using nlohmann::json;
    auto us = [](std::int64_t ns) { return static_cast<double>(ns) / 1000.0; };
    auto target = r.target;
    auto q = target.find('?');
    json record = {
        {"time", std::chrono::duration_cast<std::chrono::microseconds>(r.start.time_since_epoch()).count() / 1e6},
        {"remote", std::string(r.remote_addr)},
        {"method", std::string(r.method)},
        {"path", std::string(target.substr(0, q))},
        {"query", q == std::string_view::npos ? std::string() : std::string(target.substr(q + 1))},
        {"protocol", r.version == 10 ? "HTTP/1.0" : "HTTP/1.1"},
        {"status", r.status},
        {"bytes", r.response_bytes},
        {"duration_us", static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(r.duration).count()) / 1000.0},
        {"pid", ::getpid()},
    };
    json stages = json::object();
    if (r.timings) {
        const RequestTimings& t = *r.timings;
        for (std::size_t i = 0; i < t.middleware_count; ++i) {
            std::string name = r.middleware_names && i < r.middleware_names->size() ? (*r.middleware_names)[i]
                                                                                    : std::to_string(i);
            stages["mw." + name + ".request_us"] = us(t.on_request_ns[i]);
            stages["mw." + name + ".response_us"] = us(t.on_response_ns[i]);
        }
        if (t.python_wait_ns >= 0) stages["python_wait_us"] = us(t.python_wait_ns);
        if (t.app_ns >= 0) stages["app_us"] = us(t.app_ns);
        if (t.write_ns >= 0) stages["write_us"] = us(t.write_ns);
        record["total_us"] = us(t.total_ns);
        if (const AppBreakdown* b = t.app_breakdown.get()) {
            // Inside the app: nested in app_us, so kept out of the top-level stages that add up.
            json django = json::object();
            json middleware = json::array();  // outermost first, as in settings.MIDDLEWARE
            for (const auto& [name, ns] : b->middleware_ns) middleware.push_back({{"name", name}, {"us", us(ns)}});
            django["middleware"] = std::move(middleware);
            if (b->view_ns >= 0) {
                django["view"] = b->view;
                django["view_us"] = us(b->view_ns);
            }
            django["db"] = {{"queries", b->db_queries}, {"repeated", b->db_repeated}, {"us", us(b->db_ns)}};
            record["django"] = std::move(django);
        }
    }
    record["stages"] = std::move(stages);
    if (const WebSocketTotals* ws = r.websocket) {
        record["websocket"] = {{"messages_received", ws->messages_received}, {"bytes_received", ws->bytes_received},
                               {"messages_sent", ws->messages_sent},         {"bytes_sent", ws->bytes_sent},
                               {"close_code", ws->close_code}};
    }
    // Bytes from the client that are not UTF-8 are replaced rather than failing the record.
    return record.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace gantry
