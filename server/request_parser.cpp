#include "server/request_parser.hpp"

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

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The last element of a comma-separated list, e.g. "gzip, chunked" -> "chunked".
std::string_view last_token(std::string_view list) {
    auto comma = list.rfind(',');
    return trim(comma == std::string_view::npos ? list : list.substr(comma + 1));
}

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
        if (version != 10 && version != 11)
            return reject(ec, 400, "Bad Request");  // HTTP/0.9 or 2.x on an HTTP/1 parser
        request_.method.assign(method);
        request_.target.assign(target);
        request_.version = static_cast<unsigned>(version);
    }

    void on_response_impl(int, std::string_view, int, error_code& ec) override {
        ec = http::error::bad_method;  // never called for a request parser
    }

    void on_field_impl(http::field name, std::string_view name_string, std::string_view value,
                       error_code& ec) override {
        // Chunked trailers arrive here too. They are dropped: a header smuggled in after the
        // body would bypass whatever a front proxy checked in the real header.
        if (is_header_done()) return;
        if (limits_.fields && request_.headers.size() >= limits_.fields)
            return reject(ec, 431, "Request Header Fields Too Large");
        if (limits_.field_size && name_string.size() + 2 + value.size() > limits_.field_size)
            return reject(ec, 431, "Request Header Fields Too Large");
        // Beast has already refused Content-Length with Transfer-Encoding, conflicting
        // Content-Lengths and a repeated Transfer-Encoding. A Transfer-Encoding whose final coding
        // is not chunked leaves the body length unknowable: RFC 9112 6.3 says 400.
        if (name == http::field::transfer_encoding && !iequals(last_token(value), "chunked"))
            return reject(ec, 400, "Bad Request");
        if (name == http::field::expect) {
            if (iequals(trim(value), "100-continue"))
                expect_continue_ = true;
            else
                return reject(ec, 417, "Expectation Failed");
        }
        request_.headers.push_back(HttpHeader{std::string(name_string), std::string(trim(value))});
    }

    void on_header_impl(error_code& ec) override {
        request_.keep_alive = keep_alive();
        if (request_.version == 10) expect_continue_ = false;  // 100 is an HTTP/1.1 response
    }

    void on_body_init_impl(const boost::optional<std::uint64_t>& content_length, error_code& ec) override {
        if (!content_length || *content_length == 0) expect_continue_ = expect_continue_ && chunked();
    }

    std::size_t on_body_impl(std::string_view body, error_code& ec) override {
        return append_body(body, ec);
    }

    void on_chunk_header_impl(std::uint64_t, std::string_view, error_code&) override {}

    std::size_t on_chunk_body_impl(std::uint64_t, std::string_view body, error_code& ec) override {
        return append_body(body, ec);
    }

    void on_finish_impl(error_code&) override {}

    std::size_t append_body(std::string_view body, error_code& ec) {
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

std::size_t RequestParser::feed(std::string_view bytes) {
    if (state_ == State::error || state_ == State::complete) return 0;
    // A request line longer than the limit is refused before Beast has buffered all of it (Beast
    // keeps unparsed header bytes in the caller's buffer, so `bytes` starts at the request line).
    if (impl_->request_.method.empty() && impl_->limits_.request_line) {
        std::size_t window = impl_->limits_.request_line + 2;
        if (bytes.size() > window && bytes.substr(0, window).find('\n') == std::string_view::npos) {
            state_ = State::error;
            error_status_ = 414;
            error_reason_ = "Request-URI Too Long";
            return 0;
        }
    }
    std::size_t used = 0;
    while (used < bytes.size()) {
        error_code ec;
        std::size_t n = impl_->put(boost::asio::const_buffer(bytes.data() + used, bytes.size() - used), ec);
        used += n;
        if (ec == http::error::need_more) break;
        if (ec) {
            state_ = State::error;
            if (std::getenv("GANTRY_PARSER_DEBUG")) std::fprintf(stderr, "parser: %s\n", ec.message().c_str());
            if (impl_->status_) {
                error_status_ = impl_->status_;
                error_reason_ = impl_->reason_;
            } else if (ec == http::error::header_limit) {
                error_status_ = 431;
                error_reason_ = "Request Header Fields Too Large";
            } else if (ec == http::error::body_limit) {
                error_status_ = 413;
                error_reason_ = "Payload Too Large";
            } else {
                error_status_ = 400;
                error_reason_ = "Bad Request";
            }
            return used;
        }
        if (impl_->is_done()) {
            state_ = State::complete;
            return used;
        }
        if (n == 0) break;
    }
    state_ = impl_->is_header_done() ? State::header_done : State::need_more;
    return used;
}

void RequestParser::feed_eof() {
    if (state_ == State::complete || state_ == State::error) return;
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
