#pragma once
// Everything the command line and the TOML config file can set, with gunicorn's names and defaults.
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "http/config_error.hpp"
#include "middleware/registry.hpp"
#include "server/bind_address.hpp"
#include "server/privileges.hpp"

namespace gantry {

inline constexpr const char* kGunicornAccessLogFormat =
    R"(%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s")";

struct Config {
    // The application, "module:callable" or "module:factory(args)" (positional WSGI_APP).
    std::string app;

    // Listening
    std::vector<BindAddress> binds;            // --bind/-b, repeatable; default 127.0.0.1:8000
    int backlog = 2048;                         // --backlog

    // Processes and threads
    int workers = 1;                            // --workers/-w (also $WEB_CONCURRENCY)
    int threads = 1;                            // --threads: Python executor threads per worker
    int io_threads = 1;                         // --io-threads: Asio I/O threads per worker (gantry)
    double timeout = 30;                        // --timeout/-t, seconds: a longer app call gets 504 (WSGI: the worker is replaced; ASGI: the task cancelled)
    double graceful_timeout = 30;               // --graceful-timeout, seconds
    double keep_alive = 2;                      // --keep-alive, seconds idle between requests
    double header_timeout = 10;                 // --header-timeout: whole header must arrive within (408)
    bool preload = false;                       // --preload
    long long max_requests = 0;                 // --max-requests: recycle a worker after so many (0: never)
    long long max_requests_jitter = 0;          // --max-requests-jitter: plus a random 0..N per worker
    long long max_worker_memory = 0;            // --max-worker-memory MB: recycle above this private RSS (0: never)
    // --max-queue: requests waiting for Python above this get 503. Unset (-1): 256 for WSGI, off
    // for ASGI, whose loop takes a whole burst per wake-up (512 clients' first requests at once
    // are not an overload; uvicorn has no such limit either).
    long long max_queue = -1;
    long long worker_connections = 1000;        // --worker-connections: connections a worker holds at most
    long long limit_concurrency = 0;            // --limit-concurrency (uvicorn's): requests in the app above this get 503
    std::string health_path;                    // --health-path: answered natively (liveness; +"/ready": readiness)

    // HTTP limits (gunicorn's names and defaults; 0 means unlimited where gunicorn says so)
    std::size_t limit_request_line = 4094;      // --limit-request-line: 414 above
    std::size_t limit_request_fields = 100;     // --limit-request-fields: 431 above
    std::size_t limit_request_field_size = 8190;// --limit-request-field_size: 431 above
    std::size_t limit_request_body = 0;         // --limit-request-body, bytes, 0 = unlimited: 413 above
    std::size_t body_buffer_size = 1 << 20;     // --body-buffer-size: request bodies above spill to a temp file

    // Python
    std::string chdir;                          // --chdir
    std::vector<std::string> pythonpath;        // --pythonpath, comma-separated and/or repeated
    std::string virtualenv;                     // --virtualenv (default: $VIRTUAL_ENV)
    std::vector<std::pair<std::string, std::string>> env;  // -e/--env KEY=VALUE, repeatable

    // Logging
    std::string access_logfile;                 // --access-logfile: "" none, "-" stdout
    std::string error_logfile = "-";            // --error-logfile/--log-file: "-" stderr
    std::string log_level = "info";             // --log-level: debug info warning error critical
    std::string access_logformat = kGunicornAccessLogFormat;  // --access-logformat

    // Proxies
    std::vector<std::string> forwarded_allow_ips = {"127.0.0.1", "::1"};  // --forwarded-allow-ips, "*" = all

    // Native middleware and timing
    // The default chain: timing, then static (which costs a prefix check when nothing is mounted).
    std::vector<MiddlewareSpec> middleware = {{"timing", {}}, {"static", {}}};  // --middleware a,b / [[middleware]]
    std::string timing = "on";                  // --timing off|on|full (full: inside Django too)
    // The protocol (uvicorn's flags)
    std::string interface = "auto";             // --interface auto|wsgi|asgi (auto: an async callable is ASGI)
    std::string loop = "auto";                  // --loop auto|asyncio|uvloop (ASGI)
    std::string lifespan = "auto";              // --lifespan auto|on|off (ASGI)
    std::string root_path;                      // --root-path: the ASGI scope's root_path
    long long loop_block_warn = 100;
    // WebSocket (uvicorn's names and defaults)
    std::string ws = "auto";                    // --ws auto|none (none: an upgrade is an ordinary request; websockets, wsproto: auto)
    long long ws_max_size = 16777216;           // --ws-max-size, bytes: a larger message is closed with 1009
    double ws_ping_interval = 20;               // --ws-ping-interval, seconds (0: no pings)
    double ws_ping_timeout = 20;                // --ws-ping-timeout, seconds without an answer to a ping: 1011 (0: wait forever)
    bool ws_per_message_deflate = true;         // --ws-per-message-deflate            // --loop-block-warn MS: an ASGI loop blocked longer is logged (0: off)
    bool server_timing = false;                 // --server-timing: send the Server-Timing header
    std::vector<std::string> timing_allow_ips = {"127.0.0.1", "::1"};  // --timing-allow-ips, "*" = all
    std::string access_log_json;                // --access-log-json FILE ("-" = stdout): one JSON record per request
    std::optional<BindAddress> metrics_bind;    // --metrics-bind: Prometheus /metrics, for all workers together

    // Static files (the "static" middleware; a Django app's STATIC_URL -> STATIC_ROOT is added by it)
    std::vector<std::pair<std::string, std::string>> static_mounts;  // --static URL_PREFIX=DIR, repeatable
    bool static_watch = false;                  // --static-watch: the index follows file changes (inotify)

    // Reload on save (development; docs/dev-server.md)
    bool reload = false;                        // --reload: restart the workers when the app's code changes
    std::vector<std::string> reload_extra_files;  // --reload-extra-file FILE, repeatable: watched whatever its name
    std::vector<std::string> reload_dirs;       // --reload-dir DIR, repeatable (default: --chdir, else the cwd)
    std::vector<std::string> reload_includes;   // --reload-include GLOB, repeatable: added to the default ones
    std::vector<std::string> reload_excludes;   // --reload-exclude GLOB, repeatable: added to the default ones

    // Response cache and the Django cache backend
    std::size_t cache_size = 64u << 20;         // --cache-size: the store shared by all workers, bytes (0: none)
    std::string cache_url;                      // --cache redis://host:port/db: the shared Redis tier

    std::string config_file;                    // -c/--config: gunicorn.conf.py, python:module or a TOML file
    std::string pidfile;                        // --pid/--pidfile
    std::string proc_name = "gantry";           // --name/-n

    // gunicorn's command line (docs/gunicorn.md): the settings gantry implements beside the above
    bool check_config = false;                  // --check-config: load the app, then exit
    bool print_config = false;                  // --print-config: print the settings, then as --check-config
    bool reuse_port = false;                    // --reuse-port: SO_REUSEPORT on the listeners
    bool sendfile = true;                       // --no-sendfile: file bodies are read and written instead
    bool capture_output = false;                // --capture-output: stdout/stderr into --error-logfile
    int umask = -1;                             // -m/--umask (-1: the inherited one)
    std::string user, group;                    // -u/--user, -g/--group: names or numbers, as given
    bool initgroups = false;                    // --initgroups: the user's supplementary groups
    WorkerIdentity identity;                    // what the workers switch to (resolved from the above)
    // What the noted gunicorn settings said (one line each), logged by the master at start.
    std::vector<std::string> notes;
};

// What parse_command_line decided: run with a config, or exit now (--help, --version) printing `output`.
struct CommandLine {
    Config config;
    std::string compress_static_dir;  // `gantry compress-static DIR`: run that instead of a server
    bool exit_now = false;
    int exit_code = 0;
    std::string output;
};

// The settings of the native middleware chain, taken from the config.
ChainSettings chain_settings(const Config& config);

class PythonConfigReader;  // server/config_sources.hpp

// As gunicorn orders them: the command line over $GANTRY_CMD_ARGS over $GUNICORN_CMD_ARGS over the
// config file (-c, else ./gunicorn.conf.py) over $WEB_CONCURRENCY/$VIRTUAL_ENV over the defaults.
// A Python config file is read by `python` (none: such a file is an error). Throws ConfigError.
CommandLine parse_command_line(int argc, const char* const* argv, const char* version,
                               PythonConfigReader* python = nullptr);

}  // namespace gantry
