#include "server/logging.hpp"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <memory>

#include <spdlog/async_logger.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace gantry {

namespace {

// gunicorn's level names: "[INFO]", "[WARNING]" (spdlog's own %l would say "info", "warning").
class GunicornLevel final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        std::string_view name;
        switch (msg.level) {
            case spdlog::level::trace: name = "TRACE"; break;
            case spdlog::level::debug: name = "DEBUG"; break;
            case spdlog::level::info: name = "INFO"; break;
            case spdlog::level::warn: name = "WARNING"; break;
            case spdlog::level::err: name = "ERROR"; break;
            case spdlog::level::critical: name = "CRITICAL"; break;
            default: name = "NOTSET"; break;
        }
        dest.append(name.data(), name.data() + name.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<GunicornLevel>(); }
};

// "+0000", as Python's %z; spdlog's %z writes "+00:00".
class UtcOffset final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg&, const std::tm& tm, spdlog::memory_buf_t& dest) override {
        long minutes = tm.tm_gmtoff / 60;
        char sign = minutes < 0 ? '-' : '+';
        if (minutes < 0) minutes = -minutes;
        char buf[8];
        int n = std::snprintf(buf, sizeof buf, "%c%02ld%02ld", sign, minutes / 60, minutes % 60);
        dest.append(buf, buf + n);
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<UtcOffset>(); }
};

std::unique_ptr<spdlog::formatter> error_formatter() {
    auto f = std::make_unique<spdlog::pattern_formatter>();
    f->add_flag<GunicornLevel>('*').add_flag<UtcOffset>('&').set_pattern("[%Y-%m-%d %H:%M:%S %&] [%P] [%*] %v");
    return f;
}

std::unique_ptr<spdlog::formatter> raw_formatter() {
    return std::make_unique<spdlog::pattern_formatter>("%v");
}

struct LogState {
    // Pools are declared before the loggers so the loggers go first on destruction; each pool's
    // destructor then drains its queue (queued messages keep their logger alive) and joins.
    std::shared_ptr<spdlog::details::thread_pool> error_pool;
    std::shared_ptr<spdlog::details::thread_pool> access_pool;
    std::shared_ptr<spdlog::logger> error;
    std::shared_ptr<spdlog::logger> access;
    std::shared_ptr<spdlog::logger> access_json;
    pid_t owner = 0;  // the process that started the pools' threads
};

// Never destroyed at exit: worker threads may still log while static destructors run.
LogState* g_state = nullptr;

// What error_log() gives before setup_logging (and after shutdown_logging): sync, stderr, info.
LogState& fallback_state();

std::unique_ptr<LogState> default_state() {
    auto s = std::make_unique<LogState>();
    s->error = std::make_shared<spdlog::logger>("error", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    s->error->set_formatter(error_formatter());
    s->error->set_level(spdlog::level::info);
    s->error->flush_on(spdlog::level::trace);
    s->owner = ::getpid();
    return s;
}

// Replaces the current state. A state whose pools were started by another process (we are its
// forked child) is leaked on purpose: its threads do not exist here, and destroying the pools
// would post to a queue whose lock may have been held at fork time and join threads that are gone.
void replace_state(std::unique_ptr<LogState> next) {
    LogState* old = g_state;
    g_state = next.release();
    if (!old) return;
    bool foreign_threads = (old->error_pool || old->access_pool) && old->owner != ::getpid();
    if (foreign_threads) return;  // leaked
    delete old;                   // sync sinks just close their files; own pools drain and join
}

spdlog::sink_ptr open_sink(const std::string& path, bool is_error_log) {
    if (path == "-") {
        if (is_error_log) return std::make_shared<spdlog::sinks::stderr_sink_mt>();
        return std::make_shared<spdlog::sinks::stdout_sink_mt>();
    }
    try {
        return std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
    } catch (const spdlog::spdlog_ex& e) {
        throw ConfigError(std::string("cannot open ") + (is_error_log ? "--error-logfile" : "--access-logfile") +
                          " '" + path + "': " + e.what());
    }
}

}  // namespace

spdlog::level::level_enum log_level_from_name(std::string_view name) {
    if (name == "debug") return spdlog::level::debug;
    if (name == "info") return spdlog::level::info;
    if (name == "warning") return spdlog::level::warn;
    if (name == "error") return spdlog::level::err;
    if (name == "critical") return spdlog::level::critical;
    throw ConfigError("unknown log level '" + std::string(name) +
                      "': use debug, info, warning, error or critical");
}

void setup_logging(const Config& config, LogMode mode) {
    const auto level = log_level_from_name(config.log_level);
    auto state = std::make_unique<LogState>();
    state->owner = ::getpid();

    spdlog::sink_ptr error_sink = open_sink(config.error_logfile, true);
    spdlog::sink_ptr access_sink, json_sink;
    if (!config.access_logfile.empty()) access_sink = open_sink(config.access_logfile, false);
    if (!config.access_log_json.empty())
        json_sink = config.access_log_json == config.access_logfile ? access_sink : open_sink(config.access_log_json, false);

    if (mode == LogMode::master_sync) {
        state->error = std::make_shared<spdlog::logger>("error", error_sink);
        if (access_sink) state->access = std::make_shared<spdlog::logger>("access", access_sink);
        if (json_sink) state->access_json = std::make_shared<spdlog::logger>("access_json", json_sink);
    } else {
        // One pool (one thread) per log, so each keeps its own overflow policy and a flood of
        // access lines can never push error lines out of a shared queue.
        // Error log: block when full. Errors are rare and must not be lost.
        state->error_pool = std::make_shared<spdlog::details::thread_pool>(1024, 1);
        state->error = std::make_shared<spdlog::async_logger>("error", error_sink, state->error_pool,
                                                               spdlog::async_overflow_policy::block);
        if (access_sink) {
            // Access log: overrun_oldest. A slow disk then costs old access lines, never a
            // stalled request on an I/O thread.
            state->access_pool = std::make_shared<spdlog::details::thread_pool>(8192, 1);
            state->access = std::make_shared<spdlog::async_logger>(
                "access", access_sink, state->access_pool, spdlog::async_overflow_policy::overrun_oldest);
        }
        if (json_sink) {
            if (!state->access_pool) state->access_pool = std::make_shared<spdlog::details::thread_pool>(8192, 1);
            state->access_json = std::make_shared<spdlog::async_logger>(
                "access_json", json_sink, state->access_pool, spdlog::async_overflow_policy::overrun_oldest);
        }
    }

    state->error->set_formatter(error_formatter());
    state->error->set_level(level);
    // Flush every line: the master has nothing buffered when it forks (no line written twice),
    // and in workers the flush happens on the logging thread, off the request path.
    state->error->flush_on(spdlog::level::trace);
    if (state->access_json) {
        state->access_json->set_formatter(raw_formatter());
        state->access_json->set_level(spdlog::level::info);
        state->access_json->flush_on(spdlog::level::trace);
    }
    if (state->access) {
        state->access->set_formatter(raw_formatter());
        state->access->set_level(spdlog::level::info);  // access lines are logged whatever --log-level
        state->access->flush_on(spdlog::level::trace);
    }
    // spdlog's default logger is the error log too: code outside server/ (embed/) logs with spdlog::error().
    spdlog::set_default_logger(state->error);
    replace_state(std::move(state));
}

namespace {
LogState& fallback_state() {
    static LogState* fallback = default_state().release();  // thread-safe one-time init; never freed
    return *fallback;
}
}  // namespace

spdlog::logger& error_log() { return g_state ? *g_state->error : *fallback_state().error; }

spdlog::logger* access_log() { return g_state ? g_state->access.get() : nullptr; }

spdlog::logger* access_json_log() { return g_state ? g_state->access_json.get() : nullptr; }

void flush_logs() {
    if (!g_state) {
        fallback_state().error->flush();
        return;
    }
    g_state->error->flush();
    if (g_state->access) g_state->access->flush();
    if (g_state->access_json) g_state->access_json->flush();
}

void shutdown_logging() {
    if (g_state && g_state->owner == ::getpid()) flush_logs();
    spdlog::set_default_logger(fallback_state().error);  // never left pointing at a stopped pool
    replace_state(nullptr);
}

}  // namespace gantry
