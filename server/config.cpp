#include "server/config.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <CLI/CLI.hpp>

#include "http/text.hpp"
#include "server/config_arguments.hpp"
#include "server/config_layer.hpp"
#include "server/gunicorn_flags.hpp"
#include "server/gunicorn_settings.hpp"

namespace gantry {

namespace {

[[noreturn]] void error(const std::string& message) { throw ConfigError(message); }

}  // namespace

CommandLine parse_command_line(int argc, const char* const* argv, const char* version, PythonConfigReader* python) {
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
    return read_config_sources(std::vector<std::string>(argv + 1, argv + argc), version, python);
}

// One list of arguments (CLI11): every flag read into a layer.
ArgumentsRead read_arguments(const std::vector<std::string>& args, const char* version) {
    CLI::App cli{"gantry: a native application server for WSGI apps, with gunicorn's command line",
                 "gantry"};
    cli.footer("Settings come from flags, then $GANTRY_CMD_ARGS, then $GUNICORN_CMD_ARGS, then the -c file "
               "(gunicorn.conf.py, python:module or TOML; ./gunicorn.conf.py when present), then "
               "$WEB_CONCURRENCY/$VIRTUAL_ENV, then defaults. Every gunicorn setting: docs/gunicorn.md.");

    ConfigLayer flags;
    // Every option is read into a plain temporary; only those given (count() > 0) go into the layer.
    std::string app, config_file;
    std::vector<std::string> binds, pythonpath, env_pairs, forwarded, middleware_names, timing_ips;
    std::string timing_mode, access_log_json, metrics_bind, interface, loop, lifespan, root_path, ws;
    long long ws_max_size = 0;
    double ws_ping_interval = 0, ws_ping_timeout = 0;
    bool ws_per_message_deflate = true;
    std::vector<std::string> static_mounts;
    bool server_timing = false, static_watch = false, reload = false;
    std::vector<std::string> reload_extra_files, reload_dirs, reload_includes, reload_excludes;
    std::string cache_size, cache_url, health_path;
    long long max_requests = 0, max_requests_jitter = 0, max_worker_memory = 0, max_queue = 0, worker_connections = 0,
              limit_concurrency = 0, port = 0, loop_block_warn = 0;
    std::string host, uds;
    double timeout_keep_alive = 0;
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

    auto* o_app = cli.add_option("APP", app, "The WSGI or ASGI application, module:callable");
    auto* o_config = single(cli.add_option("-c,--config", config_file, "Config file: a gunicorn.conf.py (or python:module.name), or a TOML file (.toml; keys as the flags, with underscores)"));
    repeat(cli.add_option("-b,--bind", binds, "Address to listen on: host:port, [::1]:port, unix:/path (repeatable; default 127.0.0.1:8000)"));
    auto* o_backlog = single(cli.add_option("--backlog", backlog, "Maximum number of pending connections (default 2048)"));
    auto* o_workers = single(cli.add_option("-w,--workers", workers, "Number of worker processes (default 1, or $WEB_CONCURRENCY)"));
    auto* o_threads = single(cli.add_option("--threads", threads, "Python executor threads per worker (default 1)"));
    auto* o_io = single(cli.add_option("--io-threads", io_threads, "I/O threads per worker (default 1)"));
    auto* o_worker_class = single(cli.add_option("-k,--worker-class", worker_class, "Accepted for gunicorn compatibility: sync, gthread or gantry"));
    auto* o_timeout = single(cli.add_option("-t,--timeout", timeout, "Seconds an app call may run (504 after; WSGI: the worker is replaced, ASGI: the task cancelled); also the socket I/O deadline (default 30)"));
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
    auto* o_interface = single(cli.add_option("--interface", interface, "auto, wsgi or asgi (auto: an async callable, or an object whose __call__ is one, is ASGI; default auto)"));
    auto* o_loop = single(cli.add_option("--loop", loop, "The ASGI event loop: auto (uvloop when installed), asyncio or uvloop"));
    auto* o_lifespan = single(cli.add_option("--lifespan", lifespan, "ASGI lifespan: auto (used if the app supports it), on (a failure stops the worker) or off"));
    auto* o_root_path = single(cli.add_option("--root-path", root_path, "The ASGI scope's root_path, for an app mounted below a prefix"));
    auto* o_loop_block = single(cli.add_option("--loop-block-warn", loop_block_warn, "Log an ASGI event loop blocked longer than this many ms, with its stack (0: off; default 100)"));
    auto* o_ws = single(cli.add_option("--ws", ws, "WebSocket: auto, or none (an upgrade request is an ordinary request); uvicorn's websockets and wsproto mean auto (default auto)"));
    auto* o_ws_max_size = single(cli.add_option("--ws-max-size", ws_max_size, "Largest WebSocket message in bytes; a larger one closes the connection with 1009 (default 16777216)"));
    auto* o_ws_ping_interval = single(cli.add_option("--ws-ping-interval", ws_ping_interval, "Seconds between the server's WebSocket pings (0: none; default 20)"));
    auto* o_ws_ping_timeout = single(cli.add_option("--ws-ping-timeout", ws_ping_timeout, "Seconds a WebSocket peer may stay silent after a ping before it is closed with 1011 (0: forever; default 20)"));
    auto* o_ws_deflate = single(cli.add_option("--ws-per-message-deflate", ws_per_message_deflate, "Offer WebSocket permessage-deflate compression: true or false (default true)"));
    auto* o_timing = single(cli.add_option("--timing", timing_mode, "off, on or full (full: each Django middleware, the view and the database too; default on)"));
    auto* o_server_timing = cli.add_flag("--server-timing", server_timing, "Send a Server-Timing header to clients from --timing-allow-ips");
    auto* o_timing_ips = repeat(cli.add_option("--timing-allow-ips", timing_ips, "Comma-separated client addresses that may see Server-Timing, '*' = all (default 127.0.0.1,::1)"));
    auto* o_access_json = single(cli.add_option("--access-log-json", access_log_json, "JSON-lines access log with every stage's time in microseconds, '-' for stdout"));
    auto* o_metrics = single(cli.add_option("--metrics-bind", metrics_bind, "Serve Prometheus metrics of all workers at http://ADDRESS/metrics (e.g. 127.0.0.1:9100)"));
    auto* o_static = repeat(cli.add_option("--static", static_mounts, "Serve the files of DIR under URL_PREFIX natively: URL_PREFIX=DIR, repeatable (a Django app's STATIC_URL -> STATIC_ROOT is served without it)"));
    auto* o_static_watch = cli.add_flag("--static-watch", static_watch, "The static file index follows file changes (inotify); on by itself when Django's DEBUG is on. Reloads no Python code");
    auto* o_reload = cli.add_flag("--reload", reload, "Restart the workers when the app's code changes (development); code that no longer imports gets a 500 page with its traceback until the next good save");
    auto* o_reload_extra = repeat(cli.add_option("--reload-extra-file", reload_extra_files, "With --reload: also restart when this file changes, whatever its name (repeatable)"));
    auto* o_reload_dir = repeat(cli.add_option("--reload-dir", reload_dirs, "With --reload: watch this directory tree instead of the app's (--chdir, else the current directory); repeatable"));
    auto* o_reload_include = repeat(cli.add_option("--reload-include", reload_includes, "With --reload: also restart for files matching this glob (repeatable; default *.py, *.html, *.mo)"));
    auto* o_reload_exclude = repeat(cli.add_option("--reload-exclude", reload_excludes, "With --reload: ignore files and directories matching this glob (repeatable; default .*, .py[cod], .sw.*, ~*)"));
    auto* o_max_requests = single(cli.add_option("--max-requests", max_requests, "Recycle a worker after this many requests (0: never; default 0)"));
    auto* o_max_jitter = single(cli.add_option("--max-requests-jitter", max_requests_jitter, "Plus a random 0..N requests per worker, so they do not all recycle at once"));
    auto* o_max_memory = single(cli.add_option("--max-worker-memory", max_worker_memory, "Recycle a worker whose private RSS exceeds this many MB, checked between requests (0: never)"));
    auto* o_max_queue = single(cli.add_option("--max-queue", max_queue, "Requests waiting for Python above this get 503 with Retry-After (0: unbounded; default 256 for WSGI, unbounded for ASGI)"));
    // uvicorn's spellings, so that a uvicorn command line changes one word.
    auto* o_host = single(cli.add_option("--host", host, "uvicorn's: listen on this host (with --port; adds to --bind)"));
    auto* o_port = single(cli.add_option("--port", port, "uvicorn's: listen on this port (with --host, default 127.0.0.1)"));
    auto* o_uds = single(cli.add_option("--uds", uds, "uvicorn's: listen on this unix socket (unix:PATH for --bind)"));
    auto* o_timeout_keep_alive = single(cli.add_option("--timeout-keep-alive", timeout_keep_alive, "uvicorn's name for --keep-alive"));
    auto* o_limit_concurrency = single(cli.add_option("--limit-concurrency", limit_concurrency, "Requests in the app at once per worker above this get 503 (uvicorn's; 0: no limit)"));
    auto* o_worker_connections = single(cli.add_option("--worker-connections", worker_connections, "Connections a worker holds at most; beyond it new ones wait in the listen backlog (default 1000)"));
    auto* o_health = single(cli.add_option("--health-path", health_path, "Answer this path natively: 200 while the worker runs; PATH/ready: 200, or 503 while draining"));
    auto* o_cache_size = single(cli.add_option("--cache-size", cache_size, "The response cache and Django cache store shared by all workers: 256MB, 1GiB, bytes; 0 for none (default 64MB)"));
    auto* o_cache = single(cli.add_option("--cache", cache_url, "A Redis server as the shared cache tier: redis://host:port/db"));
    cli.add_flag("-v,--version", show_version, "Print the version and exit");
    // gunicorn's settings that gantry implements beside the above (docs/gunicorn.md)
    bool check_config = false, print_config = false, reuse_port = false, capture_output = false;
    std::string umask, asgi_loop, asgi_lifespan;
    auto* o_check = cli.add_flag("--check-config", check_config, "Read the settings and load the app, then exit (0: both worked)");
    auto* o_print = cli.add_flag("--print-config", print_config, "Print the settings in effect as a TOML file, then check as --check-config");
    auto* o_reuse_port = cli.add_flag("--reuse-port", reuse_port, "Set SO_REUSEPORT on the listening sockets");
    std::string user, group;
    bool initgroups = false;
    auto* o_user = single(cli.add_option("-u,--user", user, "Workers run as this user (a name or a uid); the master binds as root first"));
    auto* o_group = single(cli.add_option("-g,--group", group, "Workers run as this group (a name or a gid; default: the --user's own group)"));
    auto* o_initgroups = cli.add_flag("--initgroups", initgroups, "Workers get the --user's supplementary groups (else the group alone)");
    bool no_sendfile = false;
    auto* o_no_sendfile = cli.add_flag("--no-sendfile", no_sendfile, "Send file bodies by reading and writing them, not with sendfile(2)");
    auto* o_capture = cli.add_flag("--capture-output", capture_output, "Send the app's stdout and stderr to --error-logfile (when it is a file)");
    auto* o_umask = single(cli.add_option("-m,--umask", umask, "The umask of the master and the workers: 0022, 0o22 or decimal"));
    auto* o_asgi_loop = single(cli.add_option("--asgi-loop", asgi_loop, "gunicorn 26's name for --loop"));
    auto* o_asgi_lifespan = single(cli.add_option("--asgi-lifespan", asgi_lifespan, "gunicorn 26's name for --lifespan"));
    bool print_table = false;
    cli.add_flag("--print-settings-table", print_table, "Print gunicorn's settings and gantry's answer to each as Markdown (docs/gunicorn.md), then exit");
    GunicornCompatFlags compat(cli);  // every other gunicorn flag: noted or refused

    ArgumentsRead result;
    try {
        std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
        cli.parse(reversed);
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
    if (print_table) {
        result.exit_now = true;
        result.output = gunicorn_settings_markdown();
        return result;
    }

    if (o_app->count()) flags.app = app;
    if (o_host->count() || o_port->count() || o_uds->count()) {
        // uvicorn's --host/--port/--uds: more listening addresses, as if given with --bind.
        if (o_host->count() || o_port->count()) {
            std::string h = o_host->count() ? host : "127.0.0.1";
            if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";
            binds.push_back(h + ":" + std::to_string(o_port->count() ? port : 8000));
        }
        if (o_uds->count()) binds.push_back("unix:" + uds);
    }
    if (!binds.empty()) flags.binds = binds;
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
    if (o_interface->count()) flags.interface = interface;
    if (o_loop->count()) flags.loop = loop;
    if (o_lifespan->count()) flags.lifespan = lifespan;
    if (o_root_path->count()) flags.root_path = root_path;
    if (o_ws->count()) flags.ws = ws;
    if (o_ws_max_size->count()) flags.ws_max_size = ws_max_size;
    if (o_ws_ping_interval->count()) flags.ws_ping_interval = ws_ping_interval;
    if (o_ws_ping_timeout->count()) flags.ws_ping_timeout = ws_ping_timeout;
    if (o_ws_deflate->count()) flags.ws_per_message_deflate = ws_per_message_deflate;
    if (o_loop_block->count()) flags.loop_block_warn = loop_block_warn;
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
    if (o_reload->count()) flags.reload = reload;
    if (o_reload_extra->count()) flags.reload_extra_files = reload_extra_files;
    if (o_reload_dir->count()) flags.reload_dirs = reload_dirs;
    if (o_reload_include->count()) flags.reload_includes = reload_includes;
    if (o_reload_exclude->count()) flags.reload_excludes = reload_excludes;
    if (o_cache_size->count()) flags.cache_size = cache_size;
    if (o_max_requests->count()) flags.max_requests = max_requests;
    if (o_max_jitter->count()) flags.max_requests_jitter = max_requests_jitter;
    if (o_max_memory->count()) flags.max_worker_memory = max_worker_memory;
    if (o_max_queue->count()) flags.max_queue = max_queue;
    if (o_worker_connections->count()) flags.worker_connections = worker_connections;
    if (o_limit_concurrency->count()) flags.limit_concurrency = limit_concurrency;
    if (o_timeout_keep_alive->count()) flags.keep_alive = timeout_keep_alive;
    if (o_health->count()) flags.health_path = health_path;
    if (o_cache->count()) flags.cache_url = cache_url;
    if (o_pid->count()) flags.pidfile = pidfile;
    if (o_name->count()) flags.proc_name = proc_name;

    if (o_check->count()) flags.check_config = check_config;
    if (o_print->count()) flags.print_config = print_config;
    if (o_reuse_port->count()) flags.reuse_port = reuse_port;
    if (o_no_sendfile->count()) flags.sendfile = false;
    if (o_user->count()) flags.user = user;
    if (o_group->count()) flags.group = group;
    if (o_initgroups->count()) flags.initgroups = initgroups;
    if (o_capture->count()) flags.capture_output = capture_output;
    if (o_umask->count()) flags.umask = umask;
    if (o_asgi_loop->count()) flags.loop = asgi_loop;
    if (o_asgi_lifespan->count()) flags.lifespan = asgi_lifespan;
    compat.take(flags);
    if (o_config->count()) result.config_file = config_file;
    result.layer = std::move(flags);
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
