#include "server/config.hpp"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <functional>
#include <algorithm>
#include <limits>
#include <map>
#include <sstream>
#include <string_view>

#include <CLI/CLI.hpp>
#include <toml.hpp>

#include "http/text.hpp"

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


std::pair<std::string, std::string> parse_env_pair(const std::string& what, const std::string& text) {
    auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0)
        error(what + " must be KEY=VALUE, got '" + text + "'");
    return {text.substr(0, eq), text.substr(eq + 1)};
}

BindAddress parse_bind(const std::string& what, const std::string& text) {
    try {
        return parse_bind_address(text);
    } catch (const std::invalid_argument& e) {
        error(what + ": " + e.what());
    }
}

// ---- the config file ------------------------------------------------------------------------

// One TOML value read with the key and file named in every error.
class TomlReader {
public:
    TomlReader(std::string file, std::string key, const toml::value& v)
        : file_(std::move(file)), key_(std::move(key)), v_(v) {}

    std::string string() const {
        if (!v_.is_string()) wrong("a string");
        return v_.as_string().str;
    }
    bool boolean() const {
        if (!v_.is_boolean()) wrong("true or false");
        return v_.as_boolean();
    }
    long long integer() const {
        if (!v_.is_integer()) wrong("an integer");
        return v_.as_integer();
    }
    double number() const {
        if (v_.is_integer()) return static_cast<double>(v_.as_integer());
        if (!v_.is_floating()) wrong("a number");
        return v_.as_floating();
    }
    // A list of strings, or one string (split on commas when `commas`).
    std::vector<std::string> strings(bool commas) const {
        if (v_.is_string()) {
            if (commas) return split_commas(v_.as_string().str);
            return {v_.as_string().str};
        }
        if (!v_.is_array()) wrong("a string or a list of strings");
        std::vector<std::string> out;
        for (const auto& item : v_.as_array()) {
            if (!item.is_string()) wrong("a string or a list of strings");
            out.push_back(item.as_string().str);
        }
        return out;
    }
    const toml::value& raw() const { return v_; }
    [[noreturn]] void wrong(const std::string& expected) const {
        error(file_ + ": '" + key_ + "' must be " + expected);
    }
    const std::string& key() const { return key_; }

private:
    std::string file_;
    std::string key_;
    const toml::value& v_;
};

// The values a source (file or command line) set; unset fields keep what lower layers gave.
// Raw integers stay signed until validation so "-1" gives a clear message, not a wrap-around.
struct Layer {
    std::optional<std::string> app;
    std::optional<std::vector<std::string>> binds;
    std::optional<long long> backlog, workers, threads, io_threads;
    std::optional<double> timeout, graceful_timeout, keep_alive, header_timeout;
    std::optional<bool> preload;
    std::optional<long long> max_requests, max_requests_jitter, max_worker_memory, max_queue;
    std::optional<std::string> health_path;
    std::optional<long long> limit_request_line, limit_request_fields, limit_request_field_size,
        limit_request_body, body_buffer_size;
    std::optional<std::string> chdir, virtualenv;
    std::optional<std::vector<std::string>> pythonpath;
    std::optional<std::vector<std::pair<std::string, std::string>>> env;
    std::optional<std::string> access_logfile, error_logfile, log_level, access_logformat;
    std::optional<std::vector<std::string>> forwarded_allow_ips;
    std::optional<std::string> pidfile, proc_name, worker_class;
    std::optional<std::vector<MiddlewareSpec>> middleware;
    std::optional<std::string> timing, access_log_json, metrics_bind;
    std::optional<bool> server_timing;
    std::optional<std::vector<std::string>> timing_allow_ips;
    std::optional<std::vector<std::string>> static_mounts;
    std::optional<bool> static_watch;
    std::optional<std::string> cache_size, cache_url;
};

// "--middleware timing,static" -> specs without options.
std::vector<MiddlewareSpec> middleware_from_names(const std::vector<std::string>& names) {
    std::vector<MiddlewareSpec> specs;
    for (const auto& n : names)
        if (!n.empty()) specs.push_back(MiddlewareSpec{n, {}});
    return specs;
}

// A TOML scalar as the text a middleware factory parses.
std::string toml_scalar_text(const TomlReader& r, const toml::value& v) {
    if (v.is_string()) return v.as_string().str;
    if (v.is_boolean()) return v.as_boolean() ? "true" : "false";
    if (v.is_integer()) return std::to_string(v.as_integer());
    if (v.is_floating()) {
        std::ostringstream os;
        os << v.as_floating();
        return os.str();
    }
    if (v.is_array()) {
        std::string joined;
        for (const auto& item : v.as_array()) {
            if (!joined.empty()) joined += ",";
            joined += toml_scalar_text(r, item);
        }
        return joined;
    }
    r.wrong("a list of tables with a name and scalar options");
}

// How deeply arrays and inline tables nest, outside strings and comments. toml11 parses them by
// recursion, so a file of 100000 '[' overflowed the stack (a segfault instead of an error; found
// with fuzz/config_fuzz). A gantry config nests two or three levels.
std::size_t toml_nesting_depth(std::string_view text) {
    std::size_t depth = 0, deepest = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '#') {
            i = text.find('\n', i);
            if (i == std::string_view::npos) break;
        } else if (c == '"' || c == '\'') {
            // A string: basic ones end at an unescaped quote, literal ones at the next quote; the
            // multi-line forms at three quotes.
            bool multi = text.substr(i, 3) == std::string(3, c);
            std::string_view end = multi ? std::string_view(c == '"' ? "\"\"\"" : "'''") : std::string_view(&text[i], 1);
            std::size_t j = i + (multi ? 3 : 1);
            for (; j < text.size(); ++j) {
                if (c == '"' && text[j] == '\\') {
                    ++j;
                    continue;
                }
                if (text.substr(j, end.size()) == end) break;
                if (!multi && text[j] == '\n') break;  // unterminated: toml11 reports it
            }
            i = j + end.size() - 1;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

Layer read_config_file(const std::string& path) {
    toml::value root;
    try {
        std::ifstream file(path, std::ios::binary);
        if (!file) error("cannot read config file " + path + ": " + std::strerror(errno));
        std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
        // TOML is UTF-8 only, and toml11 3.7 reads out of bounds reporting bad UTF-8 in a literal
        // string (a heap overflow under ASan, found with fuzz/config_fuzz): refuse it first.
        if (!is_strict_utf8(text)) error("config file " + path + " is not valid TOML: it is not UTF-8");
        if (toml_nesting_depth(text) > 32)
            error("config file " + path + " is not valid for gantry: arrays or tables nested more than 32 deep");
        std::istringstream in(text);
        root = toml::parse(in, path);
    } catch (const ConfigError&) {
        throw;
    } catch (const toml::syntax_error& e) {
        error("config file " + path + " is not valid TOML:\n" + e.what());
    } catch (const std::exception& e) {
        error("cannot read config file " + path + ": " + e.what());
    }
    if (!root.is_table()) error("config file " + path + " must be a TOML table");

    Layer layer;
    using Setter = std::function<void(const TomlReader&)>;
    const std::map<std::string, Setter> setters = {
        {"app", [&](const TomlReader& r) { layer.app = r.string(); }},
        {"bind", [&](const TomlReader& r) { layer.binds = r.strings(false); }},
        {"backlog", [&](const TomlReader& r) { layer.backlog = r.integer(); }},
        {"workers", [&](const TomlReader& r) { layer.workers = r.integer(); }},
        {"threads", [&](const TomlReader& r) { layer.threads = r.integer(); }},
        {"io_threads", [&](const TomlReader& r) { layer.io_threads = r.integer(); }},
        {"timeout", [&](const TomlReader& r) { layer.timeout = r.number(); }},
        {"graceful_timeout", [&](const TomlReader& r) { layer.graceful_timeout = r.number(); }},
        {"keep_alive", [&](const TomlReader& r) { layer.keep_alive = r.number(); }},
        {"header_timeout", [&](const TomlReader& r) { layer.header_timeout = r.number(); }},
        {"preload", [&](const TomlReader& r) { layer.preload = r.boolean(); }},
        {"limit_request_line", [&](const TomlReader& r) { layer.limit_request_line = r.integer(); }},
        {"limit_request_fields", [&](const TomlReader& r) { layer.limit_request_fields = r.integer(); }},
        {"limit_request_field_size",
         [&](const TomlReader& r) { layer.limit_request_field_size = r.integer(); }},
        {"limit_request_body", [&](const TomlReader& r) { layer.limit_request_body = r.integer(); }},
        {"body_buffer_size", [&](const TomlReader& r) { layer.body_buffer_size = r.integer(); }},
        {"chdir", [&](const TomlReader& r) { layer.chdir = r.string(); }},
        {"pythonpath", [&](const TomlReader& r) { layer.pythonpath = r.strings(true); }},
        {"virtualenv", [&](const TomlReader& r) { layer.virtualenv = r.string(); }},
        {"env",
         [&](const TomlReader& r) {
             std::vector<std::pair<std::string, std::string>> env;
             if (r.raw().is_table()) {
                 // A TOML table is unordered; sort by key so the result is deterministic.
                 std::map<std::string, std::string> sorted;
                 for (const auto& [k, v] : r.raw().as_table()) {
                     if (!v.is_string()) r.wrong("a table of strings or a list of \"KEY=VALUE\"");
                     sorted[k] = v.as_string().str;
                 }
                 env.assign(sorted.begin(), sorted.end());
             } else {
                 for (const auto& s : r.strings(false))
                     env.push_back(parse_env_pair("'env' in " + path, s));
             }
             layer.env = std::move(env);
         }},
        {"access_logfile", [&](const TomlReader& r) { layer.access_logfile = r.string(); }},
        {"error_logfile", [&](const TomlReader& r) { layer.error_logfile = r.string(); }},
        {"log_level", [&](const TomlReader& r) { layer.log_level = r.string(); }},
        {"access_logformat", [&](const TomlReader& r) { layer.access_logformat = r.string(); }},
        {"forwarded_allow_ips", [&](const TomlReader& r) { layer.forwarded_allow_ips = r.strings(true); }},
        {"pidfile", [&](const TomlReader& r) { layer.pidfile = r.string(); }},
        {"proc_name", [&](const TomlReader& r) { layer.proc_name = r.string(); }},
        {"worker_class", [&](const TomlReader& r) { layer.worker_class = r.string(); }},
        {"static", [&](const TomlReader& r) { layer.static_mounts = r.strings(false); }},
        {"static_watch", [&](const TomlReader& r) { layer.static_watch = r.boolean(); }},
        {"max_requests", [&](const TomlReader& r) { layer.max_requests = r.integer(); }},
        {"max_requests_jitter", [&](const TomlReader& r) { layer.max_requests_jitter = r.integer(); }},
        {"max_worker_memory", [&](const TomlReader& r) { layer.max_worker_memory = r.integer(); }},
        {"max_queue", [&](const TomlReader& r) { layer.max_queue = r.integer(); }},
        {"health_path", [&](const TomlReader& r) { layer.health_path = r.string(); }},
        {"cache_size", [&](const TomlReader& r) { layer.cache_size = r.raw().is_integer() ? std::to_string(r.integer()) : r.string(); }},
        {"cache", [&](const TomlReader& r) { layer.cache_url = r.string(); }},
        {"middleware",
         [&](const TomlReader& r) {
             // [[middleware]] tables in order (name + options), or a list of names, or "a,b".
             if (r.raw().is_string()) {
                 layer.middleware = middleware_from_names(r.strings(true));
                 return;
             }
             if (!r.raw().is_array()) r.wrong("[[middleware]] tables or a list of names");
             std::vector<MiddlewareSpec> specs;
             for (const auto& item : r.raw().as_array()) {
                 if (item.is_string()) {
                     specs.push_back(MiddlewareSpec{item.as_string().str, {}});
                     continue;
                 }
                 if (!item.is_table()) r.wrong("[[middleware]] tables or a list of names");
                 MiddlewareSpec spec;
                 std::map<std::string, std::string> options;  // sorted: deterministic
                 for (const auto& [k, v] : item.as_table()) {
                     if (k == "name") {
                         if (!v.is_string()) r.wrong("tables whose name is a string");
                         spec.name = v.as_string().str;
                     } else {
                         options[k] = toml_scalar_text(r, v);
                     }
                 }
                 if (spec.name.empty()) r.wrong("tables that each have a name");
                 spec.options.assign(options.begin(), options.end());
                 specs.push_back(std::move(spec));
             }
             layer.middleware = std::move(specs);
         }},
        {"timing", [&](const TomlReader& r) { layer.timing = r.string(); }},
        {"server_timing", [&](const TomlReader& r) { layer.server_timing = r.boolean(); }},
        {"timing_allow_ips", [&](const TomlReader& r) { layer.timing_allow_ips = r.strings(true); }},
        {"access_log_json", [&](const TomlReader& r) { layer.access_log_json = r.string(); }},
        {"metrics_bind", [&](const TomlReader& r) { layer.metrics_bind = r.string(); }},
    };

    for (const auto& [key, value] : root.as_table()) {
        auto it = setters.find(key);
        if (it == setters.end()) error("config file " + path + ": unknown key '" + key + "'");
        it->second(TomlReader(path, key, value));
    }
    return layer;
}

// ---- validation and merging -----------------------------------------------------------------

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

void apply(Config& c, const Layer& l, const std::string& source) {
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
    if (l.cache_size) c.cache_size = parse_byte_size(name("cache-size"), *l.cache_size);
    if (l.cache_url) {
        if (!l.cache_url->empty() && l.cache_url->rfind("redis://", 0) != 0)
            error(name("cache") + " must be a redis://host:port/db URL, got '" + *l.cache_url + "'");
        c.cache_url = *l.cache_url;
    }
    if (l.worker_class) {
        // Accepted so gunicorn command lines keep working; gantry has one worker model.
        const auto& k = *l.worker_class;
        if (k != "sync" && k != "gthread" && k != "gantry")
            error(name("worker-class") + " must be sync, gthread or gantry, got '" + k + "'");
    }
}

}  // namespace

CommandLine parse_command_line(int argc, const char* const* argv, const char* version) {
    if (argc >= 2 && std::string_view(argv[1]) == "compress-static") {
        // A subcommand of its own: it writes files and exits, no server flags apply.
        CLI::App sub{"gantry compress-static: write .gz, .br and .zst beside each compressible file under DIR "
                     "(skipping incompressible types and variants that save under 5%)",
                     "gantry compress-static"};
        std::string dir;
        sub.add_option("DIR", dir, "Directory to compress (e.g. your STATIC_ROOT after collectstatic)")->required();
        CommandLine result;
        try {
            sub.parse(argc - 1, argv + 1);
        } catch (const CLI::CallForHelp&) {
            result.exit_now = true;
            result.output = sub.help();
            return result;
        } catch (const CLI::ParseError& e) {
            error(e.what());
        }
        result.compress_static_dir = dir;
        return result;
    }
    CLI::App cli{"gantry: a native application server for WSGI apps, with gunicorn's command line",
                 "gantry"};
    cli.footer("Settings come from flags, then the -c TOML file, then $WEB_CONCURRENCY/$VIRTUAL_ENV, then defaults.");

    Layer flags;
    // Every option is read into a plain temporary; only those given (count() > 0) go into the layer.
    std::string app, config_file;
    std::vector<std::string> binds, pythonpath, env_pairs, forwarded, middleware_names, timing_ips;
    std::string timing_mode, access_log_json, metrics_bind;
    std::vector<std::string> static_mounts;
    bool server_timing = false, static_watch = false;
    std::string cache_size, cache_url, health_path;
    long long max_requests = 0, max_requests_jitter = 0, max_worker_memory = 0, max_queue = 0;
    long long backlog = 0, workers = 0, threads = 0, io_threads = 0;
    double timeout = 0, graceful_timeout = 0, keep_alive = 0, header_timeout = 0;
    bool preload = false, show_version = false;
    long long limit_line = 0, limit_fields = 0, limit_field_size = 0, limit_body = 0, body_buffer = 0;
    std::string chdir, virtualenv, access_logfile, error_logfile, log_level, access_logformat, pidfile,
        proc_name, worker_class;

    // Later occurrences of a single-valued flag win, as with gunicorn's argparse.
    auto single = [&](CLI::Option* o) { return o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast); };
    // Repeatable flags take exactly one value each time, so "-b a myapp:app" leaves the positional alone.
    auto repeat = [&](CLI::Option* o) {
        return o->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)->expected(1)->allow_extra_args(false);
    };

    auto* o_app = cli.add_option("APP", app, "The WSGI application, module:callable");
    auto* o_config = single(cli.add_option("-c,--config", config_file, "TOML config file (keys as the flags, with underscores)"));
    auto* o_bind = repeat(cli.add_option("-b,--bind", binds, "Address to listen on: host:port, [::1]:port, unix:/path (repeatable; default 127.0.0.1:8000)"));
    auto* o_backlog = single(cli.add_option("--backlog", backlog, "Maximum number of pending connections (default 2048)"));
    auto* o_workers = single(cli.add_option("-w,--workers", workers, "Number of worker processes (default 1, or $WEB_CONCURRENCY)"));
    auto* o_threads = single(cli.add_option("--threads", threads, "Python executor threads per worker (default 1)"));
    auto* o_io = single(cli.add_option("--io-threads", io_threads, "I/O threads per worker (default 1)"));
    auto* o_worker_class = single(cli.add_option("-k,--worker-class", worker_class, "Accepted for gunicorn compatibility: sync, gthread or gantry"));
    auto* o_timeout = single(cli.add_option("-t,--timeout", timeout, "Seconds a request may stall reading its body or writing its response (default 30); killing a stuck worker is not enforced yet"));
    auto* o_graceful = single(cli.add_option("--graceful-timeout", graceful_timeout, "Seconds to finish requests after a graceful stop (default 30)"));
    auto* o_keepalive = single(cli.add_option("--keep-alive", keep_alive, "Seconds to wait for the next request on a keep-alive connection (default 2)"));
    auto* o_header_to = single(cli.add_option("--header-timeout", header_timeout, "Seconds for the whole request head to arrive, else 408 (default 10)"));
    auto* o_preload = cli.add_flag("--preload", preload, "Load the application before forking the workers");
    auto* o_line = single(cli.add_option("--limit-request-line", limit_line, "Maximum request line size in bytes, 0 = unlimited (default 4094)"));
    auto* o_fields = single(cli.add_option("--limit-request-fields", limit_fields, "Maximum number of header fields (default 100)"));
    auto* o_field_size = single(cli.add_option("--limit-request-field_size,--limit-request-field-size", limit_field_size, "Maximum size of a header field in bytes (default 8190)"));
    auto* o_body = single(cli.add_option("--limit-request-body", limit_body, "Maximum request body in bytes, 0 = unlimited; larger bodies get 413"));
    auto* o_body_buf = single(cli.add_option("--body-buffer-size", body_buffer, "Request bodies above this many bytes spill to a temporary file (default 1 MiB)"));
    auto* o_chdir = single(cli.add_option("--chdir", chdir, "Change to this directory before loading the app"));
    auto* o_pythonpath = repeat(cli.add_option("--pythonpath", pythonpath, "Comma-separated directories to add to the Python path"));
    auto* o_venv = single(cli.add_option("--virtualenv", virtualenv, "Virtualenv to use (default $VIRTUAL_ENV)"));
    auto* o_env = repeat(cli.add_option("-e,--env", env_pairs, "Set an environment variable in the workers: KEY=VALUE (repeatable)"));
    auto* o_access = single(cli.add_option("--access-logfile", access_logfile, "Access log file, '-' for stdout (default: none)"));
    auto* o_error = single(cli.add_option("--error-logfile,--log-file", error_logfile, "Error log file, '-' for stderr (default '-')"));
    auto* o_level = single(cli.add_option("--log-level", log_level, "debug, info, warning, error or critical (default info)"));
    auto* o_format = single(cli.add_option("--access-logformat", access_logformat, "Access log format, gunicorn's atoms"));
    auto* o_forwarded = repeat(cli.add_option("--forwarded-allow-ips", forwarded, "Comma-separated proxy addresses trusted for X-Forwarded-*, '*' = all (default 127.0.0.1,::1)"));
    auto* o_pid = single(cli.add_option("-p,--pid,--pidfile", pidfile, "Write the master's pid to this file"));
    auto* o_name = single(cli.add_option("-n,--name", proc_name, "Process name (default gantry)"));
    auto* o_middleware = repeat(cli.add_option("--middleware", middleware_names, "Native middleware chain, in order, comma-separated (default timing,static)"));
    auto* o_timing = single(cli.add_option("--timing", timing_mode, "off, on or full (full: each Django middleware, the view and the database too; default on)"));
    auto* o_server_timing = cli.add_flag("--server-timing", server_timing, "Send a Server-Timing header to clients from --timing-allow-ips");
    auto* o_timing_ips = repeat(cli.add_option("--timing-allow-ips", timing_ips, "Comma-separated client addresses that may see Server-Timing, '*' = all (default 127.0.0.1,::1)"));
    auto* o_access_json = single(cli.add_option("--access-log-json", access_log_json, "JSON-lines access log with every stage's time in microseconds, '-' for stdout"));
    auto* o_metrics = single(cli.add_option("--metrics-bind", metrics_bind, "Serve Prometheus metrics of all workers at http://ADDRESS/metrics (e.g. 127.0.0.1:9100)"));
    auto* o_static = repeat(cli.add_option("--static", static_mounts, "Serve the files of DIR under URL_PREFIX natively: URL_PREFIX=DIR, repeatable (a Django app's STATIC_URL -> STATIC_ROOT is served without it)"));
    auto* o_static_watch = cli.add_flag("--static-watch", static_watch, "The static file index follows file changes (inotify); on by itself when Django's DEBUG is on. Reloads no Python code");
    auto* o_max_requests = single(cli.add_option("--max-requests", max_requests, "Recycle a worker after this many requests (0: never; default 0)"));
    auto* o_max_jitter = single(cli.add_option("--max-requests-jitter", max_requests_jitter, "Plus a random 0..N requests per worker, so they do not all recycle at once"));
    auto* o_max_memory = single(cli.add_option("--max-worker-memory", max_worker_memory, "Recycle a worker whose private RSS exceeds this many MB, checked between requests (0: never)"));
    auto* o_max_queue = single(cli.add_option("--max-queue", max_queue, "Requests waiting for a Python thread above this get 503 with Retry-After (0: unbounded; default 256)"));
    auto* o_health = single(cli.add_option("--health-path", health_path, "Answer this path natively: 200 while the worker runs; PATH/ready: 200, or 503 while draining"));
    auto* o_cache_size = single(cli.add_option("--cache-size", cache_size, "The response cache and Django cache store shared by all workers: 256MB, 1GiB, bytes; 0 for none (default 64MB)"));
    auto* o_cache = single(cli.add_option("--cache", cache_url, "A Redis server as the shared cache tier: redis://host:port/db"));
    cli.add_flag("-v,--version", show_version, "Print the version and exit");

    CommandLine result;
    try {
        cli.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        result.exit_now = true;
        result.output = cli.help();
        return result;
    } catch (const CLI::ParseError& e) {
        error(e.what());
    }
    if (show_version) {
        result.exit_now = true;
        result.output = std::string("gantry ") + version + "\n";
        return result;
    }

    if (o_app->count()) flags.app = app;
    if (o_bind->count()) flags.binds = binds;
    if (o_backlog->count()) flags.backlog = backlog;
    if (o_workers->count()) flags.workers = workers;
    if (o_threads->count()) flags.threads = threads;
    if (o_io->count()) flags.io_threads = io_threads;
    if (o_worker_class->count()) flags.worker_class = worker_class;
    if (o_timeout->count()) flags.timeout = timeout;
    if (o_graceful->count()) flags.graceful_timeout = graceful_timeout;
    if (o_keepalive->count()) flags.keep_alive = keep_alive;
    if (o_header_to->count()) flags.header_timeout = header_timeout;
    if (o_preload->count()) flags.preload = preload;
    if (o_line->count()) flags.limit_request_line = limit_line;
    if (o_fields->count()) flags.limit_request_fields = limit_fields;
    if (o_field_size->count()) flags.limit_request_field_size = limit_field_size;
    if (o_body->count()) flags.limit_request_body = limit_body;
    if (o_body_buf->count()) flags.body_buffer_size = body_buffer;
    if (o_chdir->count()) flags.chdir = chdir;
    if (o_pythonpath->count()) {
        std::vector<std::string> all;
        for (const auto& p : pythonpath)
            for (auto& part : split_commas(p)) all.push_back(std::move(part));
        flags.pythonpath = std::move(all);
    }
    if (o_venv->count()) flags.virtualenv = virtualenv;
    if (o_env->count()) {
        std::vector<std::pair<std::string, std::string>> env;
        for (const auto& e : env_pairs) env.push_back(parse_env_pair("--env", e));
        flags.env = std::move(env);
    }
    if (o_access->count()) flags.access_logfile = access_logfile;
    if (o_error->count()) flags.error_logfile = error_logfile;
    if (o_level->count()) flags.log_level = log_level;
    if (o_format->count()) flags.access_logformat = access_logformat;
    if (o_forwarded->count()) {
        std::vector<std::string> all;
        for (const auto& f : forwarded)
            for (auto& part : split_commas(f)) all.push_back(std::move(part));
        flags.forwarded_allow_ips = std::move(all);
    }
    if (o_middleware->count()) {
        std::vector<std::string> all;
        for (const auto& m : middleware_names)
            for (auto& part : split_commas(m)) all.push_back(std::move(part));
        flags.middleware = middleware_from_names(all);
    }
    if (o_timing->count()) flags.timing = timing_mode;
    if (o_server_timing->count()) flags.server_timing = server_timing;
    if (o_timing_ips->count()) {
        std::vector<std::string> all;
        for (const auto& f : timing_ips)
            for (auto& part : split_commas(f)) all.push_back(std::move(part));
        flags.timing_allow_ips = std::move(all);
    }
    if (o_access_json->count()) flags.access_log_json = access_log_json;
    if (o_metrics->count()) flags.metrics_bind = metrics_bind;
    if (o_static->count()) flags.static_mounts = static_mounts;
    if (o_static_watch->count()) flags.static_watch = static_watch;
    if (o_cache_size->count()) flags.cache_size = cache_size;
    if (o_max_requests->count()) flags.max_requests = max_requests;
    if (o_max_jitter->count()) flags.max_requests_jitter = max_requests_jitter;
    if (o_max_memory->count()) flags.max_worker_memory = max_worker_memory;
    if (o_max_queue->count()) flags.max_queue = max_queue;
    if (o_health->count()) flags.health_path = health_path;
    if (o_cache->count()) flags.cache_url = cache_url;
    if (o_pid->count()) flags.pidfile = pidfile;
    if (o_name->count()) flags.proc_name = proc_name;

    // Layers, lowest first: defaults, environment, config file, flags.
    Config& config = result.config;
    Layer environment;
    if (const char* wc = std::getenv("WEB_CONCURRENCY"); wc && *wc) {
        long long n = 0;
        auto [end, ec] = std::from_chars(wc, wc + std::strlen(wc), n);
        if (ec != std::errc() || *end != '\0')
            error("$WEB_CONCURRENCY must be a number of workers, got '" + std::string(wc) + "'");
        environment.workers = n;
    }
    if (const char* venv = std::getenv("VIRTUAL_ENV"); venv && *venv) environment.virtualenv = venv;
    apply(config, environment, " (from the environment)");

    if (o_config->count()) {
        config.config_file = config_file;
        apply(config, read_config_file(config_file), " (in " + config_file + ")");
    }
    apply(config, flags, "");

    if (config.binds.empty()) config.binds.push_back(parse_bind_address("127.0.0.1:8000"));
    if (config.app.empty())
        error("no application given: gantry [OPTIONS] module:callable (or app = \"module:callable\" in the config file)");
    return result;
}

ChainSettings chain_settings(const Config& config) {
    ChainSettings s;
    s.chain = config.middleware;
    s.timed = config.timing != "off";
    s.server_timing = config.server_timing;
    s.timing_allow_ips = config.timing_allow_ips;
    s.static_mounts = config.static_mounts;
    s.static_watch = config.static_watch;
    s.cache_size = config.cache_size;
    return s;
}

}  // namespace gantry
