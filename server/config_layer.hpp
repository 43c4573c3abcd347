#pragma once
// One source of settings (the command line, the -c TOML file, the environment) as it was read,
// before validation: each field is set only if that source gave it, and unset ones keep what the
// layers below gave. apply_layer checks the values and merges them into a Config.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/config.hpp"

namespace gantry {

// Raw integers stay signed until validation so "-1" gives a clear message, not a wrap-around.
struct ConfigLayer {
    std::optional<std::string> app;
    std::optional<std::vector<std::string>> binds;
    std::optional<long long> backlog, workers, threads, io_threads;
    std::optional<double> timeout, graceful_timeout, keep_alive, header_timeout;
    std::optional<bool> preload;
    std::optional<long long> max_requests, max_requests_jitter, max_worker_memory, max_queue, worker_connections,
        limit_concurrency;
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
    std::optional<std::string> interface, loop, lifespan, root_path;
    std::optional<long long> loop_block_warn;
    std::optional<std::string> ws;
    std::optional<long long> ws_max_size;
    std::optional<double> ws_ping_interval, ws_ping_timeout;
    std::optional<bool> ws_per_message_deflate;
    std::optional<bool> server_timing;
    std::optional<std::vector<std::string>> timing_allow_ips;
    std::optional<std::vector<std::string>> static_mounts;
    std::optional<bool> static_watch;
    std::optional<bool> reload;
    std::optional<std::vector<std::string>> reload_extra_files, reload_dirs, reload_includes, reload_excludes;
    std::optional<std::string> cache_size, cache_url;
    std::optional<bool> check_config, print_config, reuse_port, capture_output, sendfile;
    std::optional<std::string> umask, user, group;
    std::optional<bool> initgroups;
    // gunicorn settings that gantry notes or refuses (server/gunicorn_settings.hpp), as given:
    // (setting name, value; "" for a switch or a hook).
    std::vector<std::pair<std::string, std::string>> gunicorn_given;
};

// Validates every value `layer` set and overrides `config` with it. Errors name the flag and the
// source: `source` is appended to it (" (in gantry.toml)", " (from the environment)", "" for flags).
// Throws ConfigError.
void apply_layer(Config& config, const ConfigLayer& layer, const std::string& source);

// The value forms the command line and the file share. Both throw ConfigError naming `what`.
// "KEY=VALUE" (--env, the file's env list).
std::pair<std::string, std::string> parse_env_pair(const std::string& what, const std::string& text);
// "--middleware timing,static" -> specs without options.
std::vector<MiddlewareSpec> middleware_from_names(const std::vector<std::string>& names);

}  // namespace gantry
