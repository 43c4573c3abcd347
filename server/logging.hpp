#pragma once
// spdlog setup for the error log and the access log, fork-aware: the master logs synchronously
// (no threads, so fork() is safe); each worker switches to asynchronous loggers right after fork.
#include <string_view>

#include <spdlog/logger.h>

#include "server/config.hpp"

namespace gantry {

enum class LogMode {
    master_sync,   // the master, and the process before it forks: no logging threads
    worker_async,  // a worker, called right after fork: one background thread per log
};

// (Re)creates both loggers from config.error_logfile / access_logfile / log_level. Call it with
// no other thread logging (at start-up, and in a child right after fork). Files are opened in
// append mode; "-" is stderr for the error log and stdout for the access log.
// Throws ConfigError when a log file cannot be opened or the level is unknown.
void setup_logging(const Config& config, LogMode mode);

// The error log, gunicorn's line format: "[2026-11-26 21:39:39 +0000] [1234] [INFO] message".
// Before setup_logging it is an "info" logger to stderr, so early errors are never lost.
spdlog::logger& error_log();

// The access log (raw lines, already formatted by AccessLogFormat), or nullptr when disabled.
spdlog::logger* access_log();

// The JSON-lines access log (--access-log-json), or nullptr when disabled.
spdlog::logger* access_json_log();

// Writes out what is buffered. With async loggers this only queues the flush; use
// shutdown_logging() before a worker exits to be sure every queued line reached the file.
void flush_logs();

// Drains and stops the background threads of this process's async loggers (every queued line
// is written), then falls back to the pre-setup stderr error log and no access log.
void shutdown_logging();

// "debug" "info" "warning" "error" "critical" -> spdlog's level. Throws ConfigError otherwise.
spdlog::level::level_enum log_level_from_name(std::string_view name);

}  // namespace gantry
