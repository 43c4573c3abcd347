#include "server/gunicorn_settings.hpp"

#include <sstream>

namespace gantry {

namespace {

using F = SettingForm;
using A = SettingAnswer;

// The answers, for the settings of Debian 12's gunicorn 20.1 and of gunicorn 26.1. A refused setting given its default value passes silently (a
// config file that spells out `daemon = False` still runs).
const std::vector<GunicornSetting> kSettings = {
    // Config File
    {"config", "-c --config", "Config File", F::value, A::implemented, "./gunicorn.conf.py",
     "A Python file executed as gunicorn does (its module-level names are settings), `python:module.name`, or a "
     "gantry TOML file (`.toml`). `./gunicorn.conf.py` is read when present and none is given", ""},
    {"wsgi_app", "", "Config File", F::file_only, A::implemented, "",
     "The application when the command line names none", ""},
    // Server Socket
    {"bind", "-b --bind", "Server Socket", F::repeated, A::implemented, "127.0.0.1:8000",
     "`host:port`, `[::1]:port`, `unix:/path`; repeatable", ""},
    {"backlog", "--backlog", "Server Socket", F::value, A::implemented, "2048", "The listen backlog", ""},
    // Worker Processes
    {"workers", "-w --workers", "Worker Processes", F::value, A::implemented, "1",
     "Worker processes (`$WEB_CONCURRENCY` below the config file)", ""},
    {"worker_class", "-k --worker-class", "Worker Processes", F::value, A::implemented, "sync",
     "`sync`, `gthread`: WSGI (with `--threads` Python threads); `uvicorn.workers.UvicornWorker`, "
     "`uvicorn_worker.UvicornWorker`, `asgi`: `--interface asgi`. Green-thread classes (`gevent`, `eventlet`, "
     "`tornado`) are refused: use `--interface asgi` or `--threads`", ""},
    {"threads", "--threads", "Worker Processes", F::value, A::implemented, "1", "Python threads per worker", ""},
    {"worker_connections", "--worker-connections", "Worker Processes", F::value, A::implemented, "1000",
     "Connections a worker holds; more wait in the backlog", ""},
    {"max_requests", "--max-requests", "Worker Processes", F::value, A::implemented, "0",
     "Recycle a worker after this many requests", ""},
    {"max_requests_jitter", "--max-requests-jitter", "Worker Processes", F::value, A::implemented, "0",
     "Plus a random 0..N per worker", ""},
    {"timeout", "-t --timeout", "Worker Processes", F::value, A::implemented, "30",
     "An app call running longer gets a 504 and its stack is logged (WSGI: the worker is replaced)", ""},
    {"graceful_timeout", "--graceful-timeout", "Worker Processes", F::value, A::implemented, "30",
     "Time to finish in-flight requests on TERM", ""},
    {"keepalive", "--keep-alive", "Worker Processes", F::value, A::implemented, "2",
     "Idle seconds between requests on a connection", ""},
    {"asgi_loop", "--asgi-loop", "Worker Processes", F::value, A::implemented, "auto",
     "Same as `--loop`: auto, asyncio or uvloop", "26"},
    {"asgi_lifespan", "--asgi-lifespan", "Worker Processes", F::value, A::implemented, "auto",
     "Same as `--lifespan`: auto, on or off", "26"},
    {"asgi_disconnect_grace_period", "--asgi-disconnect-grace-period", "Worker Processes", F::value, A::noted, "3",
     "gantry does not cancel an ASGI request task when its client goes away: the app receives http.disconnect "
     "and ends the task itself (bounded by --timeout)", "26"},
    {"http_parser", "--http-parser", "Worker Processes", F::value, A::noted, "auto",
     "gantry parses HTTP natively (Boost.Beast) for WSGI and ASGI alike", "26"},
    // Security
    {"limit_request_line", "--limit-request-line", "Security", F::value, A::implemented, "4094",
     "Request line bytes (414 above)", ""},
    {"limit_request_fields", "--limit-request-fields", "Security", F::value, A::implemented, "100",
     "Header fields (431 above)", ""},
    {"limit_request_field_size", "--limit-request-field_size", "Security", F::value, A::implemented, "8190",
     "One header's bytes (431 above)", ""},
    // Debugging
    {"reload", "--reload", "Debugging", F::switch_on, A::implemented, "",
     "Restart the workers when the app's code changes (inotify; the master keeps the socket); code that does "
     "not import gets a 500 page with its traceback until the next good save", ""},
    {"reload_engine", "--reload-engine", "Debugging", F::value, A::noted, "auto",
     "gantry's --reload always watches with inotify (no polling)", ""},
    {"reload_extra_files", "--reload-extra-file", "Debugging", F::repeated, A::implemented, "",
     "With --reload: also restart when this file changes", ""},
    {"spew", "--spew", "Debugging", F::switch_on, A::refused, "",
     "gantry installs no trace function: use a debugger or sys.settrace in the app", ""},
    {"check_config", "--check-config", "Debugging", F::switch_on, A::implemented, "",
     "Read the settings and load the app, then exit: 0 when both worked", ""},
    {"print_config", "--print-config", "Debugging", F::switch_on, A::implemented, "",
     "Print the settings in effect (as a gantry TOML file), then check as `--check-config`", ""},
    // Server Mechanics
    {"preload_app", "--preload", "Server Mechanics", F::switch_on, A::implemented, "",
     "Load the app in the master before forking", ""},
    {"sendfile", "--no-sendfile", "Server Mechanics", F::switch_off, A::implemented, "",
     "File bodies (`wsgi.file_wrapper`, static files) are read and written instead of sent with sendfile(2)", ""},
    {"reuse_port", "--reuse-port", "Server Mechanics", F::switch_on, A::implemented, "",
     "SO_REUSEPORT on the listening sockets", ""},
    {"chdir", "--chdir", "Server Mechanics", F::value, A::implemented, "",
     "Change to this directory before loading the app (after reading the config file)", ""},
    {"daemon", "-D --daemon", "Server Mechanics", F::switch_on, A::refused, "",
     "gantry does not daemonize (yet): run it in the foreground under systemd, a container or "
     "`nohup gantry ... &`", ""},
    {"raw_env", "-e --env", "Server Mechanics", F::repeated, A::implemented, "",
     "`KEY=VALUE` set in the workers' environment; repeatable", ""},
    {"pidfile", "-p --pid", "Server Mechanics", F::value, A::implemented, "", "The master's pid file", ""},
    {"worker_tmp_dir", "--worker-tmp-dir", "Server Mechanics", F::value, A::noted, "",
     "gantry needs no heartbeat files: the master watches its workers through their process state and shared "
     "memory, so no directory is used", ""},
    {"user", "-u --user", "Server Mechanics", F::value, A::implemented, "",
     "Workers switch to this user (name or uid) before loading the app; the master stays root and binds. Unix "
     "socket files are given to it", ""},
    {"group", "-g --group", "Server Mechanics", F::value, A::implemented, "",
     "Workers switch to this group (name or gid). Unlike gunicorn, `--user` alone takes the user's own group, "
     "never root's, and root's supplementary groups are always dropped", ""},
    {"umask", "-m --umask", "Server Mechanics", F::value, A::implemented, "0",
     "The umask of the master and the workers (octal with a leading 0, or decimal, as gunicorn reads it)", ""},
    {"initgroups", "--initgroups", "Server Mechanics", F::switch_on, A::implemented, "",
     "Workers get the user's supplementary groups (initgroups(3)); else the group alone", ""},
    {"tmp_upload_dir", "", "Server Mechanics", F::file_only, A::noted, "",
     "gantry keeps request bodies in memory up to --body-buffer-size and spills larger ones to temporary files "
     "in $TMPDIR", ""},
    {"secure_scheme_headers", "", "Server Mechanics", F::file_only, A::noted, "",
     "gantry believes X-Forwarded-Proto (and X-Forwarded-For) from --forwarded-allow-ips peers; other scheme "
     "headers are not read", ""},
    {"forwarded_allow_ips", "--forwarded-allow-ips", "Server Mechanics", F::value, A::implemented, "127.0.0.1,::1",
     "Peers whose X-Forwarded-For/-Proto are believed (`*` = all)", ""},
    {"pythonpath", "--pythonpath", "Server Mechanics", F::value, A::implemented, "",
     "Comma-separated directories put first on sys.path", ""},
    {"paste", "--paste --paster", "Server Mechanics", F::value, A::refused, "",
     "gantry loads no PasteDeploy file: give the WSGI app as module:callable (e.g. module:factory(args))", ""},
    {"proxy_protocol", "--proxy-protocol", "Server Mechanics", F::switch_on, A::refused, "",
     "gantry does not read the PROXY protocol (yet): have the load balancer send X-Forwarded-For and trust it "
     "with --forwarded-allow-ips", ""},
    {"proxy_allow_ips", "--proxy-allow-from", "Server Mechanics", F::value, A::noted, "127.0.0.1,::1",
     "only used with --proxy-protocol, which gantry does not read (yet)", ""},
    {"raw_paste_global_conf", "--paste-global", "Server Mechanics", F::repeated, A::refused, "",
     "gantry loads no PasteDeploy file: give the WSGI app as module:callable", ""},
    {"strip_header_spaces", "--strip-header-spaces", "Server Mechanics", F::switch_on, A::noted, "",
     "gantry keeps refusing a space before a header's colon (400): the lenient form is a request smuggling "
     "vector", ""},
    {"tolerate_dangerous_framing", "--tolerate-dangerous-framing", "Server Mechanics", F::switch_on, A::noted, "",
     "gantry keeps refusing requests framed ambiguously (Content-Length with Transfer-Encoding: 400)", "20.1"},
    {"permit_obsolete_folding", "--permit-obsolete-folding", "Server Mechanics", F::switch_on, A::noted, "",
     "gantry keeps refusing obsolete line folding (400), so that no proxy in front reads a folded line as a field of its own", "26"},
    {"permit_unconventional_http_method", "--permit-unconventional-http-method", "Server Mechanics", F::switch_on,
     A::noted, "", "gantry keeps its rule: any token is a method and is passed on as sent", "26"},
    {"permit_unconventional_http_version", "--permit-unconventional-http-version", "Server Mechanics",
     F::switch_on, A::noted, "", "gantry keeps its rule: HTTP/1.0 and 1.1, a higher 1.x read as 1.1, another major version 505", "26"},
    {"casefold_http_method", "--casefold-http-method", "Server Mechanics", F::switch_on, A::noted, "",
     "gantry passes the method on as sent (methods are case-sensitive)", "26"},
    {"forwarder_headers", "--forwarder-headers", "Server Mechanics", F::value, A::noted, "SCRIPT_NAME,PATH_INFO",
     "gantry takes SCRIPT_NAME and PATH_INFO from the request (and --root-path), never from a proxy's "
     "headers", "26"},
    {"header_map", "--header-map", "Server Mechanics", F::value, A::noted, "drop",
     "gantry drops header fields whose names have an underscore from the WSGI environ, as gunicorn's default `drop`", "26"},
    {"root_path", "--root-path", "Server Mechanics", F::value, A::implemented, "",
     "The ASGI scope's root_path, for an app mounted below a prefix", "26"},
    {"protocol", "--protocol", "Server Mechanics", F::value, A::refused, "http",
     "gantry speaks HTTP only: use nginx's proxy_pass instead of uwsgi_pass", "26"},
    {"uwsgi_allow_ips", "--uwsgi-allow-from", "Server Mechanics", F::value, A::noted, "127.0.0.1,::1",
     "only used with --protocol uwsgi, which gantry does not speak", "26"},
    // Logging
    {"accesslog", "--access-logfile", "Logging", F::value, A::implemented, "", "`-` = stdout", ""},
    {"disable_redirect_access_to_syslog", "--disable-redirect-access-to-syslog", "Logging", F::switch_on, A::noted,
     "", "gantry does not log to syslog (yet): the access log goes to --access-logfile only", ""},
    {"access_log_format", "--access-logformat", "Logging", F::value, A::implemented, "",
     "gunicorn's `%(h)s` atoms", ""},
    {"errorlog", "--error-logfile --log-file", "Logging", F::value, A::implemented, "-", "`-` = stderr", ""},
    {"loglevel", "--log-level", "Logging", F::value, A::implemented, "info",
     "debug, info, warning, error, critical", ""},
    {"capture_output", "--capture-output", "Logging", F::switch_on, A::implemented, "",
     "The app's stdout and stderr go to --error-logfile (when it is a file)", ""},
    {"logger_class", "--logger-class", "Logging", F::value, A::refused, "gunicorn.glogging.Logger",
     "gantry's logs are native: shape them with --access-logformat, --access-log-json and --log-level", ""},
    {"logconfig", "--log-config", "Logging", F::value, A::noted, "",
     "gantry does not apply it (yet): its own logs follow --error-logfile and --log-level, and Python's logging "
     "is the app's (Django's LOGGING)", ""},
    {"logconfig_dict", "", "Logging", F::file_only, A::noted, "",
     "gantry does not apply it (yet): its own logs follow --error-logfile and --log-level, and Python's logging "
     "is the app's (Django's LOGGING)", ""},
    {"logconfig_json", "--log-config-json", "Logging", F::value, A::noted, "",
     "gantry does not apply it (yet): its own logs follow --error-logfile and --log-level, and Python's logging "
     "is the app's (Django's LOGGING)", "26"},
    {"syslog_addr", "--log-syslog-to", "Logging", F::value, A::noted, "udp://localhost:514",
     "gantry does not log to syslog (yet): its logs go to --error-logfile (journald takes stderr under systemd)",
     ""},
    {"syslog", "--log-syslog", "Logging", F::switch_on, A::noted, "",
     "gantry does not log to syslog (yet): its logs go to --error-logfile (journald takes stderr under systemd)",
     ""},
    {"syslog_prefix", "--log-syslog-prefix", "Logging", F::value, A::noted, "",
     "gantry does not log to syslog (yet): its logs go to --error-logfile", ""},
    {"syslog_facility", "--log-syslog-facility", "Logging", F::value, A::noted, "user",
     "gantry does not log to syslog (yet): its logs go to --error-logfile", ""},
    {"enable_stdio_inheritance", "-R --enable-stdio-inheritance", "Logging", F::switch_on, A::noted, "",
     "gantry's workers always keep the master's stdout and stderr", ""},
    {"statsd_host", "--statsd-host", "Logging", F::value, A::noted, "",
     "gantry sends no statsd metrics (yet): --metrics-bind serves Prometheus metrics of all workers", ""},
    {"dogstatsd_tags", "--dogstatsd-tags", "Logging", F::value, A::noted, "",
     "gantry sends no statsd metrics (yet): --metrics-bind serves Prometheus metrics of all workers", ""},
    {"statsd_prefix", "--statsd-prefix", "Logging", F::value, A::noted, "",
     "gantry sends no statsd metrics (yet): --metrics-bind serves Prometheus metrics of all workers", ""},
    {"enable_backlog_metric", "--enable-backlog-metric", "Logging", F::switch_on, A::noted, "",
     "gantry sends no statsd metrics (yet): --metrics-bind serves Prometheus metrics of all workers", "26"},
    // Process Naming
    {"proc_name", "-n --name", "Process Naming", F::value, A::implemented, "", "The process name", ""},
    {"default_proc_name", "", "Process Naming", F::file_only, A::noted, "",
     "gunicorn's internal default name; gantry's is gantry (--name)", ""},
    // Server Mechanics (the PasteDeploy ones are above)
    // Server Hooks: functions of the config file, called with objects offering what hooks use
    // (server.log, server.pid, server.cfg, worker.pid, worker.ppid, worker.age, worker.log).
    {"on_starting", "", "Server Hooks", F::hook, A::implemented, "",
     "Called in the master before it binds: `on_starting(server)`; one that raises stops the start", ""},
    {"on_reload", "", "Server Hooks", F::hook, A::implemented, "",
     "Called in the master on HUP, before the new workers start: `on_reload(server)`", ""},
    {"when_ready", "", "Server Hooks", F::hook, A::implemented, "",
     "Called in the master once it listens, before the workers start: `when_ready(server)`", ""},
    {"pre_fork", "", "Server Hooks", F::hook, A::implemented, "",
     "Called in the master before each fork: `pre_fork(server, worker)` (worker.pid not known yet)", ""},
    {"post_fork", "", "Server Hooks", F::hook, A::implemented, "",
     "Called in the new worker right after the fork: `post_fork(server, worker)`; one that raises fails the worker's boot", ""},
    {"post_worker_init", "", "Server Hooks", F::hook, A::implemented, "",
     "Called in the worker once the app is loaded, before it serves: `post_worker_init(worker)`; one that raises fails the boot", ""},
    {"worker_int", "", "Server Hooks", F::hook, A::noted, "", "gantry does not call this hook yet", ""},
    {"worker_abort", "", "Server Hooks", F::hook, A::noted, "", "gantry does not call this hook yet", ""},
    {"pre_exec", "", "Server Hooks", F::hook, A::noted, "", "gantry does not call this hook yet", ""},
    {"pre_request", "", "Server Hooks", F::hook, A::noted, "", "gantry does not call this hook yet", ""},
    {"post_request", "", "Server Hooks", F::hook, A::noted, "", "gantry does not call this hook yet", ""},
    {"child_exit", "", "Server Hooks", F::hook, A::implemented, "",
     "Called in the master when a worker has exited: `child_exit(server, worker)`", ""},
    {"worker_exit", "", "Server Hooks", F::hook, A::noted, "", "gantry does not call this hook yet", ""},
    {"nworkers_changed", "", "Server Hooks", F::hook, A::implemented, "",
     "Called in the master when TTIN/TTOU change the worker count: `nworkers_changed(server, new_value, old_value)`", ""},
    {"on_exit", "", "Server Hooks", F::hook, A::implemented, "",
     "Called in the master as it exits: `on_exit(server)`", ""},
    {"ssl_context", "", "Server Hooks", F::hook, A::noted, "",
     "gantry serves plain HTTP: terminate TLS in front of it (nginx, a load balancer)", "26"},
    // SSL
    {"keyfile", "--keyfile", "SSL", F::value, A::refused, "",
     "gantry serves plain HTTP: terminate TLS in front of it (nginx, a load balancer)", ""},
    {"certfile", "--certfile", "SSL", F::value, A::refused, "",
     "gantry serves plain HTTP: terminate TLS in front of it (nginx, a load balancer)", ""},
    {"ssl_version", "--ssl-version", "SSL", F::value, A::noted, "",
     "gantry serves plain HTTP: TLS settings have no effect (terminate TLS in front of it)", ""},
    {"cert_reqs", "--cert-reqs", "SSL", F::value, A::noted, "0",
     "gantry serves plain HTTP: TLS settings have no effect (terminate TLS in front of it)", ""},
    {"ca_certs", "--ca-certs", "SSL", F::value, A::noted, "",
     "gantry serves plain HTTP: TLS settings have no effect (terminate TLS in front of it)", ""},
    {"suppress_ragged_eofs", "--suppress-ragged-eofs", "SSL", F::switch_on, A::noted, "",
     "gantry serves plain HTTP: TLS settings have no effect (terminate TLS in front of it)", ""},
    {"do_handshake_on_connect", "--do-handshake-on-connect", "SSL", F::switch_on, A::noted, "",
     "gantry serves plain HTTP: TLS settings have no effect (terminate TLS in front of it)", ""},
    {"ciphers", "--ciphers", "SSL", F::value, A::noted, "",
     "gantry serves plain HTTP: TLS settings have no effect (terminate TLS in front of it)", ""},
    // HTTP/2
    {"http_protocols", "--http-protocols", "HTTP/2", F::value, A::refused, "h1",
     "gantry speaks HTTP/1.1: put an HTTP/2 proxy in front of it (nginx, a load balancer)", "26"},
    {"http2_cleartext", "--http2-cleartext", "HTTP/2", F::value, A::refused, "off",
     "gantry speaks HTTP/1.1: put an HTTP/2 proxy in front of it (nginx, a load balancer)", "26"},
    {"http2_max_concurrent_streams", "--http2-max-concurrent-streams", "HTTP/2", F::value, A::noted, "100",
     "only used with HTTP/2, which gantry does not speak", "26"},
    {"http2_initial_window_size", "--http2-initial-window-size", "HTTP/2", F::value, A::noted, "65535",
     "only used with HTTP/2, which gantry does not speak", "26"},
    {"http2_max_frame_size", "--http2-max-frame-size", "HTTP/2", F::value, A::noted, "16384",
     "only used with HTTP/2, which gantry does not speak", "26"},
    {"http2_max_header_list_size", "--http2-max-header-list-size", "HTTP/2", F::value, A::noted, "65536",
     "only used with HTTP/2, which gantry does not speak", "26"},
    // Dirty Arbiters
    {"dirty_apps", "--dirty-app", "Dirty Arbiters", F::repeated, A::refused, "",
     "gantry runs no dirty arbiter: run long jobs in a task queue of their own (Celery, RQ, Django's tasks)",
     "26"},
    {"dirty_workers", "--dirty-workers", "Dirty Arbiters", F::value, A::refused, "0",
     "gantry runs no dirty arbiter: run long jobs in a task queue of their own (Celery, RQ, Django's tasks)",
     "26"},
    {"dirty_timeout", "--dirty-timeout", "Dirty Arbiters", F::value, A::noted, "300",
     "only used with dirty workers, which gantry does not run", "26"},
    {"dirty_threads", "--dirty-threads", "Dirty Arbiters", F::value, A::noted, "1",
     "only used with dirty workers, which gantry does not run", "26"},
    {"dirty_graceful_timeout", "--dirty-graceful-timeout", "Dirty Arbiters", F::value, A::noted, "30",
     "only used with dirty workers, which gantry does not run", "26"},
    {"on_dirty_starting", "", "Dirty Arbiter Hooks", F::hook, A::noted, "",
     "only used with dirty workers, which gantry does not run", "26"},
    {"dirty_post_fork", "", "Dirty Arbiter Hooks", F::hook, A::noted, "",
     "only used with dirty workers, which gantry does not run", "26"},
    {"dirty_worker_init", "", "Dirty Arbiter Hooks", F::hook, A::noted, "",
     "only used with dirty workers, which gantry does not run", "26"},
    {"dirty_worker_exit", "", "Dirty Arbiter Hooks", F::hook, A::noted, "",
     "only used with dirty workers, which gantry does not run", "26"},
    // Control
    {"control_socket", "--control-socket", "Control", F::value, A::noted, "",
     "gantry has no control socket: signals control it (HUP reload, TTIN/TTOU workers, USR2 upgrade, TERM stop)",
     "26"},
    {"control_socket_mode", "--control-socket-mode", "Control", F::value, A::noted, "",
     "gantry has no control socket: signals control it (HUP reload, TTIN/TTOU workers, USR2 upgrade, TERM stop)",
     "26"},
    {"control_socket_disable", "--no-control-socket", "Control", F::switch_on, A::noted, "",
     "gantry has no control socket: signals control it (HUP reload, TTIN/TTOU workers, USR2 upgrade, TERM stop)",
     "26"},
};

const char* form_text(SettingForm form) {
    switch (form) {
    case F::switch_on: return "switch";
    case F::switch_off: return "switch";
    case F::value: return "value";
    case F::repeated: return "repeatable";
    case F::hook: return "hook (config file)";
    case F::file_only: return "config file only";
    }
    return "";
}

const char* answer_text(SettingAnswer answer) {
    switch (answer) {
    case A::implemented: return "implemented";
    case A::noted: return "accepted, noted";
    case A::refused: return "refused";
    }
    return "";
}

}  // namespace

const std::vector<GunicornSetting>& gunicorn_settings() { return kSettings; }

const GunicornSetting* find_gunicorn_setting(std::string_view name) {
    for (const auto& s : kSettings)
        if (name == s.name) return &s;
    return nullptr;
}

std::string long_flag(const GunicornSetting& setting) {
    std::istringstream in(setting.flags);
    std::string flag, last;
    while (in >> flag)
        if (flag.rfind("--", 0) == 0 && last.empty()) last = flag;
    return last;
}

std::string setting_message(const GunicornSetting& setting, const std::string& value, const std::string& source) {
    std::string what = long_flag(setting);
    if (what.empty()) what = setting.name;
    if (!value.empty()) what += " " + value;
    return what + source + ": " + setting.text;
}

std::string gunicorn_settings_markdown() {
    std::ostringstream out;
    out << "| setting | flags | form | gantry | what gantry does |\n";
    out << "| --- | --- | --- | --- | --- |\n";
    for (const auto& s : kSettings) {
        std::string flags;
        std::istringstream in(s.flags);
        std::string f;
        while (in >> f) flags += (flags.empty() ? "`" : ", `") + f + "`";
        out << "| `" << s.name << "`" << (*s.only_in ? " (" + std::string(s.only_in) + " only)" : "") << " | " << flags
            << " | " << form_text(s.form) << " | " << answer_text(s.answer) << " | " << s.text << " |\n";
    }
    return out.str();
}

}  // namespace gantry
