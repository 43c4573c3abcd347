#include "middleware/compress_middleware.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <memory>


#include "middleware/accept_encoding.hpp"
#include "middleware/middleware_options.hpp"
#include "http/header_fields.hpp"

namespace gantry {

namespace {

// What on_request decided, for the response hooks: present only when a coding was chosen.
struct CompressState final : MiddlewareState {
    Coding coding = Coding::identity;
    bool is_head = false;
    std::unique_ptr<StreamCompressor> stream;  // a streamed response being compressed
};

void erase_all(ResponseHead& head, std::string_view name) {
    std::erase_if(head.headers, [&](const HttpHeader& h) { return iequals(h.name, name); });
}

// A glob with at most one '*'.
bool matches(std::string_view pattern, std::string_view type) {
    auto star = pattern.find('*');
    if (star == std::string_view::npos) return pattern == type;
    auto prefix = pattern.substr(0, star), suffix = pattern.substr(star + 1);
    return type.size() >= prefix.size() + suffix.size() && type.starts_with(prefix) && type.ends_with(suffix);
}

std::string& chunk_scratch() {
    thread_local std::string buffer;  // swapped with each chunk: no allocation once warm
    return buffer;
}

}  // namespace

std::vector<std::string> CompressOptions::default_types() {
    return {"text/*",
            "application/json",
            "*+json",
            "application/javascript",
            "application/x-javascript",
            "application/ecmascript",
            "application/xml",
            "*+xml",
            "application/wasm",
            "application/x-ndjson",
            "application/graphql-response+json",
            "application/vnd.ms-fontobject",
            "font/ttf",
            "font/otf",
            "image/x-icon",
            "image/vnd.microsoft.icon",
            "image/bmp"};
}

CompressMiddleware::CompressMiddleware(CompressOptions options) : options_(std::move(options)) {
    for (auto& t : options_.types)
        std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
    for (Coding c : options_.prefer) offered_.push_back(coding_token(c));
}

bool CompressMiddleware::compressible_type(std::string_view content_type) const {
    std::string type(trim(content_type.substr(0, content_type.find(';'))));
    std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
    if (type.empty()) return false;
    return std::any_of(options_.types.begin(), options_.types.end(), [&](const std::string& p) { return matches(p, type); });
}

void CompressMiddleware::add_vary_accept_encoding(ResponseHead& head) {
    HttpHeader* first = nullptr;
    for (auto& h : head.headers) {
        if (!iequals(h.name, "Vary")) continue;
        if (list_contains(h.value, "Accept-Encoding") || list_contains(h.value, "*")) return;
        if (!first) first = &h;
    }
    if (!first)
        head.headers.push_back({"Vary", "Accept-Encoding"});
    else if (trim(first->value).empty())
        first->value = "Accept-Encoding";
    else
        first->value += ", Accept-Encoding";
}

void CompressMiddleware::weaken_etag(ResponseHead& head) {
    for (auto& h : head.headers)
        if (iequals(h.name, "ETag") && h.value.starts_with('"')) h.value.insert(0, "W/");
}

Flow CompressMiddleware::on_request(RequestContext& ctx) const {
    if (ctx.is_websocket_handshake()) return Flow::next;  // a 101 has no body; a refusal stays as the app made it
    const HttpRequest& request = ctx.request();
    // Several Accept-Encoding lines are one list (RFC 9110 §5.3).
    const HttpHeader* only = nullptr;
    std::string joined;
    for (const auto& h : request.headers) {
        if (!iequals(h.name, "Accept-Encoding")) continue;
        if (!only) {
            only = &h;
        } else {
            if (joined.empty()) joined = only->value;
            joined.append(", ").append(h.value);
        }
    }
    if (!only) return Flow::next;  // identity: the response hooks only add Vary
    auto accept = AcceptEncoding::parse(joined.empty() ? std::string_view(only->value) : std::string_view(joined));
    auto chosen = coding_from_token(choose_encoding(accept, offered_));
    if (!chosen) return Flow::next;
    auto state = std::make_unique<CompressState>();
    state->coding = *chosen;
    state->is_head = request.is_head();
    ctx.state() = std::move(state);
    return Flow::next;
}

void CompressMiddleware::on_response(RequestContext& ctx, ResponseHead& head, std::string* whole_body) const {
    // Responses that could never be compressed get nothing, not even Vary (as Django).
    const int status = head.status;
    if (status < 200 || status == 204 || status == 304 || status == 206) return;
    std::optional<std::uint64_t> app_length;
    for (const auto& h : head.headers) {
        if (iequals(h.name, "Content-Encoding") || iequals(h.name, "Content-Range")) return;
        if (iequals(h.name, "Cache-Control") && list_contains(h.value, "no-transform")) return;
        if (iequals(h.name, "Content-Length")) {
            std::uint64_t n = 0;
            auto v = trim(h.value);
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec == std::errc() && end == v.data() + v.size()) app_length = n;
        }
    }
    const HttpHeader* type = find_field(head.headers, "Content-Type");
    if (!type || !compressible_type(type->value)) return;
    if (whole_body) {
        if (whole_body->size() < options_.min_length) return;
        // An app whose Content-Length disagrees with its body gets the framing's own treatment.
        if (app_length && *app_length != whole_body->size()) return;
    } else if (app_length && *app_length < options_.min_length) {
        return;
    }
    add_vary_accept_encoding(head);  // also for a client that did not ask: caches key on it

    auto* state = static_cast<CompressState*>(ctx.state().get());
    if (!state) return;
    if (whole_body) {
        // HEAD is compressed too (the app made the body anyway): its Content-Length is GET's.
        if (!compress_whole(state->coding, options_.levels, *whole_body)) return;  // not shorter
        if (HttpHeader* length = find_field(head.headers, "Content-Length")) length->value = std::to_string(whole_body->size());
    } else {
        // A stream's compressed length is unknown: it goes out chunked (or until close in HTTP/1.0).
        erase_all(head, "Content-Length");
        if (!state->is_head) state->stream = make_stream_compressor(state->coding, options_.levels);
        ctx.mark_stream_rewritten();
    }
    weaken_etag(head);
    head.headers.push_back({"Content-Encoding", std::string(coding_token(state->coding))});
}

void CompressMiddleware::on_chunk(RequestContext& ctx, std::string& chunk) const {
    auto* state = static_cast<CompressState*>(ctx.state().get());
    if (!state || !state->stream || chunk.empty()) return;
    std::string& out = chunk_scratch();
    out.clear();
    state->stream->write(chunk, out);  // flushed: the client can decode this chunk now
    chunk.swap(out);
    if (out.capacity() > (4u << 20)) std::string().swap(out);
}

void CompressMiddleware::on_stream_end(RequestContext& ctx, std::string& tail) const {
    auto* state = static_cast<CompressState*>(ctx.state().get());
    if (!state || !state->stream) return;
    std::string& out = chunk_scratch();
    out.clear();
    if (!tail.empty()) state->stream->write(tail, out);
    state->stream->finish(out);
    tail.swap(out);
    state->stream.reset();  // back to this thread's pool now, not when the connection moves on
}

CompressOptions compress_options(const MiddlewareSpec& spec) {
    CompressOptions o;
    for (const auto& [key, value] : spec.options) {
        if (key == "min_length") {
            o.min_length = static_cast<std::size_t>(int_option(spec, key, value, 0, 1L << 40));
        } else if (key == "types") {
            o.types = list_option(value);
            for (const auto& t : o.types)
                if (std::count(t.begin(), t.end(), '*') > 1 || t.find_first_of(" ;,") != std::string::npos)
                    option_error(spec, "option 'types': '" + t +
                                           "' is not a media type pattern (at most one '*', e.g. text/*, *+json)");
            if (o.types.empty()) option_error(spec, "option 'types' is empty");
        } else if (key == "prefer") {
            o.prefer.clear();
            for (const auto& token : list_option(value)) {
                auto coding = coding_from_token(token);
                if (!coding) option_error(spec, "option 'prefer': unknown coding '" + token + "' (known: br, zstd, gzip)");
                if (std::find(o.prefer.begin(), o.prefer.end(), *coding) != o.prefer.end())
                    option_error(spec, "option 'prefer' lists '" + token + "' twice");
                o.prefer.push_back(*coding);
            }
            if (o.prefer.empty()) option_error(spec, "option 'prefer' is empty");
        } else if (key == "gzip_level") {
            o.levels.gzip = static_cast<int>(int_option(spec, key, value, kMinLevel[1], kMaxLevel[1]));
        } else if (key == "br_level") {
            o.levels.br = static_cast<int>(int_option(spec, key, value, kMinLevel[2], kMaxLevel[2]));
        } else if (key == "zstd_level") {
            o.levels.zstd = static_cast<int>(int_option(spec, key, value, kMinLevel[3], kMaxLevel[3]));
        } else if (key == "breach_mitigation") {
            o.levels.breach_mitigation = bool_option(spec, key, value);
        } else {
            unknown_option(spec, key, "min_length, types, prefer, gzip_level, br_level, zstd_level, breach_mitigation");
        }
    }
    return o;
}

std::unique_ptr<const Middleware> make_compress_middleware(const MiddlewareSpec& spec) {
    return std::make_unique<CompressMiddleware>(compress_options(spec));
}

}  // namespace gantry
