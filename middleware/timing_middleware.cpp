#include "middleware/timing_middleware.hpp"

#include <cstdio>

#include "middleware/middleware_options.hpp"

namespace gantry {

namespace {

void append_metric(std::string& out, std::string_view name, double ms, std::string_view desc) {
    if (!out.empty()) out += ", ";
    out += name;
    if (ms >= 0) {
        char buf[32];
        int n = std::snprintf(buf, sizeof(buf), ";dur=%.3f", ms);
        out.append(buf, static_cast<std::size_t>(n));
    }
    if (!desc.empty()) {
        out += ";desc=\"";
        for (char c : desc)
            if (c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20) out += c;
        out += '"';
    }
}

double ms(std::int64_t ns) { return static_cast<double>(ns) / 1e6; }

}  // namespace

TimingMiddleware::TimingMiddleware(bool server_timing, std::vector<std::string> allow_ips,
                                   std::vector<std::string> chain_names)
    : server_timing_(server_timing), allow_ips_(std::move(allow_ips)) {
    // The metric names are made once here, not per request.
    for (const auto& name : chain_names) metric_names_.push_back("mw-" + name);
}

bool TimingMiddleware::allowed(const std::string& client) const {
    for (const auto& a : allow_ips_)
        if (a == "*" || a == client) return true;
    return false;
}

std::string TimingMiddleware::header_value(const RequestTimings& t, const std::vector<std::string>& metric_names,
                                           const std::vector<ServerTimingMetric>& extra) {
    std::string out;
    for (std::size_t i = 0; i < t.middleware_count && i < metric_names.size(); ++i)
        append_metric(out, metric_names[i], ms(t.on_request_ns[i]), {});
    if (t.python_wait_ns >= 0) append_metric(out, "python-wait", ms(t.python_wait_ns), {});
    if (t.app_ns >= 0) append_metric(out, "app", ms(t.app_ns), {});
    if (const AppBreakdown* b = t.app_breakdown.get()) {
        // Inside Django (--timing full): each middleware by its class name, the view, the database.
        for (const auto& [name, ns] : b->middleware_ns) {
            auto dot = name.rfind('.');
            append_metric(out, "dj-" + name.substr(dot == std::string::npos ? 0 : dot + 1), ms(ns), {});
        }
        if (b->view_ns >= 0) append_metric(out, "view", ms(b->view_ns), b->view);
        std::string desc = std::to_string(b->db_queries) + (b->db_queries == 1 ? " query" : " queries");
        if (b->db_repeated > 0) desc += ", " + std::to_string(b->db_repeated) + " repeated";
        append_metric(out, "db", ms(b->db_ns), desc);
    }
    for (const auto& m : extra) append_metric(out, m.name, m.duration_ms, m.description);
    return out;
}

void TimingMiddleware::on_response(RequestContext& ctx, ResponseHead& head, std::string*) const {
    if (!server_timing_ || !allowed(ctx.client_addr())) return;
    head.headers.push_back({"Server-Timing", header_value(ctx.timings(), metric_names_, ctx.server_timing())});
}

TimingOptions timing_options(const MiddlewareSpec& spec, TimingOptions o) {
    for (const auto& [key, value] : spec.options) {
        if (key == "server_timing")
            o.server_timing = bool_option(spec, key, value);
        else if (key == "allow_ips")
            o.allow_ips = list_option(value);
        else
            unknown_option(spec, key, "server_timing, allow_ips");
    }
    return o;
}

std::unique_ptr<const Middleware> make_timing_middleware(const MiddlewareSpec& spec, TimingSettings settings) {
    TimingOptions o = timing_options(spec, std::move(settings.defaults));
    return std::make_unique<TimingMiddleware>(o.server_timing, std::move(o.allow_ips), std::move(settings.chain_names));
}

}  // namespace gantry
