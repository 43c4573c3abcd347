#include "middleware/cache_middleware.hpp"

#include <strings.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <ctime>
#include <optional>

#include "cache/cache_key.hpp"
#include "cache/cached_response.hpp"
#include "cache/redis_tier.hpp"
#include "cache/shared_store.hpp"
#include "middleware/accept_encoding.hpp"
#include "middleware/middleware_options.hpp"
#include "http/header_fields.hpp"

namespace gantry {

// What a Redis-tier thread found for a request: the URL's Vary list and this variant's entry.
struct RedisLookup {
    std::atomic<bool> done{false};
    std::optional<std::string> vary;
    std::optional<std::string> entry;
    std::string variant_key;
};

// What on_request learnt, for on_response; kept across Flow::wait.
struct CacheState final : MiddlewareState {
    SharedStore* store = nullptr;
    std::string host;
    std::string coding;               // the coding compress below would choose for this client
    std::optional<CachedResponse> stale;  // a stale copy that may stand in for an error
    bool lookup_only = false;         // HEAD: answered from GET entries, never stored from
    std::string lock_key;             // held while this request fetches the page for the others
    RequestContext::WaitClock::time_point waiting_since{};
    int waits = 0;
    std::shared_ptr<struct RedisLookup> redis;  // a lookup in the Redis tier, running or done
    bool asked_redis = false;

    ~CacheState() override {
        // However the request ends (stored, not cacheable, failed, client gone), the others stop
        // waiting for it.
        if (!lock_key.empty() && store) store->erase(lock_key);
    }
};

namespace {

// In the Vary list, for a URL whose responses were compressed by the app itself (not by gantry's
// compress below us): Accept-Encoding must then be keyed by its raw value, since the app's choice
// of coding is its own.
constexpr std::string_view kRawAcceptEncoding = "accept-encoding:raw";



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

std::string variant_key_for(const CacheKey& key, const std::string& vary_list, const CacheState& state,
                            const HttpRequest& request) {
    std::vector<std::string> names = split_vary(vary_list);
    bool raw = std::erase(names, std::string(kRawAcceptEncoding)) > 0;
    return key.variant_key(names, raw ? raw_coding(request) : state.coding);
}

void add_age(ResponseHead& head, std::time_t now, std::time_t stored_at) {
    remove_all(head.headers, "Age");
    head.headers.push_back({"Age", std::to_string(std::max<std::time_t>(0, now - stored_at))});
}

}  // namespace

CacheMiddleware::CacheMiddleware(CacheOptions options, SharedStore* store, RedisTier* redis)
    : options_(std::move(options)), policy_(options_.rules), store_(store), redis_(redis) {}

// Asks the Redis tier for this request's page; the request waits (Flow::wait) for the answer.
bool CacheMiddleware::ask_redis(RequestContext& ctx, CacheState& state) const {
    auto lookup = std::make_shared<RedisLookup>();
    // The job needs the request's headers (the Vary values) after this hook returns: a copy.
    auto request = std::make_shared<HttpRequest>();
    request->method = ctx.request().method;
    request->target = ctx.request().target;
    request->url_scheme = ctx.request().url_scheme;
    request->headers = ctx.request().headers;
    bool submitted = redis_->submit([lookup, request, host = state.host, coding = state.coding,
                                     wake = ctx.wake_handle()](RedisStore& redis) {
        CacheKey key(*request, host);
        lookup->vary = redis.get(key.vary_list_key());
        if (lookup->vary) {
            std::vector<std::string> names = split_vary(*lookup->vary);
            bool raw = std::erase(names, std::string(kRawAcceptEncoding)) > 0;
            lookup->variant_key = key.variant_key(names, raw ? raw_coding(*request) : coding);
            lookup->entry = redis.get(lookup->variant_key);
        }
        lookup->done.store(true, std::memory_order_release);
        if (wake) wake();
    });
    if (!submitted) return false;
    state.redis = std::move(lookup);
    // Redis has its own deadlines; this one only bounds a lost wake-up.
    ctx.wait_until(RequestContext::WaitClock::now() + 3 * redis_->settings().io_timeout + std::chrono::milliseconds(20));
    return true;
}

// Copies what the Redis tier found into the shared store, where the lookup then finds it.
void CacheMiddleware::absorb_redis(CacheState& state, const CacheKey& key) const {
    std::shared_ptr<RedisLookup> lookup = std::move(state.redis);
    if (!lookup || !lookup->done.load(std::memory_order_acquire) || !lookup->vary) return;
    std::time_t now = std::time(nullptr);
    std::chrono::seconds keep{600};
    if (lookup->entry) {
        auto parsed = CachedResponse::parse(*lookup->entry);
        if (parsed && parsed->keep_until() > now) {
            keep = std::chrono::seconds(parsed->keep_until() - now);
            store_->set(lookup->variant_key, *lookup->entry, 0, keep);
        }
    }
    store_->set(key.vary_list_key(), *lookup->vary, 0, keep + std::chrono::seconds(600));
}

Flow CacheMiddleware::on_request(RequestContext& ctx) const {
    const HttpRequest& request = ctx.request();
    if (!CachePolicy::may_lookup(request) || ctx.is_websocket_handshake()) return Flow::next;
    auto* state = dynamic_cast<CacheState*>(ctx.state().get());
    if (!state) {  // the first call (a later one comes after Flow::wait)
        auto fresh_state = std::make_unique<CacheState>();
        state = fresh_state.get();
        ctx.state() = std::move(fresh_state);
        state->store = store_;
        state->host = host_component(request);
        state->lookup_only = request.is_head();
        if (!options_.codings_below.empty()) {
            const HttpHeader* ae = request.find_header("Accept-Encoding");
            state->coding = std::string(
                choose_encoding(AcceptEncoding::parse(ae ? &ae->value : nullptr), options_.codings_below));
        }
    }
    // The background refresh of a stale copy already sent: straight to the app, never answered
    // from the store nor made to wait, holding the lock the stale answer's request took (its state
    // came with the refresh). on_response stores what the app answers, as for a miss.
    if (ctx.is_background_refresh()) return Flow::next;
    CacheKey key(request, state->host);

    auto miss = [&](const char* desc) {
        ctx.server_timing().push_back({"cache", -1, desc});
        return Flow::next;
    };

    // The shared store first; on a miss there, the Redis tier (once), off this thread.
    if (state->redis) absorb_redis(*state, key);
    auto vary = store_->get(key.vary_list_key());
    if (redis_ && !state->asked_redis &&
        !(vary && store_->contains(variant_key_for(key, vary->bytes, *state, request)))) {
        state->asked_redis = true;
        if (ask_redis(ctx, *state)) return Flow::wait;
    }
    // The Vary list also says "this URL has been cacheable": only then do concurrent misses
    // wait for one fetch (a URL never cached must not be serialised behind a lock).
    if (!vary) return miss("miss");
    std::vector<std::string> names = split_vary(vary->bytes);
    bool raw = std::erase(names, std::string(kRawAcceptEncoding)) > 0;
    std::string coding = raw ? raw_coding(request) : state->coding;
    std::optional<CachedResponse> cached;
    if (auto stored = store_->get(key.variant_key(names, coding))) cached = CachedResponse::parse(stored->bytes);
    if (cached && request.find_header("Authorization") && !cached->serves_authorized) return miss("miss");

    std::time_t now = std::time(nullptr);
    using F = CachedResponse::Freshness;
    F freshness = cached ? cached->freshness(now) : F::expired;
    bool serve = freshness == F::fresh;
    bool refresh_in_background = false;
    if (!serve && !state->lookup_only) {
        // One request fetches the page; the others wait for it (nginx's proxy_cache_lock). Within
        // stale-while-revalidate every request gets the stale copy at once (proxy_cache_use_stale
        // updating), the lock's winner too: its lock goes to a background refresh
        // (proxy_cache_background_update), which no client waits for.
        std::string lock = "gantry:lock:" + key.url();
        if (store_->add(lock, {}, 0, std::chrono::milliseconds(2 * options_.lock_timeout_ms))) {
            state->lock_key = std::move(lock);
            if (freshness != F::stale_while_revalidate) {
                if (cached && now < cached->stale_if_error_until) state->stale = std::move(cached);
                return miss("miss");
            }
            refresh_in_background = true;
            serve = true;
        } else if (freshness == F::stale_while_revalidate) {
            serve = true;
        } else {
            auto t = RequestContext::WaitClock::now();
            if (state->waits == 0) state->waiting_since = t;
            if (t - state->waiting_since < std::chrono::milliseconds(options_.lock_timeout_ms)) {
                // Polled: the fetch may run in another worker, which cannot wake us.
                ctx.wait_until(t + std::chrono::milliseconds(std::min(1 << std::min(state->waits, 5), 25)));
                ++state->waits;
                return Flow::wait;
            }
            // Waited long enough: fetch it ourselves, as nginx does after proxy_cache_lock_timeout.
        }
    }
    if (!serve) {
        if (cached && now < cached->stale_if_error_until) state->stale = std::move(cached);
        return miss(state->waits ? "miss-after-wait" : "miss");
    }

    // A hit: the app is not called.
    ResponseHead head = std::move(cached->head);
    std::string body = std::move(cached->body);
    add_age(head, now, cached->stored_at);
    const HttpHeader* inm = request.find_header("If-None-Match");
    const HttpHeader* etag = find_field(head.headers, "ETag");
    if (inm && etag && none_match(inm->value, etag->value)) {
        // 304: the validators and caching headers only (RFC 9110 §15.4.5).
        ResponseHead not_modified{304, "Not Modified", {}};
        for (const auto& h : head.headers)
            for (const char* keep : {"ETag", "Cache-Control", "Expires", "Vary", "Content-Location", "Date", "Age", "Last-Modified"})
                if (iequals(h.name, keep)) not_modified.headers.push_back(h);
        head = std::move(not_modified);
        body.clear();
    }
    ctx.server_timing().push_back({"cache", -1, freshness == F::fresh ? (state->waits ? "hit-after-wait" : "hit") : "stale"});
    if (refresh_in_background) {
        // The state (with the lock) goes to the refresh's context; if no refresh is made (the
        // queue is full, the connection closed), it goes with this request and the lock with it.
        ctx.request_background_refresh();
    } else {
        ctx.state().reset();  // nothing for on_response to do
    }
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
        add_age(head, now, state->stale->stored_at);
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
        const HttpHeader* ce = find_field(head.headers, "Content-Encoding");
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
    // The Vary list outlives the entry: it also marks the URL as cacheable, for coalescing.
    store_->set(key.vary_list_key(), vary_list, 0, keep + std::chrono::seconds(600));
    std::string variant = key.variant_key(names, coding);
    std::string bytes = entry.serialize();
    store_->set(key.variant_key(names, coding), bytes, 0, keep);
    if (redis_) {
        redis_->submit([vary_key = key.vary_list_key(), vary_list = std::move(vary_list), variant = std::move(variant),
                        bytes = std::move(bytes), keep](RedisStore& redis) {
            redis.set(vary_key, vary_list, std::chrono::milliseconds(keep + std::chrono::seconds(600)));
            redis.set(variant, bytes, std::chrono::milliseconds(keep));
        });
    }
}

namespace {

// "/news/=60, /api/=5": URL prefixes the cache stores for that many seconds when the app declares
// no lifetime itself.
std::vector<CacheRule> cache_rules(const MiddlewareSpec& spec, const std::string& value) {
    std::vector<CacheRule> rules;
    for (const auto& item : list_option(value)) {
        auto eq = item.rfind('=');
        if (eq == std::string::npos || eq == 0 || item[0] != '/')
            option_error(spec, "option 'rules': '" + item + "' is not /url-prefix=seconds");
        rules.push_back({item.substr(0, eq), count_option(spec, "rules", item.substr(eq + 1))});
    }
    return rules;
}

}  // namespace

CacheOptions cache_options(const MiddlewareSpec& spec) {
    CacheOptions o;
    for (const auto& [key, value] : spec.options) {
        if (key == "rules")
            o.rules = cache_rules(spec, value);
        else if (key == "max_entry_bytes")
            o.max_entry_bytes = static_cast<std::size_t>(count_option(spec, key, value));
        else if (key == "lock_timeout_ms")
            o.lock_timeout_ms = static_cast<int>(std::min<long long>(count_option(spec, key, value), 600000));
        else
            unknown_option(spec, key, "rules, max_entry_bytes, lock_timeout_ms");
    }
    return o;
}

std::unique_ptr<const Middleware> make_cache_middleware(const MiddlewareSpec& spec, CacheSettings settings) {
    CacheOptions o = cache_options(spec);
    // Compression below the cache: entries are its output, keyed by the coding it would choose.
    o.codings_below = std::move(settings.codings_below);
    if (settings.store_size == 0)
        throw ConfigError("middleware '" + spec.name + "' needs a store: --cache-size must be more than 0");
    // No store in the master's check (options only): that chain is never run.
    return std::make_unique<CacheMiddleware>(std::move(o), settings.store, settings.redis);
}

}  // namespace gantry
