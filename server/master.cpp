#include "server/master.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/resource.h>

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#include "cache/shared_store.hpp"
#include "embed/runtime/cache_binding.hpp"
#include "embed/runtime/python_runtime.hpp"
#include "server/metrics_store.hpp"
#include "server/python_config_reader.hpp"
#include "middleware/registry.hpp"
#include "server/config_print.hpp"
#include "server/listen_socket.hpp"
#include "server/load_board.hpp"
#include "server/logging.hpp"
#include "server/signal_pipe.hpp"
#include "server/source_watcher.hpp"
#include "server/worker.hpp"

namespace gantry {

namespace {

// Descriptors a worker needs beside its connections: listeners, the Python side's files, temp
// files of spilled bodies, files being sent, Redis, pipes.
constexpr rlim_t kSpareDescriptors = 256;

// Each worker may hold --worker-connections sockets: the soft descriptor limit is raised to
// cover them (up to the hard limit, inherited by the workers), or the shortfall is said once,
// at start, instead of as EMFILE under load.
void ensure_descriptor_limit(long long worker_connections, spdlog::logger& log) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    const rlim_t wanted = static_cast<rlim_t>(worker_connections) + kSpareDescriptors;
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur >= wanted) return;
    if (limit.rlim_cur == RLIM_INFINITY) return;
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
    if (raised.rlim_cur > limit.rlim_cur) ::setrlimit(RLIMIT_NOFILE, &raised);
    ::getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < wanted)
        log.warn("--worker-connections {} needs about {} descriptors per worker; the limit is {} (ulimit -n): "
                 "accepting pauses when descriptors run out",
                 worker_connections, static_cast<unsigned long long>(wanted),
                 static_cast<unsigned long long>(limit.rlim_cur));
}

using Clock = std::chrono::steady_clock;

std::string describe_listen(const ListenSocket& s) {
    if (s.family == AF_UNIX) return "unix:" + s.address.path;
    BindAddress shown = s.address;
    return "http://" + shown.to_string();
}

// Where each worker says it is serving: a slot per worker number, in memory shared before the
// fork. A worker writes its pid there once its server is up; a HUP reload waits for these.
class ReadyBoard {
public:
    static constexpr int kSlots = 1024;
    ReadyBoard() {
        void* m = ::mmap(nullptr, sizeof(std::atomic<int>) * kSlots, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) throw std::runtime_error("mmap of the worker board failed");
        slots_ = new (m) std::atomic<int>[kSlots]();
    }
    std::atomic<int>* slot(int n) { return n >= 0 && n < kSlots ? &slots_[n] : nullptr; }

private:
    std::atomic<int>* slots_;
};

class Master {
public:
    Master(const Config& config, std::vector<std::string> argv, EmbeddedConfigReader* reader)
        : config_(config), argv_(std::move(argv)), reader_(reader) {}

    int run();

private:
    struct Worker {
        int slot;        // its number: metrics slot, ready-board slot, slot 0 subscribes to purges
        int generation;  // a HUP starts a new generation; the old one leaves once it is ready
        bool retiring = false;  // sent TERM by TTOU: leaving, no longer counted
        int age = 0;            // gunicorn's worker.age: the spawn counter when it started
    };

    void spawn_worker();
    void reap_workers();
    void signal_workers(int sig);
    void wait_workers_gone(Clock::time_point deadline);
    int halt(int status);
    int current_workers() const;
    void start_reload();
    void check_reload();
    void abort_reload(const char* why);
    void retire_one_worker();
    void upgrade_binary();
    void check_sources();
    bool load_app_in_master(const char* failure);
    bool hook(const char* name, int worker_pid = 0, int worker_age = 0, int new_value = 0, int old_value = 0);
    int check_config();

    const Config& config_;
    std::vector<std::string> argv_;            // for USR2: the command line to exec again
    EmbeddedConfigReader* reader_;             // holds the interpreter that read gunicorn.conf.py
    std::unique_ptr<SignalPipe> signals_;
    std::vector<ListenSocket> sockets_;
    std::unique_ptr<PythonRuntime> runtime_;   // with --preload, or a Python config file: forked into the workers
    std::unique_ptr<MetricsStore> metrics_;    // --metrics-bind: shared with every worker
    std::unique_ptr<SharedStore> cache_;       // --cache-size: shared with every worker
    std::map<pid_t, Worker> workers_;
    ReadyBoard ready_;
    std::unique_ptr<LoadBoard> load_ = LoadBoard::create();  // spreads the work over the workers
    int target_ = 1;                           // workers wanted per generation (TTIN/TTOU change it)
    int age_ = 0;                              // workers spawned so far (the hooks' worker.age)
    const int pid_ = static_cast<int>(::getpid());  // the master's, also in a just-forked worker (post_fork)
    int generation_ = 0;                       // the generation that is (or becomes) the serving one
    int last_generation_ = 0;                  // generations are never reused
    int previous_generation_ = 0;              // what a failed reload goes back to
    bool reloading_ = false;                   // a new generation is starting; the old one serves meanwhile
    Clock::time_point reload_started_{};
    bool ever_ready_ = false;                  // READY=1 said to the service manager
    bool handed_over_ = false;                 // USR2: a new master has our sockets (do not unlink them)
    bool stopping_ = false;
    bool boot_failed_ = false;
    std::unique_ptr<SourceWatcher> sources_;   // --reload: the app's files
    bool source_changed_ = false;              // --reload: a change not yet followed by a reload
};

int Master::current_workers() const {
    int n = 0;
    for (const auto& [pid, w] : workers_) n += w.generation == generation_ && !w.retiring;
    return n;
}

int Master::run() {
    if (config_.umask >= 0) ::umask(static_cast<mode_t>(config_.umask));  // before any socket file
    setup_logging(config_, LogMode::master_sync);
    auto& log = error_log();
    if (config_.capture_output && config_.error_logfile != "-") {
        // gunicorn's --capture-output: the app's prints (and C libraries' writes) join the error log.
        int fd = ::open(config_.error_logfile.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || ::dup2(fd, STDOUT_FILENO) < 0 || ::dup2(fd, STDERR_FILENO) < 0)
            log.warn("--capture-output: cannot send stdout and stderr to {}: {}", config_.error_logfile, std::strerror(errno));
        if (fd >= 0) ::close(fd);
    }
    if (reader_) runtime_ = reader_->take_interpreter();
    if (!config_.print_config && !config_.check_config) log.info("Starting gantry {}", GANTRY_VERSION);
    for (const auto& note : config_.notes) log.info("{}", note);  // gunicorn settings gantry answers otherwise
    // The middleware chain is built here once only to refuse a bad one before anything starts.
    std::vector<std::string> chain;
    try {
        chain = build_pipeline(chain_settings(config_))->names();
    } catch (const ConfigError& e) {
        log.error("{}", e.what());
        flush_logs();
        return 2;
    }
    if (config_.print_config || config_.check_config) return check_config();
    target_ = config_.workers;
    if (!hook("on_starting")) {  // as gunicorn: a failing on_starting stops the start
        flush_logs();
        return 1;
    }
    try {
        sockets_ = inherited_listen_sockets();  // systemd socket activation, or the gantry we replace
    } catch (const std::exception& e) {
        log.error("Cannot use the inherited sockets: {}", e.what());
        flush_logs();
        return 1;
    }
    // The pid file exists before anything can connect (as gunicorn's does), whole or not at all:
    // whoever reaches the port can read the pid. Written aside, then renamed into place.
    if (!config_.pidfile.empty()) {
        std::string aside = config_.pidfile + ".tmp." + std::to_string(::getpid());
        if (!(std::ofstream(aside) << ::getpid() << "\n") || std::rename(aside.c_str(), config_.pidfile.c_str()) != 0) {
            log.error("Cannot write the pid file {}: {}", config_.pidfile, std::strerror(errno));
            ::unlink(aside.c_str());
            flush_logs();
            return 1;
        }
    }
    auto fail_to_listen = [&] {
        close_listen_sockets(sockets_, true);
        if (!config_.pidfile.empty()) ::unlink(config_.pidfile.c_str());
        flush_logs();
        return 1;
    };
    bool inherited = !sockets_.empty(), inherited_metrics = false;
    for (const auto& s : sockets_) inherited_metrics = inherited_metrics || s.metrics;
    if (inherited) log.info("Using {} inherited listening socket(s) instead of --bind", sockets_.size());
    for (const auto& bind : config_.binds) {
        if (inherited) break;
        try {
            sockets_.push_back(open_listen_socket(bind, config_.backlog, config_.reuse_port));
        } catch (const std::exception& e) {
            log.error("Connection in use or unusable: {}", e.what());
            return fail_to_listen();
        }
    }
    if (config_.metrics_bind) {
        // One shared segment, mapped before any fork: every worker counts into the same numbers.
        std::vector<std::string> stages;
        for (const auto& name : chain) {
            stages.push_back("mw." + name + ".request");
            stages.push_back("mw." + name + ".response");
        }
        for (const char* s : {"python_wait", "app", "write", "total"}) stages.emplace_back(s);
        metrics_ = MetricsStore::create(std::move(stages));
        try {
            if (inherited_metrics) throw std::logic_error("inherited");
            ListenSocket socket = open_listen_socket(*config_.metrics_bind, config_.backlog);
            socket.metrics = true;
            log.info("Metrics at: http://{}/metrics", socket.address.to_string());
            sockets_.push_back(std::move(socket));
        } catch (const std::logic_error&) {
            // The metrics socket came with the others.
        } catch (const std::exception& e) {
            log.error("Connection in use or unusable: {}", e.what());
            return fail_to_listen();
        }
    }
    for (const auto& s : sockets_) {
        if (!s.metrics) log.info("Listening at: {} ({})", describe_listen(s), ::getpid());
        // --user/--group: the workers' unix socket files are theirs, as gunicorn chowns them.
        if (s.family == AF_UNIX && config_.identity.changes() && !inherited &&
            ::chown(s.address.path.c_str(), static_cast<uid_t>(config_.identity.uid),
                    static_cast<gid_t>(config_.identity.gid)) != 0)
            log.warn("Cannot give {} to --user/--group: {}", s.address.path, std::strerror(errno));
    }
    if (config_.identity.changes())
        log.info("Workers run as uid {}, gid {}", config_.identity.uid, config_.identity.gid);
    ensure_descriptor_limit(config_.worker_connections, log);

    // Signals become bytes on a pipe read by this loop, set up before any app code can start a
    // thread. No blocked mask is left for the app's subprocesses to inherit.
    signals_ = std::make_unique<SignalPipe>(
        std::initializer_list<int>{SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2});

    if (config_.cache_size > 0) {
        // Mapped before any fork, so every worker (and a --preload app) sees the same store.
        try {
            cache_ = std::make_unique<SharedStore>(config_.cache_size);
        } catch (const std::exception& e) {
            log.error("Cannot map the shared cache (--cache-size {}): {}", config_.cache_size, e.what());
            return halt(1);
        }
    }

    if (config_.preload && !load_app_in_master("Exception while loading the application")) return halt(1);

    if (config_.reload) {
        // Watching starts before the first worker imports anything: no save is missed.
        try {
            sources_ = std::make_unique<SourceWatcher>(reload_watch_settings(config_));
        } catch (const std::exception& e) {
            log.error("--reload: {}", e.what());
            return halt(1);
        }
        std::string dirs, globs;
        for (const auto& d : sources_->settings().dirs) dirs += (dirs.empty() ? "" : ", ") + d;
        for (const auto& g : sources_->filter().includes()) globs += (globs.empty() ? "" : " ") + g;
        log.info("Reloading on changes to {} in {} ({} directories watched)", globs, dirs, sources_->watched_directories());
    }

    if (!hook("when_ready")) return halt(1);
    for (int i = 0; i < target_; ++i) spawn_worker();

    for (;;) {
        // Faster ticks while workers start: readiness (READY=1, a reload's switch-over) is polled.
        bool starting = reloading_ || !ever_ready_;
        auto tick = starting ? std::chrono::milliseconds(50) : std::chrono::milliseconds(1000);
        if (sources_) tick = std::min(tick, sources_->time_to_settle(Clock::now()).value_or(tick));
        int sig = signals_->wait(tick, sources_ ? sources_->fd() : -1);
        switch (sig) {
        case SIGCHLD:
            reap_workers();
            if (boot_failed_) {
                log.error("Worker failed to boot.");
                return halt(kWorkerBootError);
            }
            break;
        case SIGTERM:
        case SIGINT: {
            log.info("Handling signal: {}", sig == SIGTERM ? "term" : "int");
            notify_service_manager("STOPPING=1");
            stopping_ = true;
            signal_workers(SIGTERM);
            // The workers stop accepting now; so does the master's copy of the sockets, so new
            // connections are refused at once rather than queued for no one (and reset later).
            close_listen_sockets(sockets_, false);
            // The workers finish in-flight requests within the graceful timeout; then they die.
            auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<long long>(config_.graceful_timeout * 1000));
            wait_workers_gone(deadline);
            return halt(0);
        }
        case SIGQUIT:
            log.info("Handling signal: quit");
            stopping_ = true;
            signal_workers(SIGQUIT);
            wait_workers_gone(Clock::now() + std::chrono::seconds(2));
            return halt(0);
        case SIGHUP:
            log.info("Handling signal: hup");
            start_reload();
            break;
        case SIGTTIN:
            log.info("Handling signal: ttin");
            ++target_;
            if (!hook("nworkers_changed", 0, 0, target_, target_ - 1)) return halt(1);
            break;
        case SIGTTOU:
            log.info("Handling signal: ttou");
            if (target_ > 1) {
                --target_;
                if (!hook("nworkers_changed", 0, 0, target_, target_ + 1)) return halt(1);
                retire_one_worker();
            }
            break;
        case SIGUSR2:
            log.info("Handling signal: usr2");
            upgrade_binary();
            break;
        case SIGUSR1:
            flush_logs();
            signal_workers(SIGUSR1);
            break;
        default:
            break;  // the tick
        }
        if (reloading_) check_reload();
        if (!ever_ready_) {
            int ready = 0;
            for (const auto& [pid, w] : workers_) ready += ready_.slot(w.slot) && ready_.slot(w.slot)->load() == pid;
            if (ready >= target_) {
                ever_ready_ = true;
                notify_service_manager("READY=1\nMAINPID=" + std::to_string(::getpid()));
            }
        }
        if (sources_) check_sources();
        // Keep the count: a worker that exited between SIGCHLDs is noticed here too, and a slot
        // whose fork failed is filled again.
        reap_workers();
        while (!boot_failed_ && current_workers() < target_) {
            std::size_t before = workers_.size();
            spawn_worker();
            if (workers_.size() == before) break;  // fork still failing: try again next tick
        }
        if (boot_failed_) {
            log.error("Worker failed to boot.");
            return halt(kWorkerBootError);
        }
    }
}

// --preload, --check-config: the app in the master's interpreter (the one that read the config
// file, or a new one). False after logging the traceback.
bool Master::load_app_in_master(const char* failure) {
    try {
        if (runtime_) runtime_->configure(runtime_settings(config_));
        else runtime_ = PythonRuntime::start(runtime_settings(config_));
        set_python_cache_store(cache_.get());
        runtime_->load_app();
        return true;
    } catch (const AppLoadError& e) {
        error_log().error("{}:\n{}", failure, e.what());
        flush_logs();
        return false;
    }
}

// A server hook of gunicorn.conf.py (none without a Python config file). False if it raised.
bool Master::hook(const char* name, int worker_pid, int worker_age, int new_value, int old_value) {
    if (!runtime_) return true;
    PythonRuntime::HookCall call;
    call.master_pid = pid_;
    call.workers = target_;
    call.worker_pid = worker_pid;
    call.worker_age = worker_age;
    call.new_value = new_value;
    call.old_value = old_value;
    return runtime_->call_hook(name, call);
}

// --check-config (gunicorn's): the settings were read; the app must load too. --print-config
// prints the settings first. Nothing is bound, no worker starts.
int Master::check_config() {
    if (config_.print_config) {
        std::fputs(config_as_toml(config_).c_str(), stdout);
        std::fflush(stdout);
    }
    int status = load_app_in_master("Error while loading the application") ? 0 : 1;
    flush_logs();
    std::_Exit(status);  // the interpreter is not finalised: the process is ending
}

void Master::spawn_worker() {
    // The lowest free slot: a replacement takes the slot of the worker it replaces.
    auto taken = [&](int n) {
        for (const auto& [pid, w] : workers_)
            if (w.slot == n) return true;
        return false;
    };
    int number = 0;
    while (taken(number)) ++number;
    int master_pid = ::getpid();
    if (auto* r = ready_.slot(number)) r->store(0);
    load_->open(number);
    int age = ++age_;
    // gunicorn's pre_fork; one that raises stops the server, as its main loop does.
    if (!hook("pre_fork", 0, age)) halt(1);
    if (runtime_) runtime_->before_fork();
    flush_logs();
    // Signals stay blocked across fork until the child has its own signal pipe: one sent to a
    // new worker must neither reach the master's pipe nor be lost.
    sigset_t all, previous;
    sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &previous);
    pid_t pid = ::fork();
    if (pid < 0) {
        int err = errno;
        ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        if (runtime_) runtime_->after_fork_parent();
        error_log().error("fork failed: {}", std::strerror(err));
        return;
    }
    if (pid == 0) {
        if (metrics_) metrics_->set_worker_slot(static_cast<std::size_t>(number));
        SignalPipe::forget_inherited();
        signals_.release();  // the parent's; its descriptors are closed above
        sources_.reset();    // the master's to read
        if (runtime_) runtime_->after_fork_child();
        // post_fork, in the new worker: one that raises fails its boot, as in gunicorn.
        if (!hook("post_fork", ::getpid(), age)) {
            flush_logs();
            std::_Exit(kWorkerBootError);
        }
        int status = run_worker(config_, sockets_, std::move(runtime_), master_pid, WorkerShared{metrics_.get(), cache_.get(), number, ready_.slot(number), load_.get(), age});
        std::_Exit(status);
    }
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (runtime_) runtime_->after_fork_parent();
    workers_[pid] = Worker{number, generation_, false, age};
}

void Master::reap_workers() {
    auto& log = error_log();
    for (;;) {
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        auto it = workers_.find(pid);
        if (it == workers_.end()) continue;
        // Its requests in flight died with it.
        if (metrics_) metrics_->reset_worker_slot(static_cast<std::size_t>(it->second.slot));
        load_->clear(it->second.slot);
        Worker gone = it->second;
        workers_.erase(it);
        if (!hook("child_exit", pid, gone.age) && !stopping_) halt(1);
        if (WIFEXITED(status)) {
            int code = WEXITSTATUS(status);
            if (code == kWorkerBootError) {
                // A new generation that cannot load the app: the old one keeps serving.
                if (reloading_ && gone.generation == generation_) abort_reload("a new worker cannot load the app");
                else if (gone.generation == generation_) boot_failed_ = true;
                // else: a worker of a reload already abandoned, leaving
            }
            if (code != 0) log.warn("Worker (pid:{}) exited with code {}", pid, code);
            else if (!stopping_ && !gone.retiring && gone.generation == generation_)
                log.info("Worker (pid:{}) exited (recycled); starting a new one", pid);
        } else if (WIFSIGNALED(status)) {
            int sig = WTERMSIG(status);
            if (sig == SIGKILL)
                log.error("Worker (pid:{}) was sent SIGKILL! Perhaps out of memory?", pid);
            else
                log.error("Worker (pid:{}) was sent {}!", pid,
                          ::sigabbrev_np(sig) ? std::string("SIG") + ::sigabbrev_np(sig) : std::string("a signal"));
        }
        // Replaced if it belongs to the current generation and is still wanted (not retired by
        // TTOU, not an old generation leaving after a reload).
        if (!stopping_ && !boot_failed_ && gone.generation == generation_ && current_workers() < target_) {
            if (metrics_) metrics_->count_worker_restart();
            spawn_worker();
        }
    }
}

void Master::signal_workers(int sig) {
    for (const auto& [pid, w] : workers_) ::kill(pid, sig);
}

// HUP: a new generation of workers loads the app anew; the old one serves until every new worker
// is up, then drains. A new generation that cannot load the app is stopped, the old one stays.
void Master::start_reload() {
    if (reloading_) {
        error_log().warn("A reload is already in progress; HUP ignored");
        return;
    }
    if (runtime_ && runtime_->app_loaded())
        error_log().warn("With --preload the new workers fork from the master's already loaded app: "
                         "HUP restarts them but does not load changed code");
    if (!hook("on_reload")) halt(1);
    notify_service_manager("RELOADING=1");
    reloading_ = true;
    reload_started_ = Clock::now();
    previous_generation_ = generation_;
    generation_ = ++last_generation_;
    for (int i = 0; i < target_; ++i) spawn_worker();
}

// --reload: a settled change starts a new generation (the HUP path: the old workers serve until
// the new ones do, so the listening socket never refuses). Workers still starting may have read
// a file before or after the save, so a change seen meanwhile waits for them to serve, then
// starts one more generation: a save during a start or a reload is never lost.
void Master::check_sources() {
    sources_->read_events(Clock::now());
    if (auto file = sources_->settled(Clock::now())) {
        error_log().info("Detected a change in {}: restarting the workers", *file);
        source_changed_ = true;
    }
    if (source_changed_ && ever_ready_ && !reloading_ && !stopping_) {
        source_changed_ = false;
        start_reload();
    }
}

void Master::check_reload() {
    int ready = 0;
    for (const auto& [pid, w] : workers_)
        if (w.generation == generation_ && ready_.slot(w.slot) && ready_.slot(w.slot)->load() == pid) ++ready;
    if (ready >= target_) {
        for (const auto& [pid, w] : workers_)
            if (w.generation != generation_) ::kill(pid, SIGTERM);  // they finish what they serve
        reloading_ = false;
        error_log().info("Reload complete: {} new worker(s) serving, the old ones draining", ready);
        notify_service_manager("READY=1");
        return;
    }
    auto limit = std::chrono::milliseconds(static_cast<long long>(std::max(config_.timeout, 30.0) * 1000));
    if (Clock::now() - reload_started_ > limit) abort_reload("the new workers did not get ready in time");
}

void Master::abort_reload(const char* why) {
    error_log().error("Reload failed ({}); the old workers keep serving", why);
    for (const auto& [pid, w] : workers_)
        if (w.generation == generation_) ::kill(pid, SIGTERM);
    generation_ = previous_generation_;
    reloading_ = false;
    notify_service_manager("READY=1");
}

// TTOU: the newest worker of the current generation leaves after its in-flight requests.
void Master::retire_one_worker() {
    Worker* newest = nullptr;
    pid_t newest_pid = 0;
    for (auto& [pid, w] : workers_)
        if (w.generation == generation_ && !w.retiring && (!newest || w.slot > newest->slot)) {
            newest = &w;
            newest_pid = pid;
        }
    if (!newest) return;
    newest->retiring = true;
    ::kill(newest_pid, SIGTERM);
}

// USR2: a new gantry (the binary on disk now) starts with our listening sockets; both serve
// until this one is sent TERM (then it drains), as gunicorn and nginx do. The pid file becomes
// PIDFILE.oldbin meanwhile.
void Master::upgrade_binary() {
    if (argv_.empty()) return;
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e)
        if (std::strncmp(*e, "LISTEN_", 7) != 0) env.emplace_back(*e);
    pid_t pid = ::fork();
    if (pid < 0) {
        error_log().error("USR2: fork failed: {}", std::strerror(errno));
        return;
    }
    if (pid == 0) {
        for (auto& extra : hand_over_listen_sockets(sockets_)) env.push_back(std::move(extra));
        std::vector<char*> args, envp;
        for (auto& a : argv_) args.push_back(a.data());
        args.push_back(nullptr);
        for (auto& e : env) envp.push_back(e.data());
        envp.push_back(nullptr);
        sigset_t none;
        sigemptyset(&none);
        ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
        ::execve("/proc/self/exe", args.data(), envp.data());
        std::_Exit(127);
    }
    handed_over_ = true;
    if (!config_.pidfile.empty()) std::rename(config_.pidfile.c_str(), (config_.pidfile + ".oldbin").c_str());
    error_log().info("Started a new master (pid: {}) with the listening sockets; send TERM to this one ({}) "
                     "to finish the upgrade", pid, ::getpid());
}

void Master::wait_workers_gone(Clock::time_point deadline) {
    while (!workers_.empty()) {
        reap_workers();
        if (workers_.empty()) break;
        if (Clock::now() >= deadline) {
            error_log().warn("{} worker(s) did not stop in time; killing them", workers_.size());
            signal_workers(SIGKILL);
            deadline = Clock::now() + std::chrono::seconds(5);
            while (!workers_.empty() && Clock::now() < deadline) {
                reap_workers();
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

int Master::halt(int status) {
    stopping_ = true;
    if (!workers_.empty()) {
        signal_workers(SIGTERM);
        wait_workers_gone(Clock::now() + std::chrono::seconds(5));
    }
    close_listen_sockets(sockets_, !handed_over_);  // a new master uses the unix socket files now
    if (!config_.pidfile.empty()) ::unlink((handed_over_ ? config_.pidfile + ".oldbin" : config_.pidfile).c_str());
    hook("on_exit");
    error_log().info("Shutting down: Master");
    flush_logs();
    // The preloaded interpreter is not finalised: the process is ending.
    std::_Exit(status);
}

}  // namespace

int run_master(const Config& config, std::vector<std::string> argv, EmbeddedConfigReader* reader) {
    return Master(config, std::move(argv), reader).run();
}

}  // namespace gantry
