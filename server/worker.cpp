#include "server/worker.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <string>

#include <sched.h>
#include <unistd.h>

#include "cache/redis_tier.hpp"
#include "cache/shared_store.hpp"
#include "embed/cache_binding.hpp"
#include "embed/python_runtime.hpp"
#include "middleware/metrics_store.hpp"
#include "middleware/registry.hpp"
#include "server/access_log.hpp"
#include "server/http_server.hpp"
#include "server/logging.hpp"
#include "server/signal_pipe.hpp"

namespace gantry {

namespace {

using namespace std::chrono;

milliseconds to_ms(double seconds) { return milliseconds(static_cast<long long>(seconds * 1000.0)); }

MetricsStages metrics_stages(MetricsStore* store, const Pipeline& pipeline) {
    MetricsStages m;
    if (!store) return m;
    m.store = store;
    for (const auto& name : pipeline.names()) {
        m.middleware_request.push_back(store->stage_index("mw." + name + ".request"));
        m.middleware_response.push_back(store->stage_index("mw." + name + ".response"));
    }
    m.python_wait = store->stage_index("python_wait");
    m.app = store->stage_index("app");
    m.write = store->stage_index("write");
    m.total = store->stage_index("total");
    return m;
}

HttpServerSettings make_settings(const Config& config, const Pipeline& pipeline) {
    HttpServerSettings s;
    s.limits.request_line = config.limit_request_line;
    s.limits.fields = config.limit_request_fields;
    s.limits.field_size = config.limit_request_field_size;
    s.limits.body = config.limit_request_body;
    s.limits.body_memory = config.body_buffer_size;
    s.header_timeout = to_ms(config.header_timeout);
    s.keep_alive = to_ms(config.keep_alive);
    s.io_timeout = to_ms(std::max(config.timeout, 1.0));
    s.forwarded_allow_ips = config.forwarded_allow_ips;
    s.io_threads = config.io_threads;
    s.pipeline = &pipeline;
    spdlog::logger* access = access_log();
    spdlog::logger* access_json = access_json_log();
    if (access || access_json) {
        auto format = std::make_shared<AccessLogFormat>(config.access_logformat);
        const std::vector<std::string>* names = &pipeline.names();
        s.on_complete = [format, access, access_json, names](const CompletedExchange& done) {
            AccessLogRecord record;
            record.remote_addr = done.request->remote_addr;
            record.method = done.request->method;
            record.target = done.request->target;
            record.version = done.request->version;
            record.request_headers = &done.request->headers;
            record.response_headers = done.response_headers;
            record.status = done.status;
            record.response_bytes = done.body_bytes;
            record.start = done.started;
            record.duration = done.duration;
            record.timings = done.timings;
            record.middleware_names = names;
            if (access) {
                thread_local std::string line;
                line.clear();
                format->format_to(line, record);
                access->info(line);
            }
            if (access_json) access_json->info(format_access_json(record));
        };
    }
    return s;
}

// Waits for TERM/INT/QUIT or for the master to disappear. Returns the signal, or 0 when the
// master is gone.
int wait_for_stop(SignalPipe& signals, int master_pid) {
    for (;;) {
        int sig = signals.wait(std::chrono::seconds(1));
        if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) return sig;
        if (sig == SIGUSR1) flush_logs();
        if (::getppid() != master_pid) return 0;
    }
}

}  // namespace

int run_worker(const Config& config, const std::vector<ListenSocket>& sockets,
               std::unique_ptr<PythonRuntime> runtime, int master_pid, WorkerShared shared) {
    MetricsStore* metrics = shared.metrics;
    // The Redis tier (--cache redis://...): its threads start after the fork, in each worker.
    std::unique_ptr<RedisTier> redis;
    if (!config.cache_url.empty() && shared.cache) {
        redis = std::make_unique<RedisTier>(RedisSettings::from_url(config.cache_url));
        if (shared.number == 0) {
            // One subscriber per server: another server's purge reaches this server's store.
            redis->subscribe_purges([store = shared.cache](const std::string& message) {
                if (!message.empty() && message[0] == '=') store->erase(std::string_view(message).substr(1));
                else store->erase_prefix(message);
            });
        }
    }
    // The master forked us with every signal blocked: take ours on our own pipe, give the rest
    // their default actions back, then unblock, so a signal sent meanwhile is not lost.
    SignalPipe signals({SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2});
    for (int sig : {SIGCHLD, SIGTTIN, SIGTTOU}) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    setup_logging(config, LogMode::worker_async);
    auto& log = error_log();
    // SCHED_BATCH for the worker and every thread it starts: a woken thread no longer preempts
    // the running one, so the I/O thread parses every ready request before the Python thread
    // runs them back to back (GIL held, caches warm), and the answers go out together. Measured
    // on one pinned core with Django: +40% requests/s. Latency at low load is unchanged: the
    // other thread is idle then. Best effort: a refusal only costs that gain.
    sched_param batch{};
    if (!std::getenv("GANTRY_NO_SCHED_BATCH") && ::sched_setscheduler(0, SCHED_BATCH, &batch) != 0)
        log.debug("SCHED_BATCH refused: {}", std::strerror(errno));
    if (!runtime) {
        try {
            runtime = PythonRuntime::start(config);
            set_python_cache_store(shared.cache, redis.get());  // before the app: its settings may use the cache
            runtime->load_app();
        } catch (const AppLoadError& e) {
            log.error("Exception in worker process:\n{}", e.what());
            flush_logs();
            return kWorkerBootError;
        }
    }
    set_python_cache_store(shared.cache, redis.get());  // again: a --preload app had no Redis tier yet
    log.info("Booting worker with pid: {}", ::getpid());

    // The chain was validated by the master; here static indexes its files, Django's included.
    DjangoStaticSettings django_static = runtime->django_static_settings();
    std::unique_ptr<Pipeline> pipeline;
    try {
        pipeline = build_pipeline(config, PipelineInputs{true, &django_static, shared.cache, redis.get()});
    } catch (const ConfigError& e) {
        log.error("{}", e.what());
        flush_logs();
        return kWorkerBootError;
    }
    auto executor = runtime->start_executor();
    HttpServerSettings settings = make_settings(config, *pipeline);
    settings.metrics = metrics_stages(metrics, *pipeline);
    HttpServer server(std::move(settings), sockets, *executor);
    server.start();

    int sig = wait_for_stop(signals, master_pid);
    if (sig == SIGQUIT) {
        log.info("Worker exiting (pid: {}): quick shutdown", ::getpid());
    } else {
        if (sig == 0) log.warn("Master (pid: {}) went away; worker {} shutting down", master_pid, ::getpid());
        server.drain();
        auto deadline = steady_clock::now() + to_ms(config.graceful_timeout);
        if (!server.wait_idle(deadline))
            log.warn("Worker {}: {} connection(s) still open after the graceful timeout; closing them",
                     ::getpid(), server.open_connections());
        log.info("Worker exiting (pid: {})", ::getpid());
    }
    server.stop();
    executor->stop();
    shutdown_logging();
    // No interpreter finalisation: a non-daemon thread started by the app would keep a stopping
    // worker alive in Py_FinalizeEx. The process ends now; the kernel frees the rest.
    (void)runtime.release();
    return 0;
}

}  // namespace gantry
