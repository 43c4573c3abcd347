#include "server/request_parser.hpp"
#include "http/header_fields.hpp"

#include <algorithm>
#include <bitset>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

namespace gantry {

namespace http = boost::beast::http;
using boost::beast::error_code;

namespace {

// "METHOD SP target SP HTTP/D.D" -> 10 * D + D, or -1 for any other shape of line.
int version_of_request_line(std::string_view line) {
    if (line.size() < 10 || std::count(line.begin(), line.end(), ' ') != 2) return -1;
    std::string_view tail = line.substr(line.size() - 9);  // " HTTP/D.D"
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (tail.substr(0, 6) != " HTTP/" || !digit(tail[6]) || tail[7] != '.' || !digit(tail[8])) return -1;
    return (tail[6] - '0') * 10 + (tail[8] - '0');
}

// A Host value (RFC 9110 7.2: uri-host [ ":" port ]): the characters of a reg-name, an IP literal
// and a port. Refuses what would make the authority mean something else ("a/b", "user@h", "a b").
bool valid_host(std::string_view host) {
    for (unsigned char c : host) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  std::string_view("-._~%!$&'()*+,;=:[]").find(static_cast<char>(c)) != std::string_view::npos;
        if (!ok) return false;
    }
    return true;
}

// absolute-form: scheme "://" ... with scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool is_absolute_form(std::string_view target) {
    auto colon = target.find("://");
    if (colon == std::string_view::npos || colon == 0) return false;
    for (std::size_t i = 0; i < colon; ++i) {
        char c = target[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!(alpha || (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')))) return false;
    }
    return true;
}

// The authority of an absolute-form target (RFC 3986 3.2): host [":" port], the host an IP
// literal in brackets, or a reg-name/IPv4 of unreserved, pct-encoded and sub-delim characters.
// userinfo ("u@h") is refused: RFC 9110 4.2.4 forbids it in http(s) URIs and it is a phishing and
// cache-confusion device. An empty authority has no host to route to.
bool valid_authority(std::string_view authority) {
    if (authority.empty()) return false;
    std::string_view host = authority, port;
    if (authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos || close == 1) return false;
        for (char c : authority.substr(1, close - 1))
            if (!(hex_value(c) >= 0 || c == ':' || c == '.')) return false;
        std::string_view rest = authority.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') return false;
        port = rest.empty() ? rest : rest.substr(1);
        host = authority.substr(0, close + 1);
    } else {
        auto colon = authority.rfind(':');
        if (colon != std::string_view::npos) {
            host = authority.substr(0, colon);
            port = authority.substr(colon + 1);
        }
        if (host.empty()) return false;
        for (std::size_t i = 0; i < host.size(); ++i) {
            unsigned char c = static_cast<unsigned char>(host[i]);
            if (c == '%') {
                if (i + 2 >= host.size() || hex_value(host[i + 1]) < 0 || hex_value(host[i + 2]) < 0) return false;
                i += 2;
                continue;
            }
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      std::string_view("-._~!$&'()*+,;=").find(static_cast<char>(c)) != std::string_view::npos;
            if (!ok) return false;
        }
    }
    if (port.size() > 5) return false;
    for (char c : port)
        if (c < '0' || c > '9') return false;
    return true;
}

// absolute-form: scheme "://" authority [ path-abempty ] [ "?" query ] (RFC 9112 3.2.2), with
// scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) and a valid authority.
bool valid_absolute_form(std::string_view target) {
    if (!is_absolute_form(target)) return false;
    std::string_view rest = target.substr(target.find("://") + 3);
    return valid_authority(rest.substr(0, rest.find_first_of("/?#")));
}

// Fields RFC 9110 defines as a single value, not a list: twice is a 400 (gunicorn refuses them
// too). Joining them for the app would let two parties read two different requests: which Host,
// which credentials, which body type.
bool is_singleton_field(http::field name) {
    switch (name) {
    case http::field::host:
    case http::field::content_length:
    case http::field::content_type:
    case http::field::content_location:
    case http::field::content_range:
    case http::field::authorization:
    case http::field::proxy_authorization:
    case http::field::date:
    case http::field::from:
    case http::field::if_modified_since:
    case http::field::if_unmodified_since:
    case http::field::if_range:
    case http::field::max_forwards:
    case http::field::range:
    case http::field::referer:
    case http::field::user_agent:
        return true;
    default:
        return false;
    }
}

// Fields a trailer section must not carry (RFC 9110 6.5.1): framing, routing, request modifiers,
// authentication, and what says how to read the content. A client sending them there is either
// broken or trying to have them read after a front proxy checked the header: 400.
bool is_forbidden_trailer(http::field name) {
    switch (name) {
    case http::field::transfer_encoding:
    case http::field::content_length:
    case http::field::host:
    case http::field::content_type:
    case http::field::content_encoding:
    case http::field::content_range:
    case http::field::trailer:
    case http::field::te:
    case http::field::expect:
    case http::field::max_forwards:
    case http::field::cache_control:
    case http::field::pragma:
    case http::field::range:
    case http::field::if_match:
    case http::field::if_none_match:
    case http::field::if_modified_since:
    case http::field::if_unmodified_since:
    case http::field::if_range:
    case http::field::authorization:
    case http::field::proxy_authorization:
    case http::field::cookie:
    case http::field::set_cookie:
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::upgrade:
    case http::field::proxy_connection:
        return true;
    default:
        return false;
    }
}

constexpr std::size_t kFieldKinds = static_cast<std::size_t>(http::field::xref) + 1;

}  // namespace

class RequestParser::Impl final : public http::basic_parser<true> {
public:
    const ParserLimits limits_;

    explicit Impl(const ParserLimits& limits) : limits_(limits) {
        request_.body = RequestBody(limits.body_memory);
        eager(true);
        // The whole header: the request line plus every allowed field at its largest.
        std::size_t header_limit = std::numeric_limits<std::uint32_t>::max();
        if (limits.request_line && limits.fields && limits.field_size)
            header_limit = limits.request_line + 2 + limits.fields * (limits.field_size + 2) + 2;
        this->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(header_limit, std::numeric_limits<std::uint32_t>::max())));
        // "Unlimited" is the largest value, not boost::none: Beast 1.74 compares the Content-Length
        // against the optional directly, and any number is greater than none.
        body_limit(limits.body ? static_cast<std::uint64_t>(limits.body) : std::numeric_limits<std::uint64_t>::max());
    }

    HttpRequest request_;
    int status_ = 0;           // set by our own checks, mapped from Beast's errors otherwise
    const char* reason_ = "";
    bool expect_continue_ = false;
    bool transfer_encoding_seen_ = false;
    std::bitset<kFieldKinds> singletons_seen_;
    std::size_t trailer_fields_ = 0;
    bool streaming_ = false;   // stream_body(): body bytes go to streamed_, not request_.body
    std::string streamed_;

private:
    void reject(error_code& ec, int status, const char* reason) {
        status_ = status;
        reason_ = reason;
        ec = http::error::bad_field;  // any error stops Beast; status_ says which answer
    }

    void on_request_impl(http::verb, std::string_view method, std::string_view target, int version,
                         error_code& ec) override {
        if (limits_.request_line && method.size() + 1 + target.size() + 9 > limits_.request_line)
            return reject(ec, 414, "Request-URI Too Long");
        // Beast gives 10 or 11 only; other versions are sorted out in put_checked().
        if (method == "CONNECT") return reject(ec, 501, "Not Implemented");  // no tunnels: not a proxy
        // origin-form ("/p?q"), absolute-form ("http://h/p"), or "*" for OPTIONS (RFC 9112 3.2).
        bool target_ok = (!target.empty() && target.front() == '/') || valid_absolute_form(target) ||
                         (target == "*" && method == "OPTIONS");
        if (!target_ok) return reject(ec, 400, "Bad Request");
        request_.method.assign(method);
        request_.target.assign(target);
        request_.version = static_cast<unsigned>(version);
    }

    void on_response_impl(int, std::string_view, int, error_code& ec) override {
        ec = http::error::bad_method;  // never called for a request parser
    }

    void on_field_impl(http::field name, std::string_view name_string, std::string_view value,
                       error_code& ec) override {
        if (limits_.field_size && name_string.size() + 2 + value.size() > limits_.field_size)
            return reject(ec, 431, "Request Header Fields Too Large");
        // Chunked trailers arrive here too. They are counted against the same limits; forbidden
        // ones are a 400 and the rest dropped (WSGI and ASGI 3.0 have no place for request
        // trailers): a header smuggled in after the body must not count as one.
        if (is_header_done()) {
            if (limits_.fields && ++trailer_fields_ > limits_.fields)
                return reject(ec, 431, "Request Header Fields Too Large");
            if (is_forbidden_trailer(name)) return reject(ec, 400, "Bad Request");
            return;
        }
        if (limits_.fields && request_.headers.size() >= limits_.fields)
            return reject(ec, 431, "Request Header Fields Too Large");
        // Beast has already refused Content-Length with Transfer-Encoding, conflicting
        // Content-Lengths and a repeated Transfer-Encoding header.
        if (name == http::field::transfer_encoding) {
            if (request_.version == 10)
                return reject(ec, 400, "Bad Request");  // RFC 9112 6.1: faulty framing in HTTP/1.0
            // The codings: chunked must come last and once, or the body length is unknowable
            // (RFC 9112 6.3: 400; Beast would quietly read no body and take the chunks for the
            // next request). Any other coding could only be passed on still encoded: 501.
            std::size_t codings = 0, chunked_at = 0, chunked_count = 0;
            for_each_list_element(value, [&](std::string_view coding) {
                ++codings;
                if (iequals(coding, "chunked")) {
                    ++chunked_count;
                    chunked_at = codings;
                }
            });
            if (chunked_count != 1 || chunked_at != codings) return reject(ec, 400, "Bad Request");
            if (codings != 1) return reject(ec, 501, "Not Implemented");
            transfer_encoding_seen_ = true;
        }
        if (name != http::field::unknown && is_singleton_field(name)) {
            auto kind = static_cast<std::size_t>(name);
            if (kind >= kFieldKinds || singletons_seen_.test(kind)) return reject(ec, 400, "Bad Request");
            singletons_seen_.set(kind);
        }
        // One Content-Length, one number: lists and repeats ("5, 5") are what a front proxy and
        // the server may read differently. Beast accepts equal ones; gantry refuses as nginx does.
        if (name == http::field::content_length && value.find(',') != std::string_view::npos)
            return reject(ec, 400, "Bad Request");
        // RFC 9112 3.2: more than one Host (above), or one that is not a host[:port], is a 400. The
        // cache keys and the app's ALLOWED_HOSTS check must see the one authority the client named.
        if (name == http::field::host && !valid_host(value)) return reject(ec, 400, "Bad Request");
        if (name == http::field::expect) {
            if (iequals(trim(value), "100-continue"))
                expect_continue_ = true;
            else
                return reject(ec, 417, "Expectation Failed");
        }
        request_.headers.push_back(HttpHeader{std::string(name_string), std::string(trim(value))});
    }

    void on_header_impl(error_code& ec) override {
        // Whatever our reading of the list above, Beast must frame the body as chunked too;
        // should it read a list differently, a refusal beats two framings of one body.
        if (transfer_encoding_seen_ && !chunked()) return reject(ec, 400, "Bad Request");
        request_.keep_alive = keep_alive();
        if (request_.version == 10) expect_continue_ = false;  // 100 is an HTTP/1.1 response
    }

    void on_body_init_impl(const boost::optional<std::uint64_t>& content_length, error_code& ec) override {
        if (!content_length || *content_length == 0) expect_continue_ = expect_continue_ && chunked();
    }

    std::size_t on_body_impl(std::string_view body, error_code& ec) override {
        return append_body(body, ec);
    }

    void on_chunk_header_impl(std::uint64_t, std::string_view extensions, error_code& ec) override {
        // Beast does not bound a chunk line; extensions carry nothing gantry uses. Bounded like
        // a header field.
        if (limits_.field_size && extensions.size() > limits_.field_size) reject(ec, 400, "Bad Request");
    }

    std::size_t on_chunk_body_impl(std::uint64_t, std::string_view body, error_code& ec) override {
        return append_body(body, ec);
    }

    void on_finish_impl(error_code&) override {}

    std::size_t append_body(std::string_view body, error_code& ec) {
        if (streaming_) {
            streamed_.append(body);
            return body.size();
        }
        try {
            request_.body.append(body);
        } catch (const std::exception&) {
            status_ = 500;
            reason_ = "Internal Server Error";  // the temp file could not be written (disk full)
            ec = http::error::bad_chunk;
            return 0;
        }
        return body.size();
    }

};

RequestParser::RequestParser(const ParserLimits& limits) : impl_(std::make_unique<Impl>(limits)) {}
RequestParser::~RequestParser() = default;

bool RequestParser::started() const { return impl_->got_some(); }

bool RequestParser::keep_alive() const { return impl_->is_header_done() && impl_->keep_alive(); }

bool RequestParser::expects_continue() const {
    return impl_->is_header_done() && !impl_->is_done() && impl_->expect_continue_;
}

const HttpRequest& RequestParser::request() const { return impl_->request_; }

HttpRequest RequestParser::take() { return std::move(impl_->request_); }

void RequestParser::stream_body() {
    if (impl_->streaming_) return;
    impl_->streamed_ = impl_->request_.body.contents();
    impl_->request_.body = RequestBody(impl_->limits_.body_memory);
    impl_->streaming_ = true;
}

void RequestParser::take_body(std::string& out) {
    out.clear();
    out.swap(impl_->streamed_);
}

std::optional<std::uint64_t> RequestParser::body_remaining() const {
    if (!impl_->is_header_done() || impl_->chunked()) return std::nullopt;
    if (impl_->is_done()) return 0;
    auto left = impl_->content_length_remaining();
    return left ? std::optional<std::uint64_t>(*left) : std::nullopt;
}

std::size_t RequestParser::feed(std::string_view bytes) {
    if (state_ == State::error || state_ == State::complete) return 0;
    // A request line longer than the limit is refused before Beast has buffered all of it (Beast
    // keeps unparsed header bytes in the caller's buffer, so `bytes` starts at the request line).
    if (!impl_->is_header_done() && impl_->request_.method.empty() && impl_->limits_.request_line) {
        std::size_t window = impl_->limits_.request_line + 2;
        if (bytes.size() > window && bytes.substr(0, window).find('\n') == std::string_view::npos)
            return fail(414, "Request-URI Too Long"), 0;
    }
    std::size_t used = 0;
    while (used < bytes.size()) {
        error_code ec;
        std::size_t n = put_checked(bytes.substr(used), ec);
        used += n;
        if (ec == http::error::need_more) break;
        if (ec) {
            if (std::getenv("GANTRY_PARSER_DEBUG")) std::fprintf(stderr, "parser: %s\n", ec.message().c_str());
            if (impl_->status_)
                fail(impl_->status_, impl_->reason_);
            else if (ec == http::error::header_limit)
                fail(431, "Request Header Fields Too Large");
            else if (ec == http::error::body_limit)
                fail(413, "Payload Too Large");
            else
                fail(400, "Bad Request");
            return used;
        }
        if (impl_->is_done()) {
            state_ = State::complete;
            return used;
        }
        if (n == 0) break;
    }
    if (!impl_->is_header_done() && impl_->limits_.field_size) {
        // All of bytes[used..] is an unfinished header (Beast found no end in it). A field line
        // that never ends is refused at the field-size limit, not at the whole header's. (Before
        // the request line is parsed, a line without a newline is the request line: 414 above.)
        std::string_view pending = bytes.substr(used);
        auto newline = pending.rfind('\n');
        std::size_t partial = newline != std::string_view::npos ? pending.size() - newline - 1
                              : impl_->request_.method.empty() ? 0 : pending.size();
        if (partial > impl_->limits_.field_size + 2) return fail(431, "Request Header Fields Too Large"), used;
    }
    state_ = impl_->is_header_done() ? State::header_done : State::need_more;
    return used;
}

std::size_t RequestParser::put_checked(std::string_view in, boost::system::error_code& ec) {
    const bool in_header = !impl_->is_header_done();
    std::size_t n = impl_->put(boost::asio::const_buffer(in.data(), in.size()), ec);
    if (!in_header) return n;
    if (ec == http::error::bad_version) {
        // Beast refuses every version but 1.0 and 1.1 alike. Another major version (0.9, 2.0:
        // an h2 preface) is 505; a higher 1.x is read as 1.1 (RFC 9110 2.5), by parsing again
        // with the digit replaced: the same length, so what is consumed is the same.
        std::string_view line = in.substr(0, in.find("\r\n"));
        int version = version_of_request_line(line);
        if (version < 0 || version == 10 || version == 11) return n;  // malformed otherwise: 400
        if (version / 10 != 1) {
            impl_->status_ = 505;
            impl_->reason_ = "HTTP Version Not Supported";
            return n;
        }
        std::string as_11(in);
        as_11[line.size() - 1] = '1';
        impl_ = std::make_unique<Impl>(impl_->limits_);  // nothing of this request was parsed yet
        ec = {};
        return put_checked(as_11, ec);
    }
    if (ec && ec != http::error::need_more) return n;
    // Beast unfolds obsolete line folding (a line starting with SP or HTAB continues the previous
    // field). RFC 9112 5.2 allows that or a 400; gantry refuses, so that no proxy in front can read
    // the folded line as a field of its own. Beast takes a field only with the byte after its
    // CRLF, so a fold is always within what one put() consumed; the header ends at its first
    // empty line (what follows may be body).
    std::string_view header = in.substr(0, n);
    header = header.substr(0, header.find("\r\n\r\n"));
    if (header.find("\n ") != std::string_view::npos || header.find("\n\t") != std::string_view::npos) {
        impl_->status_ = 400;
        impl_->reason_ = "Bad Request";
        ec = http::error::bad_field;
    }
    return n;
}

void RequestParser::fail(int status, const char* reason) {
    state_ = State::error;
    error_status_ = status;
    error_reason_ = reason;
}

void RequestParser::feed_eof() {
    if (state_ == State::complete || state_ == State::error) return;
    if (!impl_->got_some()) return;  // nothing was sent: no request to complete or refuse
    error_code ec;
    impl_->put_eof(ec);
    if (ec) {
        state_ = State::error;
        error_status_ = 400;
        error_reason_ = "Bad Request";
    } else if (impl_->is_done()) {
        state_ = State::complete;
    }
}

}  // namespace gantry
