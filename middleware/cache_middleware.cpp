#include "middleware/cache_middleware.hpp"

#include <strings.h>

#include <algorithm>
#include <ctime>
#include <optional>

#include "cache/cache_key.hpp"
#include "cache/cached_response.hpp"
#include "cache/shared_store.hpp"
#include "middleware/accept_encoding.hpp"

namespace gantry {

namespace {

// In the Vary list, for a URL whose responses were compressed by the app itself (not by gantry's
// compress below us): Accept-Encoding must then be keyed by its raw value, since the app's choice
// of coding is its own.
constexpr std::string_view kRawAcceptEncoding = "accept-encoding:raw";

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

const HttpHeader* find(const std::vector<HttpHeader>& headers, std::string_view name) {
    for (const auto& h : headers)
        if (iequals(h.name, name)) return &h;
    return nullptr;
}

void remove_all(std::vector<HttpHeader>& headers, std::string_view name) {
    std::erase_if(headers, [&](const HttpHeader& h) { return iequals(h.name, name); });
}

// The Host the request is for, plus the proxy headers an app may build URLs from (Django's
// USE_X_FORWARDED_HOST, SECURE_PROXY_SSL_HEADER): keyed whenever present, so a client cannot plant
// a page built for another host or scheme under the real one's key.
std::string host_component(const HttpRequest& request) {
    std::string host;
    if (const HttpHeader* h = request.find_header("Host")) host = h->value;
    if (const HttpHeader* h = request.find_header("X-Forwarded-Host")) host += "|xfh=" + h->value;
    if (const HttpHeader* h = request.find_header("X-Forwarded-Proto")) host += "|xfp=" + h->value;
    return host;
}

// An ETag list from If-None-Match matches `etag` by weak comparison (RFC 9110 §13.1.2).
bool none_match(std::string_view list, std::string_view etag) {
    auto opaque = [](std::string_view t) {
        if (t.substr(0, 2) == "W/") t.remove_prefix(2);
        return t;
    };
    std::string_view want = opaque(etag);
    while (!list.empty()) {
        auto comma = list.find(',');
        std::string_view item = list.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (item == "*" || opaque(item) == want) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

// Accept-Encoding's raw value as the "coding" CacheKey keys it by (absent differs from empty).
std::string raw_coding(const HttpRequest& request) {
    const HttpHeader* ae = request.find_header("Accept-Encoding");
    return ae ? "raw:" + ae->value : "raw-absent";
}

// What on_request learnt, for on_response.
struct CacheState final : MiddlewareState {
    std::string url_key;              // CacheKey::url(), to rebuild the key after learning Vary
    std::string host;
    std::string coding;               // the coding compress below would choose for this client
    std::optional<CachedResponse> stale;  // a stale copy that may stand in for an error
    bool lookup_only = false;         // HEAD: answered from GET entries, never stored from
};

}  // namespace

CacheMiddleware::CacheMiddleware(CacheOptions options, SharedStore* store)
    : options_(std::move(options)), policy_(options_.rules), store_(store) {}

Flow CacheMiddleware::on_request(RequestContext& ctx) const {
    const HttpRequest& request = ctx.request();
    if (!CachePolicy::may_lookup(request)) return Flow::next;
    auto state = std::make_unique<CacheState>();
    state->host = host_component(request);
    state->lookup_only = request.is_head();
    if (!options_.codings_below.empty()) {
        const HttpHeader* ae = request.find_header("Accept-Encoding");
        state->coding = std::string(choose_encoding(AcceptEncoding::parse(ae ? &ae->value : nullptr), options_.codings_below));
    }
    CacheKey key(request, state->host);
    state->url_key = key.url();

    auto finish_miss = [&](const char* desc) {
        ctx.server_timing().push_back({"cache", -1, desc});
        ctx.state() = std::move(state);
        return Flow::next;
    };

    auto vary = store_->get(key.vary_list_key());
    if (!vary) return finish_miss("miss");
    std::vector<std::string> names = split_vary(vary->bytes);
    bool raw = std::erase(names, std::string(kRawAcceptEncoding)) > 0;
    std::string coding = raw ? raw_coding(request) : state->coding;
    auto stored = store_->get(key.variant_key(names, coding));
    if (!stored) return finish_miss("miss");
    auto cached = CachedResponse::parse(stored->bytes);
    if (!cached) return finish_miss("miss");
    if (request.find_header("Authorization") && !cached->serves_authorized) return finish_miss("miss");

    std::time_t now = std::time(nullptr);
    auto freshness = cached->freshness(now);
    using F = CachedResponse::Freshness;
    if (freshness != F::fresh && freshness != F::stale_while_revalidate) {
        if (freshness == F::stale_if_error_only) state->stale = std::move(cached);
        return finish_miss(freshness == F::expired ? "miss" : "stale-miss");
    }

    // A hit: the app is not called.
    ResponseHead head = std::move(cached->head);
    std::string body = std::move(cached->body);
    remove_all(head.headers, "Age");
    head.headers.push_back({"Age", std::to_string(std::max<std::time_t>(0, now - cached->stored_at))});
    const HttpHeader* inm = request.find_header("If-None-Match");
    const HttpHeader* etag = find(head.headers, "ETag");
    if (inm && etag && none_match(inm->value, etag->value)) {
        // 304: the validators and caching headers only (RFC 9110 §15.4.5).
        ResponseHead not_modified{304, "Not Modified", {}};
        for (const auto& h : head.headers)
            for (const char* keep : {"ETag", "Cache-Control", "Expires", "Vary", "Content-Location", "Date", "Age", "Last-Modified"})
                if (iequals(h.name, keep)) not_modified.headers.push_back(h);
        head = std::move(not_modified);
        body.clear();
    }
    ctx.server_timing().push_back({"cache", -1, freshness == F::fresh ? "hit" : "stale"});
    ctx.respond(std::move(head), std::move(body));
    return Flow::respond;
}

void CacheMiddleware::on_response(RequestContext& ctx, ResponseHead& head, std::string* whole_body) const {
    auto* state = dynamic_cast<CacheState*>(ctx.state().get());
    if (!state || ctx.answered()) return;  // not a lookup, or answered by us / above us

    std::time_t now = std::time(nullptr);
    if (head.status >= 500 && state->stale && whole_body) {
        // stale-if-error: the stored copy stands in for the app's error.
        head = std::move(state->stale->head);
        remove_all(head.headers, "Age");
        head.headers.push_back({"Age", std::to_string(std::max<std::time_t>(0, now - state->stale->stored_at))});
        *whole_body = std::move(state->stale->body);
        for (auto& m : ctx.server_timing())
            if (m.name == "cache") m.description = "stale";
        return;
    }
    if (state->lookup_only || !whole_body || whole_body->size() > options_.max_entry_bytes) return;

    const HttpRequest& request = ctx.request();
    StorageDecision decision = policy_.decide(request, split_target(request.target).path, head.status, head.headers,
                                              false, now);
    if (!decision.store) return;

    std::vector<std::string> names = vary_names(head.headers);
    std::string coding = state->coding;
    bool raw = false;
    if (std::find(names.begin(), names.end(), "accept-encoding") != names.end()) {
        const HttpHeader* ce = find(head.headers, "Content-Encoding");
        std::string_view sent = ce ? std::string_view(ce->value) : std::string_view();
        // Keyed by the chosen coding only when that coding is what the response carries (gantry's
        // compress made it); otherwise the app chose: key this URL by the raw header from now on.
        raw = options_.codings_below.empty() || sent != coding;
        if (raw) coding = raw_coding(request);
    }
    CachedResponse entry;
    entry.head = head;
    entry.body = *whole_body;
    entry.stored_at = now;
    entry.fresh_until = now + decision.ttl;
    entry.stale_while_revalidate_until = entry.fresh_until + decision.stale_while_revalidate;
    entry.stale_if_error_until = entry.fresh_until + decision.stale_if_error;
    entry.serves_authorized = decision.serves_authorized;
    auto keep = std::chrono::seconds(entry.keep_until() - now);

    CacheKey key(request, state->host);
    std::string vary_list = join_vary(names);
    if (raw) vary_list += (vary_list.empty() ? "" : ",") + std::string(kRawAcceptEncoding);
    store_->set(key.vary_list_key(), vary_list, 0, keep);
    store_->set(key.variant_key(names, coding), entry.serialize(), 0, keep);
}

}  // namespace gantry
