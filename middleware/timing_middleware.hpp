#pragma once
// "timing": reports where the request's time went in a W3C Server-Timing header, only to clients
// allowed to see it (the pipeline runner does the measuring for every middleware; this one tells).
#include <memory>
#include <string>
#include <vector>

#include "middleware/middleware.hpp"
#include "http/config_error.hpp"
#include "middleware/middleware_spec.hpp"

namespace gantry {

// Its options: server_timing (true/false) and allow_ips override --server-timing and
// --timing-allow-ips for it.
struct TimingOptions {
    bool server_timing = false;          // send the Server-Timing header
    std::vector<std::string> allow_ips;  // the clients that may see it ("*" = all)
};

// What its factory needs beyond the spec.
struct TimingSettings {
    TimingOptions defaults;                // --server-timing, --timing-allow-ips
    std::vector<std::string> chain_names;  // the final chain, in order: one entry each in the header
};

class TimingMiddleware final : public Middleware {
public:
    static constexpr std::string_view kName = "timing";

    // `chain_names`: the whole chain, to name each middleware's entry.
    TimingMiddleware(bool server_timing, std::vector<std::string> allow_ips, std::vector<std::string> chain_names);

    std::string_view name() const override { return kName; }
    void on_response(RequestContext& ctx, ResponseHead& head, std::string* whole_body) const override;
    bool reads_request_in_response() const override { return false; }

    // The header value: "mw-timing;dur=0.002, python-wait;dur=0.010, app;dur=3.104, cache;desc=miss".
    // `metric_names`: one per middleware of the chain ("mw-timing").
    static std::string header_value(const RequestTimings& timings, const std::vector<std::string>& metric_names,
                                    const std::vector<ServerTimingMetric>& extra);

private:
    bool allowed(const std::string& client) const;

    bool server_timing_;
    std::vector<std::string> allow_ips_;
    std::vector<std::string> metric_names_;
};

// Throws ConfigError naming the option.
TimingOptions timing_options(const MiddlewareSpec& spec, TimingOptions defaults);
std::unique_ptr<const Middleware> make_timing_middleware(const MiddlewareSpec& spec, TimingSettings settings);

}  // namespace gantry
