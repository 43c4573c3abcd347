#include "server/master.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/shared_store.hpp"
#include "embed/cache_binding.hpp"
#include "embed/python_runtime.hpp"
#include "middleware/metrics_store.hpp"
#include "middleware/registry.hpp"
#include "server/listen_socket.hpp"
#include "server/logging.hpp"
#include "server/signal_pipe.hpp"
#include "server/worker.hpp"

namespace gantry {

namespace {

using Clock = std::chrono::steady_clock;

std::string describe_listen(const ListenSocket& s) {
    if (s.family == AF_UNIX) return "unix:" + s.address.path;
    BindAddress shown = s.address;
    return "http://" + shown.to_string();
}

class Master {
public:
    explicit Master(const Config& config) : config_(config) {}

    int run();

private:
    void spawn_worker();
    void reap_workers();
    void signal_workers(int sig);
    void wait_workers_gone(Clock::time_point deadline);
    int halt(int status);

    const Config& config_;
    std::unique_ptr<SignalPipe> signals_;
    std::vector<ListenSocket> sockets_;
    std::unique_ptr<PythonRuntime> runtime_;   // only with --preload
    std::unique_ptr<MetricsStore> metrics_;    // --metrics-bind: shared with every worker
    std::unique_ptr<SharedStore> cache_;       // --cache-size: shared with every worker
    std::map<pid_t, int> workers_;             // pid -> worker slot (0..workers-1, reused)
    bool stopping_ = false;
    bool boot_failed_ = false;
};

int Master::run() {
    setup_logging(config_, LogMode::master_sync);
    auto& log = error_log();
    log.info("Starting gantry {}", GANTRY_VERSION);
    // The middleware chain is built here once only to refuse a bad one before anything starts.
    std::vector<std::string> chain;
    try {
        chain = build_pipeline(config_)->names();
    } catch (const ConfigError& e) {
        log.error("{}", e.what());
        flush_logs();
        return 2;
    }
    for (const auto& bind : config_.binds) {
        try {
            sockets_.push_back(open_listen_socket(bind, config_.backlog));
        } catch (const std::exception& e) {
            log.error("Connection in use or unusable: {}", e.what());
            close_listen_sockets(sockets_, true);
            flush_logs();
            return 1;
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
            ListenSocket socket = open_listen_socket(*config_.metrics_bind, config_.backlog);
            socket.metrics = true;
            log.info("Metrics at: http://{}/metrics", socket.address.to_string());
            sockets_.push_back(std::move(socket));
        } catch (const std::exception& e) {
            log.error("Connection in use or unusable: {}", e.what());
            close_listen_sockets(sockets_, true);
            flush_logs();
            return 1;
        }
    }
    for (const auto& s : sockets_)
        if (!s.metrics) log.info("Listening at: {} ({})", describe_listen(s), ::getpid());
    if (!config_.pidfile.empty()) std::ofstream(config_.pidfile) << ::getpid() << "\n";

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

    if (config_.preload) {
        try {
            runtime_ = PythonRuntime::start(config_);
            set_python_cache_store(cache_.get());
            runtime_->load_app();
        } catch (const AppLoadError& e) {
            log.error("Exception while loading the application:\n{}", e.what());
            return halt(1);
        }
    }

    for (int i = 0; i < config_.workers; ++i) spawn_worker();

    for (;;) {
        int sig = signals_->wait(std::chrono::seconds(1));
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
            stopping_ = true;
            signal_workers(SIGTERM);
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
            log.warn("Handling signal: hup (reloading workers is not supported yet; ignored)");
            break;
        case SIGUSR1:
            flush_logs();
            signal_workers(SIGUSR1);
            break;
        default:
            break;  // the tick (EAGAIN), TTIN/TTOU (not supported yet), USR2
        }
        // Keep the count: a worker that exited between SIGCHLDs is noticed here too, and a slot
        // whose fork failed is filled again.
        reap_workers();
        while (!boot_failed_ && static_cast<int>(workers_.size()) < config_.workers) {
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

void Master::spawn_worker() {
    // The lowest free slot: a replacement takes the slot of the worker it replaces.
    auto taken = [&](int n) {
        for (const auto& [pid, slot] : workers_)
            if (slot == n) return true;
        return false;
    };
    int number = 0;
    while (taken(number)) ++number;
    int master_pid = ::getpid();
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
        if (runtime_) runtime_->after_fork_child();
        int status = run_worker(config_, sockets_, std::move(runtime_), master_pid, WorkerShared{metrics_.get(), cache_.get(), number});
        std::_Exit(status);
    }
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (runtime_) runtime_->after_fork_parent();
    workers_[pid] = number;
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
        if (metrics_) metrics_->reset_worker_slot(static_cast<std::size_t>(it->second));
        workers_.erase(it);
        if (WIFEXITED(status)) {
            int code = WEXITSTATUS(status);
            if (code == kWorkerBootError) boot_failed_ = true;
            if (code != 0) log.warn("Worker (pid:{}) exited with code {}", pid, code);
            else if (!stopping_) log.info("Worker (pid:{}) exited (recycled); starting a new one", pid);
        } else if (WIFSIGNALED(status)) {
            int sig = WTERMSIG(status);
            if (sig == SIGKILL)
                log.error("Worker (pid:{}) was sent SIGKILL! Perhaps out of memory?", pid);
            else
                log.error("Worker (pid:{}) was sent {}!", pid, ::sigabbrev_np(sig) ? ::sigabbrev_np(sig) : "a signal");
        }
        if (!stopping_ && !boot_failed_) {
            if (metrics_) metrics_->count_worker_restart();
            spawn_worker();
        }
    }
}

void Master::signal_workers(int sig) {
    for (const auto& [pid, number] : workers_) ::kill(pid, sig);
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
    close_listen_sockets(sockets_, true);
    if (!config_.pidfile.empty()) ::unlink(config_.pidfile.c_str());
    error_log().info("Shutting down: Master");
    flush_logs();
    // The preloaded interpreter is not finalised: the process is ending.
    std::_Exit(status);
}

}  // namespace

int run_master(const Config& config) {
    return Master(config).run();
}

}  // namespace gantry
