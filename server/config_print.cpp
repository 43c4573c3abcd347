#include "server/config_print.hpp"

#include <cstdio>
#include <sstream>

namespace gantry {

namespace {

std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::string list(const std::vector<std::string>& items) {
    std::string out = "[";
    for (const auto& i : items) out += (out.size() > 1 ? ", " : "") + quoted(i);
    return out + "]";
}

std::string number(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}

}  // namespace

std::string config_as_toml(const Config& c) {
    std::ostringstream out;
    auto line = [&](const char* key, const std::string& value) { out << key << " = " << value << "\n"; };
    auto text = [&](const char* key, const std::string& value) { line(key, quoted(value)); };
    auto flag = [&](const char* key, bool value) { line(key, value ? "true" : "false"); };
    auto integer = [&](const char* key, long long value) { line(key, std::to_string(value)); };
    out << "# The settings in effect (gantry --print-config): a TOML file for gantry -c.\n";
    for (const auto& note : c.notes) out << "# " << note << "\n";
    text("app", c.app);
    std::vector<std::string> binds;
    for (const auto& b : c.binds) binds.push_back(b.to_string());
    line("bind", list(binds));
    integer("backlog", c.backlog);
    integer("workers", c.workers);
    integer("threads", c.threads);
    integer("io_threads", c.io_threads);
    line("timeout", number(c.timeout));
    line("graceful_timeout", number(c.graceful_timeout));
    line("keep_alive", number(c.keep_alive));
    line("header_timeout", number(c.header_timeout));
    flag("preload", c.preload);
    integer("max_requests", c.max_requests);
    integer("max_requests_jitter", c.max_requests_jitter);
    integer("max_worker_memory", c.max_worker_memory);
    if (c.max_queue >= 0) integer("max_queue", c.max_queue);
    integer("worker_connections", c.worker_connections);
    integer("limit_concurrency", c.limit_concurrency);
    text("health_path", c.health_path);
    integer("limit_request_line", static_cast<long long>(c.limit_request_line));
    integer("limit_request_fields", static_cast<long long>(c.limit_request_fields));
    integer("limit_request_field_size", static_cast<long long>(c.limit_request_field_size));
    integer("limit_request_body", static_cast<long long>(c.limit_request_body));
    integer("body_buffer_size", static_cast<long long>(c.body_buffer_size));
    text("chdir", c.chdir);
    line("pythonpath", list(c.pythonpath));
    text("virtualenv", c.virtualenv);
    std::vector<std::string> env;
    for (const auto& [k, v] : c.env) env.push_back(k + "=" + v);
    line("env", list(env));
    text("access_logfile", c.access_logfile);
    text("error_logfile", c.error_logfile);
    text("log_level", c.log_level);
    text("access_logformat", c.access_logformat);
    line("forwarded_allow_ips", list(c.forwarded_allow_ips));
    text("pidfile", c.pidfile);
    text("proc_name", c.proc_name);
    std::vector<std::string> names;
    for (const auto& m : c.middleware) names.push_back(m.name);
    line("middleware", list(names));
    text("timing", c.timing);
    text("interface", c.interface);
    text("loop", c.loop);
    text("lifespan", c.lifespan);
    text("root_path", c.root_path);
    integer("loop_block_warn", c.loop_block_warn);
    flag("server_timing", c.server_timing);
    line("timing_allow_ips", list(c.timing_allow_ips));
    text("access_log_json", c.access_log_json);
    if (c.metrics_bind) text("metrics_bind", c.metrics_bind->to_string());
    std::vector<std::string> mounts;
    for (const auto& [prefix, dir] : c.static_mounts) mounts.push_back(prefix + "=" + dir);
    line("static", list(mounts));
    flag("static_watch", c.static_watch);
    integer("cache_size", static_cast<long long>(c.cache_size));
    text("cache", c.cache_url);
    flag("reuse_port", c.reuse_port);
    flag("sendfile", c.sendfile);
    if (!c.user.empty()) text("user", c.user);
    if (!c.group.empty()) text("group", c.group);
    flag("initgroups", c.initgroups);
    flag("capture_output", c.capture_output);
    if (c.umask >= 0) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "0%03o", c.umask);
        text("umask", buf);
    }
    return out.str();
}

}  // namespace gantry
