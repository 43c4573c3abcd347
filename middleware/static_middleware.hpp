#pragma once
// "static": answers GET/HEAD under each static URL prefix from the file index, on the I/O thread,
// never calling Python: whitenoise's behaviour (headers, variants, CORS) at nginx's cost. Small
// files go from memory (shared, not copied), large ones by sendfile(2).
#include <memory>
#include <string>
#include <vector>

#include "middleware/middleware.hpp"
#include "static/static_index.hpp"
#include "static/static_watcher.hpp"

namespace gantry {

struct StaticOptions {
    long long max_age = 60;        // Cache-Control max-age of files whose names are not hashed
    bool cors = true;              // Access-Control-Allow-Origin: * (as whitenoise)
    StaticMemoryLimits memory;
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

}  // namespace gantry
