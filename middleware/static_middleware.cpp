#include "middleware/static_middleware.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <set>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "middleware/accept_encoding.hpp"
#include "middleware/middleware_options.hpp"
#include "static/conditional.hpp"
#include "static/path_resolver.hpp"

namespace gantry {

namespace {

constexpr const char* kImmutable = "max-age=31536000, public, immutable";

Flow answer_text(RequestContext& ctx, int status, std::string body, const char* allow = nullptr) {
    ResponseHead head;
    head.status = status;
    head.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
    if (allow) head.headers.push_back({"Allow", allow});
    ctx.respond(std::move(head), std::move(body));
    return Flow::respond;
}

Flow not_found(RequestContext& ctx) { return answer_text(ctx, 404, "404 Not Found\n"); }

std::string content_range(std::uint64_t offset, std::uint64_t length, std::uint64_t size) {
    return "bytes " + std::to_string(offset) + "-" + std::to_string(offset + length - 1) + "/" + std::to_string(size);
}

}  // namespace

StaticMiddleware::StaticMiddleware(std::vector<StaticMountSpec> mounts, std::vector<bool> watched, StaticOptions options)
    : options_(options), cache_control_("max-age=" + std::to_string(options.max_age) + ", public") {
    for (std::size_t i = 0; i < mounts.size(); ++i) {
        bool watch = i < watched.size() && watched[i];
        auto index = std::make_unique<StaticIndex>(std::move(mounts[i]), options_.memory, watch);
        auto snap = index->snapshot();
        std::string dirs;
        for (const auto& s : index->spec().sources) dirs += (dirs.empty() ? "" : ", ") + s.dir;
        spdlog::info("static: {} -> {}: {} files, {} KiB in memory{}", index->url_prefix(), dirs, snap->size(),
                     snap->memory_bytes() / 1024, watch ? ", following changes" : "");
        if (watch) {
            std::vector<std::string> roots;
            for (const auto& s : index->spec().sources) roots.push_back(s.dir);
            StaticIndex* raw = index.get();
            try {
                watchers_.push_back(std::make_unique<StaticWatcher>(std::move(roots), [raw] {
                    raw->rebuild();
                    spdlog::debug("static: {} re-indexed ({} files)", raw->url_prefix(), raw->snapshot()->size());
                }));
            } catch (const std::exception& e) {
                spdlog::warn("static: {} will not follow changes: {}", index->url_prefix(), e.what());
            }
        }
        indexes_.push_back(std::move(index));
    }
    // "/static/admin/" before "/static/": the most specific prefix answers.
    std::stable_sort(indexes_.begin(), indexes_.end(),
                     [](const auto& a, const auto& b) { return a->url_prefix().size() > b->url_prefix().size(); });
}

StaticMiddleware::~StaticMiddleware() {
    watchers_.clear();  // stop the threads before the indexes they rebuild go
}

Flow StaticMiddleware::on_request(RequestContext& ctx) const {
    if (ctx.is_websocket_handshake()) return Flow::next;  // the app's, even under a static prefix
    std::string_view target = ctx.request().target;
    if (target.empty() || target.front() != '/') {
        // Absolute-form ("http://host/static/x.css", RFC 9112 §3.2.2): its path.
        auto scheme = target.find("://");
        if (scheme == std::string_view::npos) return Flow::next;
        auto path = target.find('/', scheme + 3);
        if (path == std::string_view::npos) return Flow::next;
        target.remove_prefix(path);
    }
    for (const auto& index : indexes_) {
        const std::string& prefix = index->url_prefix();
        if (target.size() >= prefix.size() && target.compare(0, prefix.size(), prefix) == 0)
            return serve(ctx, *index, target.substr(prefix.size()));
    }
    return Flow::next;
}

Flow StaticMiddleware::serve(RequestContext& ctx, const StaticIndex& index, std::string_view rest) const {
    // The prefix is ours: whatever is not a file under it is a 404 here, as with nginx's location.
    auto name = resolve_static_path(rest);
    if (!name) return not_found(ctx);
    std::shared_ptr<const StaticSnapshot> held;  // watched: keeps this snapshot alive meanwhile
    const StaticSnapshot* snapshot;
    if (index.watched()) {
        held = index.snapshot();
        snapshot = held.get();
    } else {
        snapshot = &index.fixed_snapshot();
    }
    const StaticFile* file = snapshot->find(*name);
    if (!file) return not_found(ctx);

    const HttpRequest& request = ctx.request();
    const bool is_head = request.method == "HEAD";
    if (!is_head && request.method != "GET")
        return answer_text(ctx, 405, "405 Method Not Allowed\n", "GET, HEAD");

    auto header = [&](std::string_view name) -> const std::string* {
        const HttpHeader* h = request.find_header(name);
        return h ? &h->value : nullptr;
    };
    // The precompressed variant the client takes best (br, then zstd, then gzip on equal q).
    const StaticVariant* variant = &file->variants.front();
    if (file->has_encodings()) {
        std::array<std::string_view, 3> offered{};
        std::size_t n = 0;
        for (std::string_view enc : {"br", "zstd", "gzip"})
            if (file->variant(enc)) offered[n++] = enc;
        auto accept = AcceptEncoding::parse(header("Accept-Encoding"));
        std::string_view chosen = choose_encoding(accept, std::span<const std::string_view>(offered.data(), n));
        if (!chosen.empty()) variant = file->variant(chosen);
    }

    ConditionalRequest conditional;
    conditional.is_get = !is_head;
    conditional.if_none_match = header("If-None-Match");
    conditional.if_modified_since = header("If-Modified-Since");
    conditional.range = header("Range");
    conditional.if_range = conditional.range ? header("If-Range") : nullptr;
    ServeDecision decision =
        decide_static_response(conditional, Representation{variant->etag, variant->mtime, variant->size});

    ResponseHead head;
    head.status = decision.status;
    auto& h = head.headers;
    h.reserve(10);
    if (decision.status != 304) {
        h.push_back({"Content-Type", file->content_type});
        if (!variant->encoding.empty()) h.push_back({"Content-Encoding", variant->encoding});
    }
    if (decision.status == 200 || decision.status == 206) h.push_back({"Content-Length", std::to_string(decision.length)});
    if (decision.status == 206) h.push_back({"Content-Range", content_range(decision.offset, decision.length, variant->size)});
    if (decision.status == 416) h.push_back({"Content-Range", "bytes */" + std::to_string(variant->size)});
    h.push_back({"Accept-Ranges", "bytes"});
    h.push_back({"ETag", variant->etag});
    h.push_back({"Last-Modified", variant->last_modified});
    h.push_back({"Cache-Control", file->immutable ? std::string(kImmutable) : cache_control_});
    if (file->has_encodings()) h.push_back({"Vary", "Accept-Encoding"});
    if (options_.cors) h.push_back({"Access-Control-Allow-Origin", "*"});

    if (decision.status == 304 || decision.status == 416 || is_head || decision.length == 0) {
        ctx.respond(std::move(head), {});
        return Flow::respond;
    }
    if (variant->bytes) {
        ctx.respond_shared(std::move(head), variant->bytes, decision.offset, decision.length);
        return Flow::respond;
    }
    int fd = ::open(variant->path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        spdlog::warn("static: {} indexed but cannot be opened now: {}", variant->path, std::strerror(errno));
        return not_found(ctx);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) != variant->size) {
        // Changed size since indexed: its headers would lie (--static-watch follows changes).
        spdlog::warn("static: {} changed since it was indexed; not served", variant->path);
        ::close(fd);
        return not_found(ctx);
    }
    ctx.respond_file(std::move(head), fd, decision.offset, decision.length);
    return Flow::respond;
}

StaticOptions static_options(const MiddlewareSpec& spec) {
    StaticOptions o;
    for (const auto& [key, value] : spec.options) {
        if (key == "max_age")
            o.max_age = count_option(spec, key, value);
        else if (key == "cors")
            o.cors = bool_option(spec, key, value);
        else if (key == "memory_file_max")
            o.memory.file_max = static_cast<std::uint64_t>(count_option(spec, key, value));
        else if (key == "memory_budget")
            o.memory.budget = static_cast<std::uint64_t>(count_option(spec, key, value));
        else if (key == "django")
            o.django = bool_option(spec, key, value);
        else if (key == "watch")
            o.watch = o.watch || bool_option(spec, key, value);
        else
            unknown_option(spec, key, "max_age, cors, memory_file_max, memory_budget, django, watch");
    }
    return o;
}

// The mounts: --static ones first, then the Django app's STATIC_URL (finders in DEBUG, as
// runserver; STATIC_ROOT otherwise) unless a --static mount already has that prefix.
std::unique_ptr<const Middleware> make_static_middleware(const MiddlewareSpec& spec, const StaticSettings& settings) {
    StaticOptions options = static_options(spec);
    const bool watch = settings.watch || options.watch;
    std::vector<StaticMountSpec> mounts;
    std::vector<bool> watched;
    std::set<std::string> prefixes;
    for (const auto& [prefix, dir] : settings.mounts) {
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            throw ConfigError("--static " + prefix + "=" + dir + ": " + dir + " is not a directory");
        std::string normal = normalize_url_prefix(prefix);
        if (!prefixes.insert(normal).second) throw ConfigError("--static: prefix " + normal + " given twice");
        mounts.push_back(StaticMountSpec{normal, {StaticSource{dir, ""}}});
        watched.push_back(watch);
    }
    const DjangoStaticSettings* django = settings.django;
    if (options.django && django && django->found) {
        for (const auto& note : django->notes) spdlog::warn("static: {}", note);
        std::string prefix = django->static_url.empty() ? "" : normalize_url_prefix(django->static_url);
        if (prefix.empty()) {
            spdlog::info("static: STATIC_URL is not a local path; Django's static files are not served");
        } else if (prefixes.count(prefix)) {
            spdlog::info("static: {} is served from --static, not from Django's settings", prefix);
        } else if (django->debug) {
            // DEBUG: runserver's behaviour, the app directories and STATICFILES_DIRS, no collectstatic.
            mounts.push_back(StaticMountSpec{prefix, django->finder_sources});
            watched.push_back(true);
        } else if (!django->static_root.empty()) {
            struct stat st {};
            if (::stat(django->static_root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
                spdlog::warn("static: STATIC_ROOT {} is not a directory (run collectstatic); {} is not served",
                             django->static_root, prefix);
            else {
                mounts.push_back(StaticMountSpec{prefix, {StaticSource{django->static_root, ""}}});
                watched.push_back(watch);
            }
        } else {
            spdlog::info("static: STATIC_ROOT is not set; {} is left to the app", prefix);
        }
    }
    if (!settings.index) {
        // The master's check: options validated, no file read (each worker indexes its own).
        mounts.clear();
        watched.clear();
    } else if (mounts.empty()) {
        spdlog::debug("static: nothing to serve; left out of the chain");
        return nullptr;
    }
    return std::make_unique<StaticMiddleware>(std::move(mounts), std::move(watched), options);
}

}  // namespace gantry
