#include "server/config_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <algorithm>
#include <iterator>
#include <map>
#include <sstream>
#include <string_view>

#include <toml.hpp>

#include "http/text.hpp"

namespace gantry {

namespace {

[[noreturn]] void error(const std::string& message) { throw ConfigError(message); }

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

}  // namespace

ConfigLayer read_config_file(const std::string& path) {
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

    ConfigLayer layer;
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
        {"reload", [&](const TomlReader& r) { layer.reload = r.boolean(); }},
        {"reload_extra_files", [&](const TomlReader& r) { layer.reload_extra_files = r.strings(false); }},
        {"reload_dirs", [&](const TomlReader& r) { layer.reload_dirs = r.strings(false); }},
        {"reload_includes", [&](const TomlReader& r) { layer.reload_includes = r.strings(false); }},
        {"reload_excludes", [&](const TomlReader& r) { layer.reload_excludes = r.strings(false); }},
        {"max_requests", [&](const TomlReader& r) { layer.max_requests = r.integer(); }},
        {"max_requests_jitter", [&](const TomlReader& r) { layer.max_requests_jitter = r.integer(); }},
        {"max_worker_memory", [&](const TomlReader& r) { layer.max_worker_memory = r.integer(); }},
        {"max_queue", [&](const TomlReader& r) { layer.max_queue = r.integer(); }},
        {"worker_connections", [&](const TomlReader& r) { layer.worker_connections = r.integer(); }},
        {"limit_concurrency", [&](const TomlReader& r) { layer.limit_concurrency = r.integer(); }},
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
        {"interface", [&](const TomlReader& r) { layer.interface = r.string(); }},
        {"loop", [&](const TomlReader& r) { layer.loop = r.string(); }},
        {"lifespan", [&](const TomlReader& r) { layer.lifespan = r.string(); }},
        {"root_path", [&](const TomlReader& r) { layer.root_path = r.string(); }},
        {"loop_block_warn", [&](const TomlReader& r) { layer.loop_block_warn = r.integer(); }},
        {"ws", [&](const TomlReader& r) { layer.ws = r.string(); }},
        {"ws_max_size", [&](const TomlReader& r) { layer.ws_max_size = r.integer(); }},
        {"ws_ping_interval", [&](const TomlReader& r) { layer.ws_ping_interval = r.number(); }},
        {"ws_ping_timeout", [&](const TomlReader& r) { layer.ws_ping_timeout = r.number(); }},
        {"ws_per_message_deflate", [&](const TomlReader& r) { layer.ws_per_message_deflate = r.boolean(); }},
        {"server_timing", [&](const TomlReader& r) { layer.server_timing = r.boolean(); }},
        {"timing_allow_ips", [&](const TomlReader& r) { layer.timing_allow_ips = r.strings(true); }},
        {"access_log_json", [&](const TomlReader& r) { layer.access_log_json = r.string(); }},
        {"metrics_bind", [&](const TomlReader& r) { layer.metrics_bind = r.string(); }},
        {"reuse_port", [&](const TomlReader& r) { layer.reuse_port = r.boolean(); }},
        {"sendfile", [&](const TomlReader& r) { layer.sendfile = r.boolean(); }},
        {"user", [&](const TomlReader& r) { layer.user = r.raw().is_integer() ? std::to_string(r.integer()) : r.string(); }},
        {"group", [&](const TomlReader& r) { layer.group = r.raw().is_integer() ? std::to_string(r.integer()) : r.string(); }},
        {"initgroups", [&](const TomlReader& r) { layer.initgroups = r.boolean(); }},
        {"capture_output", [&](const TomlReader& r) { layer.capture_output = r.boolean(); }},
        {"umask", [&](const TomlReader& r) { layer.umask = r.raw().is_integer() ? std::to_string(r.integer()) : r.string(); }},
    };

    for (const auto& [key, value] : root.as_table()) {
        auto it = setters.find(key);
        if (it == setters.end()) error("config file " + path + ": unknown key '" + key + "'");
        it->second(TomlReader(path, key, value));
    }
    return layer;
}

}  // namespace gantry
