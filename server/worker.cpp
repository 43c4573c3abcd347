#include "server/worker.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <string>

#include <sched.h>
#include <unistd.h>

#include "cache/redis_tier.hpp"
#include "cache/tiered_store.hpp"
#include "cache/shared_store.hpp"
#include "embed/runtime/cache_binding.hpp"
#include "embed/runtime/python_runtime.hpp"
#include "embed/asgi/executor.hpp"
#include "embed/wsgi/executor.hpp"
#include "server/metrics_store.hpp"
#include "middleware/registry.hpp"
#include "server/access_log.hpp"
#include "server/http_server.hpp"
#include "server/load_error_page.hpp"
#include "server/logging.hpp"
#include "server/signal_pipe.hpp"

namespace gantry {

namespace {

using namespace std::chrono;

// --max-queue unset, for WSGI: requests waiting for a Python thread above this get 503.
constexpr long long kWsgiMaxQueue = 256;

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

HttpServerSettings make_settings(const Config& config, const Pipeline& pipeline, bool asgi) {
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
    s.max_queue = static_cast<std::size_t>(config.max_queue >= 0 ? config.max_queue : asgi ? 0 : kWsgiMaxQueue);
    s.worker_connections = static_cast<std::size_t>(config.worker_connections);
    s.limit_concurrency = static_cast<std::size_t>(config.limit_concurrency);
    s.health_path = config.health_path;
    s.websocket.enabled = config.ws != "none";
    s.websocket.max_size = static_cast<std::size_t>(config.ws_max_size);
    s.websocket.ping_interval = to_ms(config.ws_ping_interval);
    s.websocket.ping_timeout = to_ms(config.ws_ping_timeout);
    s.websocket.per_message_deflate = config.ws_per_message_deflate;
    // A drain closes the WebSockets a margin before --graceful-timeout ends: half of it for the
    // close handshake (a silent peer is dropped then), half for the app's disconnect handling.
    const milliseconds graceful = to_ms(config.graceful_timeout);
    const milliseconds margin = std::min<milliseconds>(graceful / 2, milliseconds(3'000));
    s.websocket.drain_close_after = graceful - margin;
    s.websocket.close_timeout = std::max<milliseconds>(margin / 2, milliseconds(100));
    s.sendfile = config.sendfile;
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
            record.websocket = done.websocket;
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

// Why a worker stops.
enum class StopReason { graceful, quick, master_gone, recycle, timed_out };

// This process's private resident memory (RSS less shared pages: the shared cache store and the
// preloaded app's untouched pages belong to every worker, not to this one), in bytes.
std::uint64_t private_rss_bytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, resident = 0, shared = 0;
    int n = std::fscanf(f, "%llu %llu %llu", &size, &resident, &shared);
    std::fclose(f);
    if (n != 3 || shared > resident) return 0;
    return (resident - shared) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// Waits for a signal, the master's disappearance, or one of the worker's own limits: a request
// over --timeout, --max-requests reached, --max-worker-memory exceeded.
// --max-requests plus this worker's share of --max-requests-jitter; 0: never.
std::uint64_t requests_before_recycle(const Config& config) {
    if (config.max_requests <= 0) return 0;
    // Jitter: workers started together do not all recycle together.
    std::mt19937_64 rng(static_cast<std::uint64_t>(::getpid()) ^ static_cast<std::uint64_t>(::time(nullptr)));
    return static_cast<std::uint64_t>(config.max_requests) +
           (config.max_requests_jitter > 0 ? rng() % static_cast<std::uint64_t>(config.max_requests_jitter + 1) : 0);
}

StopReason wait_for_stop(SignalPipe& signals, int master_pid, const Config& config,
                         AppExecutor& executor, std::uint64_t max_requests) {
    auto& log = error_log();
    const std::uint64_t max_memory = static_cast<std::uint64_t>(config.max_worker_memory) << 20;
    const auto timeout = milliseconds(static_cast<long long>(config.timeout * 1000));
    std::uint64_t checked_at = 0;
    for (;;) {
        int sig = signals.wait(milliseconds(250));
        if (sig == SIGTERM || sig == SIGINT) return StopReason::graceful;
        if (sig == SIGQUIT) return StopReason::quick;
        if (sig == SIGUSR1) flush_logs();
        if (::getppid() != master_pid) return StopReason::master_gone;
        if (config.timeout > 0) {
            auto overdue = executor.expire_overdue(timeout);
            for (const auto& report : overdue)
                log.critical("WORKER TIMEOUT (pid:{}): {}", ::getpid(), report);
            if (!overdue.empty()) return StopReason::timed_out;
        }
        std::uint64_t done = executor.completed();
        if (max_requests && done >= max_requests) {
            log.info("Autorestarting worker after {} requests (pid: {})", done, ::getpid());
            return StopReason::recycle;
        }
        if (max_memory && done != checked_at) {  // between requests: only when some were served
            checked_at = done;
            std::uint64_t rss = private_rss_bytes();
            if (rss > max_memory) {
                log.warn("Worker (pid: {}) uses {} MB of private memory, over --max-worker-memory {} MB: recycling it",
                         ::getpid(), rss >> 20, config.max_worker_memory);
                return StopReason::recycle;
            }
        }
    }
}

}  // namespace

RuntimeSettings runtime_settings(const Config& config) {
    RuntimeSettings s;
    s.app = config.app;
    s.chdir = config.chdir;
    s.pythonpath = config.pythonpath;
    s.virtualenv = config.virtualenv;
    s.env = config.env;
    s.timing_full = config.timing == "full";
    s.import_django_urls = config.reload;
    return s;
}

ExecutorSettings executor_settings(const Config& config) {
    ExecutorSettings s;
    s.threads = config.threads;
    s.multiprocess = config.workers > 1;
    s.timing_full = config.timing == "full";
    s.loop = config.loop;
    s.lifespan = config.lifespan;
    s.root_path = config.root_path;
    s.loop_block_warn = milliseconds(config.loop_block_warn);
    s.timeout = to_ms(config.timeout);
    return s;
}

namespace {

// --reload, with an app that does not import: every request gets the error page with its
// traceback, answered natively, until the master starts workers on code that imports.
class LoadErrorExecutor final : public AppExecutor {
public:
    explicit LoadErrorExecutor(std::string traceback) : traceback_(std::move(traceback)) {}

    // On the I/O thread: the answer is posted back to the session, never sent from here.
    void dispatch(std::unique_ptr<AppCall> call) override {
        NativeAnswer page = load_error_page(call->request, traceback_);
        std::move(call->response).send_whole(std::move(page.head), std::move(page.body));
        completed_.fetch_add(1, std::memory_order_relaxed);
    }
    void stop() override {}
    std::vector<std::string> expire_overdue(std::chrono::milliseconds) override { return {}; }
    std::uint64_t completed() const override { return completed_.load(std::memory_order_relaxed); }
    void on_completed(std::uint64_t, std::function<void()>) override {}  // nothing to recycle
    void abandon() override {}

private:
    const std::string traceback_;
    std::atomic<std::uint64_t> completed_{0};
};

// --interface, with "auto" decided by the app itself (an async callable is ASGI).
bool serves_asgi(const Config& config, PythonRuntime& runtime) {
    if (config.interface != "auto") return config.interface == "asgi";
    return runtime.app_is_asgi();
}

}  // namespace

int run_worker(const Config& config, const std::vector<ListenSocket>& sockets,
               std::unique_ptr<PythonRuntime> runtime, int master_pid, WorkerShared shared) {
    MetricsStore* metrics = shared.metrics;
    // The Redis tier (--cache redis://...): its threads start after the fork, in each worker.
    std::unique_ptr<RedisTier> redis;
    std::unique_ptr<TieredStore> app_store;  // Django's cache API on both tiers
    if (!config.cache_url.empty() && shared.cache) {
        redis = std::make_unique<RedisTier>(RedisSettings::from_url(config.cache_url));
        // Names this server in the tier's purge messages: the same in all its workers.
        std::string origin = std::to_string(shared.cache->id());
        if (shared.number == 0) {
            // One subscriber per server: another server's purge reaches this server's store.
            redis->subscribe_purges(
                [store = shared.cache](const std::string& message) { TieredStore::apply_purge(*store, message); },
                origin);
        }
        app_store = std::make_unique<TieredStore>(*shared.cache, *redis, origin);
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
    // --user/--group: the listeners and the logs are open; the app runs without root.
    if (std::string failed = drop_privileges(config.identity); !failed.empty()) {
        log.error("Cannot switch the worker to --user {} --group {}: {}", config.user, config.group, failed);
        flush_logs();
        return kWorkerBootError;
    }
    // SCHED_BATCH for the worker and every thread it starts: a woken thread no longer preempts
    // the running one, so the I/O thread parses every ready request before the Python thread
    // runs them back to back (GIL held, caches warm), and the answers go out together. Measured
    // on one pinned core with Django: +40% requests/s. Latency at low load is unchanged: the
    // other thread is idle then. Best effort: a refusal only costs that gain.
    sched_param batch{};
    if (!std::getenv("GANTRY_NO_SCHED_BATCH") && ::sched_setscheduler(0, SCHED_BATCH, &batch) != 0)
        log.debug("SCHED_BATCH refused: {}", std::strerror(errno));
    // The worker ends at once: its queued lines (the traceback) are written first. flush_logs()
    // would only queue a flush on the async logger, racing the exit.
    auto boot_failed = [] {
        shutdown_logging();
        return kWorkerBootError;
    };
    // --reload: code that does not import is served as an error page instead of stopping the
    // server; the next save starts workers that import it again.
    std::string load_error;
    if (!runtime || !runtime->app_loaded()) {
        try {
            // Forked from the interpreter that read gunicorn.conf.py, or a new one.
            if (runtime) runtime->configure(runtime_settings(config));
            else runtime = PythonRuntime::start(runtime_settings(config));
            set_python_cache_store(shared.cache, redis.get(), app_store.get());  // before the app: its settings may use the cache
            runtime->load_app();
        } catch (const AppLoadError& e) {
            log.error("Exception in worker process:\n{}", e.what());
            if (!config.reload || !runtime) return boot_failed();  // no interpreter: not the code
            load_error = e.what();
        }
    }
    set_python_cache_store(shared.cache, redis.get(), app_store.get());  // again: a --preload app had no Redis tier yet
    {
        // gunicorn's post_worker_init: the app is loaded, nothing serves yet. One that raises fails the boot.
        PythonRuntime::HookCall call;
        call.master_pid = master_pid;
        call.workers = config.workers;
        call.worker_pid = static_cast<int>(::getpid());
        call.worker_age = shared.age;
        if (!runtime->call_hook("post_worker_init", call)) {
            flush_logs();
            return kWorkerBootError;
        }
    }
    log.info("Booting worker with pid: {}", ::getpid());

    // The chain was validated by the master; here static indexes its files, Django's included.
    DjangoStaticSettings django_static = load_error.empty() ? runtime->django_static_settings() : DjangoStaticSettings{};
    std::unique_ptr<Pipeline> pipeline;
    try {
        pipeline = build_pipeline(chain_settings(config), PipelineInputs{true, &django_static, shared.cache, redis.get()});
    } catch (const ConfigError& e) {
        log.error("{}", e.what());
        return boot_failed();
    }
    std::unique_ptr<AppExecutor> executor;
    bool asgi = false;
    try {
        if (load_error.empty()) {
            asgi = serves_asgi(config, *runtime);
            if (asgi) {
                log.debug("Serving the app over ASGI");
                executor = start_asgi_executor(*runtime, executor_settings(config));
            } else {
                executor = start_wsgi_executor(*runtime, executor_settings(config));
            }
        }
    } catch (const AppLoadError& e) {
        log.error("Exception in worker process:\n{}", e.what());
        if (!config.reload) return boot_failed();
        load_error = e.what();
    }
    if (!load_error.empty()) {
        log.warn("Serving every request a 500 page with this traceback until a change to the code is saved (--reload)");
        executor = std::make_unique<LoadErrorExecutor>(std::move(load_error));
    }
    HttpServerSettings settings = make_settings(config, *pipeline, asgi);
    settings.metrics = metrics_stages(metrics, *pipeline);
    settings.board = shared.board;
    settings.board_slot = shared.number;
    HttpServer server(std::move(settings), sockets, *executor);
    std::uint64_t max_requests = requests_before_recycle(config);
    // The executor pokes the wait loop when a call finishes past the limit: the recycle starts
    // right after that request, not at the next tick.
    if (max_requests) executor->on_completed(max_requests, [] { SignalPipe::wake(); });
    server.start();
    if (shared.ready) shared.ready->store(::getpid());  // the master's HUP reload waits for this

    StopReason why = wait_for_stop(signals, master_pid, config, *executor, max_requests);
    if (why == StopReason::quick) {
        log.info("Worker exiting (pid: {}): quick shutdown", ::getpid());
    } else {
        if (why == StopReason::master_gone)
            log.warn("Master (pid: {}) went away; worker {} shutting down", master_pid, ::getpid());
        // Recycled or timed out: the in-flight requests finish first; the master starts a new
        // worker when this one has gone.
        server.drain();
        auto deadline = steady_clock::now() + to_ms(config.graceful_timeout);
        if (!server.wait_idle(deadline))
            log.warn("Worker {}: {} connection(s) still open after the graceful timeout; closing them",
                     ::getpid(), server.open_connections());
        log.info("Worker exiting (pid: {})", ::getpid());
    }
    server.stop();
    if (why == StopReason::timed_out) {
        // A thread is stuck in the app: it cannot be joined. Fail what is queued and leave.
        executor->abandon();
        shutdown_logging();
        std::_Exit(0);
    }
    executor->stop();
    shutdown_logging();
    // No interpreter finalisation: a non-daemon thread started by the app would keep a stopping
    // worker alive in Py_FinalizeEx. The process ends now; the kernel frees the rest.
    (void)runtime.release();
    return 0;
}

}  // namespace gantry
