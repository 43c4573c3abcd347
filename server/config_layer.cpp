#include "server/config_layer.hpp"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "http/text.hpp"
#include "server/gunicorn_settings.hpp"

namespace gantry {

namespace {

[[noreturn]] void error(const std::string& message) { throw ConfigError(message); }

// "256MB", "1GiB", "512k", "1048576": bytes. K/M/G (with or without i, B) are powers of 1024.
std::size_t parse_byte_size(const std::string& option, const std::string& text) {
    std::string t(trim(text));
    std::size_t n = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    std::string unit(end, static_cast<const char*>(t.data() + t.size()));
    for (auto& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::size_t shift = 0;
    if (unit.empty() || unit == "b") shift = 0;
    else if (unit == "k" || unit == "kb" || unit == "kib") shift = 10;
    else if (unit == "m" || unit == "mb" || unit == "mib") shift = 20;
    else if (unit == "g" || unit == "gb" || unit == "gib") shift = 30;
    else shift = 64;
    if (ec != std::errc() || end == t.data() || shift == 64 || (shift && n > (SIZE_MAX >> shift)))
        error(option + " must be a size such as 256MB, 1GiB or a number of bytes, got '" + text + "'");
    return n << shift;
}

BindAddress parse_bind(const std::string& what, const std::string& text) {
    try {
        return parse_bind_address(text);
    } catch (const std::invalid_argument& e) {
        error(what + ": " + e.what());
    }
}

int checked_count(const std::string& name, long long v) {
    if (v < 1) error(name + " must be at least 1, got " + std::to_string(v));
    if (v > std::numeric_limits<int>::max()) error(name + " is too large: " + std::to_string(v));
    return static_cast<int>(v);
}

std::size_t checked_size(const std::string& name, long long v) {
    if (v < 0) error(name + " must be 0 or more, got " + std::to_string(v));
    return static_cast<std::size_t>(v);
}

std::string number_text(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}

double checked_seconds(const std::string& name, double v) {
    if (!(v > 0)) error(name + " must be more than 0 seconds, got " + number_text(v));
    return v;
}

// gunicorn's umask: "0022" and "022" are octal (a leading 0), "0o22", "0x12" as Python reads them,
// "18" decimal.
int parse_umask(const std::string& option, const std::string& text) {
    std::string t(trim(text));
    int base = 10;
    std::size_t skip = 0;
    if (t.size() > 1 && t[0] == '0') {
        char p = static_cast<char>(std::tolower(static_cast<unsigned char>(t[1])));
        if (p == 'o') base = 8, skip = 2;
        else if (p == 'x') base = 16, skip = 2;
        else if (p == 'b') base = 2, skip = 2;
        else base = 8, skip = 1;
    }
    long v = -1;
    auto [end, ec] = std::from_chars(t.data() + skip, t.data() + t.size(), v, base);
    if (t.empty() || ec != std::errc() || end != t.data() + t.size() || v < 0 || v > 0777)
        error(option + " must be a umask such as 0022, 0o22 or 18, got '" + text + "'");
    return static_cast<int>(v);
}

void apply_worker_class(Config& c, const std::string& k, const std::string& flag);

}  // namespace

void apply_layer(Config& c, const ConfigLayer& l, const std::string& source) {
    auto name = [&](const char* flag) { return "--" + std::string(flag) + source; };
    if (l.app) c.app = *l.app;
    if (l.binds) {
        c.binds.clear();
        for (const auto& b : *l.binds) c.binds.push_back(parse_bind("--bind" + source, b));
    }
    if (l.backlog) c.backlog = checked_count(name("backlog"), *l.backlog);
    if (l.workers) c.workers = checked_count(name("workers"), *l.workers);
    if (l.threads) c.threads = checked_count(name("threads"), *l.threads);
    if (l.io_threads) c.io_threads = checked_count(name("io-threads"), *l.io_threads);
    if (l.timeout) c.timeout = checked_seconds(name("timeout"), *l.timeout);
    if (l.graceful_timeout) c.graceful_timeout = checked_seconds(name("graceful-timeout"), *l.graceful_timeout);
    if (l.keep_alive) {
        // 0 is allowed: gunicorn reads --keep-alive 0 as "close after each response".
        if (!(*l.keep_alive >= 0))
            error(name("keep-alive") + " must be 0 or more seconds, got " + number_text(*l.keep_alive));
        c.keep_alive = *l.keep_alive;
    }
    if (l.header_timeout) c.header_timeout = checked_seconds(name("header-timeout"), *l.header_timeout);
    if (l.preload) c.preload = *l.preload;
    auto non_negative = [&](const char* flag, long long v) {
        if (v < 0) error(name(flag) + " must be 0 or more, got " + std::to_string(v));
        return v;
    };
    if (l.max_requests) c.max_requests = non_negative("max-requests", *l.max_requests);
    if (l.max_requests_jitter) c.max_requests_jitter = non_negative("max-requests-jitter", *l.max_requests_jitter);
    if (l.max_worker_memory) c.max_worker_memory = non_negative("max-worker-memory", *l.max_worker_memory);
    if (l.max_queue) c.max_queue = non_negative("max-queue", *l.max_queue);
    if (l.limit_concurrency) c.limit_concurrency = non_negative("limit-concurrency", *l.limit_concurrency);
    if (l.loop_block_warn) c.loop_block_warn = non_negative("loop-block-warn", *l.loop_block_warn);
    if (l.worker_connections) {
        if (*l.worker_connections < 1)
            error(name("worker-connections") + " must be 1 or more, got " + std::to_string(*l.worker_connections));
        c.worker_connections = *l.worker_connections;
    }
    if (l.health_path) {
        if (!l.health_path->empty() && (*l.health_path)[0] != '/')
            error(name("health-path") + " must start with /, got '" + *l.health_path + "'");
        c.health_path = *l.health_path;
    }
    if (l.limit_request_line) c.limit_request_line = checked_size(name("limit-request-line"), *l.limit_request_line);
    if (l.limit_request_fields)
        c.limit_request_fields = checked_size(name("limit-request-fields"), *l.limit_request_fields);
    if (l.limit_request_field_size)
        c.limit_request_field_size = checked_size(name("limit-request-field_size"), *l.limit_request_field_size);
    if (l.limit_request_body) c.limit_request_body = checked_size(name("limit-request-body"), *l.limit_request_body);
    if (l.body_buffer_size) c.body_buffer_size = checked_size(name("body-buffer-size"), *l.body_buffer_size);
    if (l.chdir) c.chdir = *l.chdir;
    if (l.virtualenv) c.virtualenv = *l.virtualenv;
    if (l.pythonpath) c.pythonpath = *l.pythonpath;
    if (l.env) c.env = *l.env;
    if (l.access_logfile) c.access_logfile = *l.access_logfile;
    if (l.error_logfile) c.error_logfile = *l.error_logfile;
    if (l.log_level) {
        static const char* const levels[] = {"debug", "info", "warning", "error", "critical"};
        std::string lv = *l.log_level;
        for (char& ch : lv) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        bool ok = false;
        for (const char* known : levels) ok = ok || lv == known;
        if (!ok)
            error(name("log-level") + " must be one of debug, info, warning, error, critical, got '" +
                  *l.log_level + "'");
        c.log_level = lv;
    }
    if (l.access_logformat) c.access_logformat = *l.access_logformat;
    if (l.forwarded_allow_ips) {
        if (l.forwarded_allow_ips->empty()) error(name("forwarded-allow-ips") + " must not be empty");
        c.forwarded_allow_ips = *l.forwarded_allow_ips;
    }
    if (l.pidfile) c.pidfile = *l.pidfile;
    if (l.proc_name) c.proc_name = *l.proc_name;
    if (l.middleware) c.middleware = *l.middleware;
    auto one_of = [&](const char* flag, const std::optional<std::string>& value, std::string& into,
                      std::initializer_list<const char*> allowed) {
        if (!value) return;
        std::string list;
        for (const char* a : allowed) {
            if (*value == a) {
                into = *value;
                return;
            }
            list += list.empty() ? a : std::string(", ") + a;
        }
        error(name(flag) + " must be one of " + list + ", got '" + *value + "'");
    };
    if (l.worker_class) apply_worker_class(c, *l.worker_class, name("worker-class"));
    one_of("interface", l.interface, c.interface, {"auto", "wsgi", "asgi"});
    one_of("loop", l.loop, c.loop, {"auto", "asyncio", "uvloop"});
    one_of("lifespan", l.lifespan, c.lifespan, {"auto", "on", "off"});
    if (l.root_path) c.root_path = *l.root_path;
    one_of("ws", l.ws, c.ws, {"auto", "none", "websockets", "wsproto"});
    if (l.ws_max_size) {
        if (*l.ws_max_size < 1) error(name("ws-max-size") + " must be 1 byte or more, got " + std::to_string(*l.ws_max_size));
        c.ws_max_size = *l.ws_max_size;
    }
    auto seconds_or_off = [&](const char* flag, double v) {
        if (!(v >= 0)) error(name(flag) + " must be 0 (off) or more seconds, got " + number_text(v));
        return v;
    };
    if (l.ws_ping_interval) c.ws_ping_interval = seconds_or_off("ws-ping-interval", *l.ws_ping_interval);
    if (l.ws_ping_timeout) c.ws_ping_timeout = seconds_or_off("ws-ping-timeout", *l.ws_ping_timeout);
    if (l.ws_per_message_deflate) c.ws_per_message_deflate = *l.ws_per_message_deflate;
    if (l.timing) {
        if (*l.timing != "off" && *l.timing != "on" && *l.timing != "full")
            error(name("timing") + " must be off, on or full, got '" + *l.timing + "'");
        c.timing = *l.timing;
    }
    if (l.server_timing) c.server_timing = *l.server_timing;
    if (l.timing_allow_ips) c.timing_allow_ips = *l.timing_allow_ips;
    if (l.access_log_json) c.access_log_json = *l.access_log_json;
    if (l.metrics_bind) c.metrics_bind = parse_bind("--metrics-bind" + source, *l.metrics_bind);
    if (l.static_mounts) {
        c.static_mounts.clear();
        for (const auto& m : *l.static_mounts) {
            auto eq = m.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == m.size() || m[0] != '/')
                error(name("static") + " must be URL_PREFIX=DIR with the prefix starting with '/', got '" + m + "'");
            c.static_mounts.emplace_back(m.substr(0, eq), m.substr(eq + 1));
        }
    }
    if (l.static_watch) c.static_watch = *l.static_watch;
    if (l.reload) c.reload = *l.reload;
    if (l.reload_extra_files) c.reload_extra_files = *l.reload_extra_files;
    if (l.reload_dirs) c.reload_dirs = *l.reload_dirs;
    if (l.reload_includes) c.reload_includes = *l.reload_includes;
    if (l.reload_excludes) c.reload_excludes = *l.reload_excludes;
    if (l.cache_size) c.cache_size = parse_byte_size(name("cache-size"), *l.cache_size);
    if (l.cache_url) {
        if (!l.cache_url->empty() && l.cache_url->rfind("redis://", 0) != 0)
            error(name("cache") + " must be a redis://host:port/db URL, got '" + *l.cache_url + "'");
        c.cache_url = *l.cache_url;
    }
    if (l.check_config) c.check_config = *l.check_config;
    if (l.print_config) c.print_config = *l.print_config;
    if (l.reuse_port) c.reuse_port = *l.reuse_port;
    if (l.sendfile) c.sendfile = *l.sendfile;
    if (l.capture_output) c.capture_output = *l.capture_output;
    if (l.umask) c.umask = parse_umask(name("umask"), *l.umask);
    if (l.user) c.user = *l.user;
    if (l.group) c.group = *l.group;
    if (l.initgroups) c.initgroups = *l.initgroups;
    for (const auto& [setting_name, value] : l.gunicorn_given) {
        const GunicornSetting* s = find_gunicorn_setting(setting_name);
        if (!s || s->answer == SettingAnswer::implemented) continue;
        // Its default, spelled out (`daemon = False` is never given; `--protocol http` is): silent.
        if (!value.empty() && value == s->by_default) continue;
        std::string message = setting_message(*s, value, source);
        if (s->answer == SettingAnswer::refused) error(message);
        c.notes.push_back(std::move(message));
    }
}

namespace {

// -k/--worker-class: gunicorn's worker classes that map onto gantry's one worker model.
void apply_worker_class(Config& c, const std::string& k, const std::string& flag) {
    static const char* const wsgi[] = {"sync", "gthread", "gantry", "gunicorn.workers.sync.SyncWorker",
                                       "gunicorn.workers.gthread.ThreadWorker"};
    static const char* const asgi[] = {"asgi", "uvicorn.workers.UvicornWorker", "uvicorn.workers.UvicornH11Worker",
                                       "uvicorn_worker.UvicornWorker", "uvicorn_worker.UvicornH11Worker",
                                       "gunicorn.workers.gasgi.ASGIWorker"};
    static const char* const green[] = {"gevent", "eventlet", "tornado", "gaiohttp"};
    for (const char* w : wsgi)
        if (k == w) return;  // --interface stays as it is (auto tells an ASGI app by itself)
    for (const char* a : asgi)
        if (k == a) {
            c.interface = "asgi";
            return;
        }
    for (const char* g : green)
        if (k == g || k.find(std::string(".") + g) != std::string::npos || k.rfind(std::string(g) + ".", 0) == 0 ||
            k.rfind(std::string("gunicorn.workers.g") + g, 0) == 0)
            error(flag + " " + k + ": gantry has no green-thread workers: serve an async app with "
                  "--interface asgi, or blocking code with --threads N");
    error(flag + " must be sync, gthread, asgi or uvicorn.workers.UvicornWorker, got '" + k + "'");
}

}  // namespace

std::pair<std::string, std::string> parse_env_pair(const std::string& what, const std::string& text) {
    auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0)
        error(what + " must be KEY=VALUE, got '" + text + "'");
    return {text.substr(0, eq), text.substr(eq + 1)};
}

std::vector<MiddlewareSpec> middleware_from_names(const std::vector<std::string>& names) {
    std::vector<MiddlewareSpec> specs;
    for (const auto& n : names)
        if (!n.empty()) specs.push_back(MiddlewareSpec{n, {}});
    return specs;
}

}  // namespace gantry
