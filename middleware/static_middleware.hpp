#pragma once
// "static": answers GET/HEAD under each static URL prefix from the file index, on the I/O thread,
// never calling Python: whitenoise's behaviour (headers, variants, CORS) at nginx's cost. Small
// files go from memory (shared, not copied), large ones by sendfile(2).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http/app_static_files.hpp"
#include "middleware/middleware.hpp"
#include "http/config_error.hpp"
#include "middleware/middleware_spec.hpp"
#include "static/static_index.hpp"
#include "static/static_watcher.hpp"

namespace gantry {

struct StaticOptions {
    long long max_age = 60;        // Cache-Control max-age of files whose names are not hashed
    bool cors = true;              // Access-Control-Allow-Origin: * (as whitenoise)
    StaticMemoryLimits memory;
    // Read by its factory, which makes the mounts:
    bool django = true;            // serve the Django app's STATIC_URL
    bool watch = false;            // the --static mounts follow changes (as --static-watch)
};

// What its factory needs beyond the spec.
struct StaticSettings {
    std::vector<std::pair<std::string, std::string>> mounts;  // --static URL_PREFIX=DIR, in order
    bool watch = false;                                       // --static-watch
    bool index = false;  // false in the master's check: options and mounts checked, no file read
    const DjangoStaticSettings* django = nullptr;             // the app's static settings, if a Django app
};

class StaticMiddleware final : public Middleware {
public:
    static constexpr std::string_view kName = "static";

    // Indexes every mount now; `watched` mounts follow changes on a watcher thread.
    StaticMiddleware(std::vector<StaticMountSpec> mounts, std::vector<bool> watched, StaticOptions options);
    ~StaticMiddleware() override;

    std::string_view name() const override { return kName; }
    Flow on_request(RequestContext& ctx) const override;
    bool reads_request_in_response() const override { return false; }

    const std::vector<std::unique_ptr<StaticIndex>>& indexes() const { return indexes_; }

private:
    Flow serve(RequestContext& ctx, const StaticIndex& index, std::string_view rest) const;

    StaticOptions options_;
    std::string cache_control_;            // "max-age=60, public"
    std::vector<std::unique_ptr<StaticIndex>> indexes_;  // longest prefix first
    std::vector<std::unique_ptr<StaticWatcher>> watchers_;
};

// Throws ConfigError naming the option.
StaticOptions static_options(const MiddlewareSpec& spec);
// nullptr when there is nothing to serve (then it leaves the chain). Throws ConfigError for an
// option or a --static mount that is not a directory.
std::unique_ptr<const Middleware> make_static_middleware(const MiddlewareSpec& spec, const StaticSettings& settings);

}  // namespace gantry
