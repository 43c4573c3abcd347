// The ASGI executor's loop thread: I/O threads put calls (and callbacks) on one lock-free queue
// and write the eventfd the loop watches with add_reader, once per batch; the loop drains the
// whole queue at each wake-up. The loop thread holds the GIL while it runs Python and gives it up
// while the loop waits in epoll (asyncio and uvloop both do).
// The loop beats a heartbeat at each batch and at a tick (call_later); a watchdog thread that
// never takes the GIL logs a loop silent longer than --loop-block-warn, and --timeout tells from
// it whether an overdue request's task can be cancelled (the loop runs) or the worker must go
// (the loop itself is stuck).
#include "embed/asgi/executor.hpp"

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>

#include <sys/eventfd.h>
#include <unistd.h>

#include <concurrentqueue/concurrentqueue.h>
#include <spdlog/spdlog.h>

#include "embed/asgi/callbacks.hpp"
#include "embed/asgi/loop_heartbeat.hpp"
#include "embed/runtime/gil.hpp"
#include "embed/runtime/interpreter.hpp"
#include "embed/runtime/stack_dump.hpp"

namespace gantry {
namespace {

using asgi::LoopHeartbeat;
using py::Ref;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kDrainBatch = 64;

// How often the loop beats by itself: within half of each limit that reads the heartbeat, so a
// loop that only waits is never taken for a blocked one. Zero: no tick (nothing reads it).
milliseconds tick_interval(const ExecutorSettings& s) {
    milliseconds tick{0};
    for (milliseconds limit : {s.loop_block_warn, s.timeout})
        if (limit.count() > 0 && (tick.count() == 0 || limit / 2 < tick)) tick = limit / 2;
    return tick.count() > 0 ? std::max(tick, milliseconds(1)) : tick;
}

// --loop-block-warn: a thread of its own, never taking the GIL, that checks the loop's heartbeat
// every threshold/2 and logs each blocked episode twice: when seen (with the loop thread's Python
// stack, read as faulthandler does: the loop may hold the GIL) and when it ends.
class LoopWatchdog {
public:
    LoopWatchdog(LoopHeartbeat& heartbeat, milliseconds threshold, std::function<std::string()> loop_stack)
        : heartbeat_(heartbeat), threshold_(threshold), loop_stack_(std::move(loop_stack)),
          thread_([this] { run(); }) {}
    ~LoopWatchdog() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    LoopWatchdog(const LoopWatchdog&) = delete;
    LoopWatchdog& operator=(const LoopWatchdog&) = delete;

private:
    void run() {
        const milliseconds every = std::max(threshold_ / 2, milliseconds(1));
        std::unique_lock lock(mutex_);
        while (!cv_.wait_for(lock, every, [&] { return stop_; })) {
            LoopHeartbeat::Change change = heartbeat_.check(Clock::now());
            if (change.kind == LoopHeartbeat::Change::Kind::blocked)
                spdlog::warn("ASGI event loop blocked for {} ms (over --loop-block-warn {} ms): synchronous code "
                             "in the loop holds every request of this worker. The loop thread's Python stack:\n{}",
                             change.duration.count(), threshold_.count(), loop_stack_());
            else if (change.kind == LoopHeartbeat::Change::Kind::unblocked)
                spdlog::warn("ASGI event loop unblocked after {} ms", change.duration.count());
        }
    }

    LoopHeartbeat& heartbeat_;
    milliseconds threshold_;
    std::function<std::string()> loop_stack_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;  // last: it starts once the rest is made
};

// What crosses to the loop thread: a request, a function to run there, or the order to stop.
struct LoopItem {
    std::unique_ptr<AppCall> call;
    std::function<void(GilHeld&)> run;
    bool stop = false;
};

class AsgiExecutor final : public AppExecutor {
public:
    AsgiExecutor(const ExecutorSettings& settings, PyObject* app)
        : settings_(settings), app_object_(app), tick_(tick_interval(settings)),
          heartbeat_(settings.loop_block_warn, Clock::now()) {
        wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wake_fd_ < 0) throw AppLoadError(std::string("cannot make the ASGI loop's eventfd: ") + std::strerror(errno));
        thread_ = std::thread([this] { loop_main(); });
        std::unique_lock lock(start_mutex_);
        start_cv_.wait(lock, [&] { return start_result_.has_value(); });
        if (!start_result_->empty()) {
            std::string why = *start_result_;
            lock.unlock();
            if (thread_.joinable()) thread_.join();
            throw AppLoadError(why);
        }
        lock.unlock();
        if (settings_.loop_block_warn.count() > 0)
            watchdog_ = std::make_unique<LoopWatchdog>(heartbeat_, settings_.loop_block_warn, [this] { return loop_stack(); });
    }

    ~AsgiExecutor() override {
        stop();
        if (wake_fd_ >= 0) ::close(wake_fd_);
    }

    void dispatch(std::unique_ptr<AppCall> call) override {
        if (stopping_.load(std::memory_order_acquire)) {
            refuse(*call);
            return;
        }
        waiting_.fetch_add(1, std::memory_order_relaxed);
        in_flight_.fetch_add(1, std::memory_order_relaxed);
        queue_.enqueue(LoopItem{std::move(call), {}, false});
        wake();
    }

    std::size_t waiting() const override { return waiting_.load(std::memory_order_relaxed); }
    std::size_t in_flight() const override { return in_flight_.load(std::memory_order_relaxed); }
    // receive() gives the body as it arrives: the app is called once the head is here.
    bool streams_request_body() const override { return true; }
    // The websocket scope (embed/asgi/websocket_exchange): a call with `websocket` set.
    bool takes_websockets() const override { return true; }
    std::uint64_t completed() const override { return completed_.load(std::memory_order_relaxed); }
    void on_completed(std::uint64_t after, std::function<void()> notify) override {
        completed_notify_ = std::move(notify);
        completed_limit_ = after;
    }

    std::vector<std::string> expire_overdue(milliseconds limit) override {
        if (!app_) return {};
        // Read before the tasks are expired: a loop silent for the whole limit is stuck in one
        // call (synchronous code), and no cancel will run on it until that returns.
        const milliseconds silence = heartbeat_.silence(Clock::now());
        std::vector<asgi::AsgiApp::Expired> expired = app_->expire_overdue(limit);
        if (expired.empty() || silence <= limit) return {};  // the loop runs: the cancels are on their way
        std::vector<std::string> reports;
        for (const auto& e : expired)
            reports.push_back(fmt::format("{} ran {:.1f} s", e.request_line, e.seconds));
        reports.front() += fmt::format("; the ASGI event loop has been blocked for {} ms (its task cannot be "
                                       "cancelled); the loop thread's Python stack:\n{}",
                                       silence.count(), loop_stack());
        for (std::size_t i = 1; i < reports.size(); ++i) reports[i] += " (on the same blocked event loop)";
        return reports;
    }

    void abandon() override {
        stopping_.store(true, std::memory_order_release);
        watchdog_.reset();
        if (thread_.joinable()) thread_.detach();
    }

    void stop() override {
        watchdog_.reset();  // the loop stops beating from here on
        if (!stopping_.exchange(true)) {
            queue_.enqueue(LoopItem{nullptr, {}, true});
            wake();
        }
        if (thread_.joinable()) thread_.join();
    }

    // From any thread: `run` is called on the loop thread, with the GIL, in the next batch.
    void post(std::function<void(GilHeld&)> run) {
        queue_.enqueue(LoopItem{nullptr, std::move(run), false});
        wake();
    }

    // The loop's reader callback: everything queued, in one go.
    void drain(GilHeld& gil);
    // The loop's periodic callback: a beat, and the next tick.
    void tick(GilHeld& gil);

private:
    // A call that will never reach the app: a 500 (a WebSocket's handshake too).
    static void refuse(AppCall& call) {
        if (call.websocket) call.websocket->fail();
        std::move(call.response).fail();
    }
    void wake() {
        if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;  // a wake-up is on its way
        std::uint64_t one = 1;
        while (::write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
        }
    }
    void loop_main();
    bool set_up(GilHeld& gil, std::string& error);
    void report_start(std::string error) {
        std::lock_guard lock(start_mutex_);
        start_result_ = std::move(error);
        start_cv_.notify_all();
    }
    void request_finished();
    void finish_if_stopped(GilHeld& gil);
    void schedule_tick(GilHeld& gil);
    // The loop thread's Python stack, from any thread, without the GIL.
    std::string loop_stack() {
        std::lock_guard lock(loop_state_mutex_);
        return loop_state_ ? dump_python_stack(loop_state_) : "  (the event loop thread has ended)\n";
    }
    // Publishes the loop thread's state for loop_stack() while the thread lives.
    struct LoopStatePublished {
        LoopStatePublished(AsgiExecutor& e, PyThreadState* state) : e(e) {
            std::lock_guard lock(e.loop_state_mutex_);
            e.loop_state_ = state;
        }
        ~LoopStatePublished() {
            std::lock_guard lock(e.loop_state_mutex_);
            e.loop_state_ = nullptr;
        }
        AsgiExecutor& e;
    };

    ExecutorSettings settings_;
    PyObject* app_object_;  // the interpreter's: it outlives the executor
    int wake_fd_ = -1;
    std::atomic<bool> wake_pending_{false};
    moodycamel::ConcurrentQueue<LoopItem> queue_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> waiting_{0};
    std::atomic<std::size_t> in_flight_{0};  // dispatched, task not ended
    std::atomic<std::uint64_t> completed_{0};
    std::uint64_t completed_limit_ = UINT64_MAX;
    std::function<void()> completed_notify_;
    const milliseconds tick_;
    LoopHeartbeat heartbeat_;
    std::mutex loop_state_mutex_;
    PyThreadState* loop_state_ = nullptr;  // the loop thread's, while it runs
    std::unique_ptr<LoopWatchdog> watchdog_;

    // Loop thread only (app_ is also read by expire_overdue once the start is reported).
    Ref loop_;
    Ref tick_callback_;  // the tick, as a callable for call_later
    Ref tick_handle_;    // the TimerHandle of the next tick
    std::unique_ptr<asgi::AsgiApp> app_;
    bool stop_asked_ = false;
    bool shutting_down_ = false;

    std::mutex start_mutex_;
    std::condition_variable start_cv_;
    std::optional<std::string> start_result_;  // "" : started
    std::thread thread_;
};

PyObject* drain_callback(PyObject* capsule, PyObject*) {
    GilHeld gil = GilHeld::from_python_call();
    auto* executor = static_cast<AsgiExecutor*>(PyCapsule_GetPointer(capsule, nullptr));
    if (executor) executor->drain(gil);
    if (PyErr_Occurred()) return nullptr;
    Py_RETURN_NONE;
}

PyMethodDef drain_def = {"drain", drain_callback, METH_NOARGS, "Takes everything the I/O threads queued."};

PyObject* tick_callback(PyObject* capsule, PyObject*) {
    GilHeld gil = GilHeld::from_python_call();
    auto* executor = static_cast<AsgiExecutor*>(PyCapsule_GetPointer(capsule, nullptr));
    if (executor) executor->tick(gil);
    if (PyErr_Occurred()) return nullptr;
    Py_RETURN_NONE;
}

PyMethodDef tick_def = {"tick", tick_callback, METH_NOARGS, "The event loop's heartbeat."};

void AsgiExecutor::tick(GilHeld& gil) {
    heartbeat_.beat(Clock::now());
    schedule_tick(gil);
}

void AsgiExecutor::schedule_tick(GilHeld& gil) {
    if (!tick_callback_) return;
    tick_handle_ = Ref(PyObject_CallMethod(loop_.get(), "call_later", "dO", std::chrono::duration<double>(tick_).count(),
                                           tick_callback_.get()));
    if (!tick_handle_) spdlog::error("ASGI loop: cannot schedule its heartbeat:\n{}", py::take_exception_text(gil));
}

void AsgiExecutor::drain(GilHeld& gil) {
    heartbeat_.beat(Clock::now());
    std::uint64_t count = 0;
    while (::read(wake_fd_, &count, sizeof(count)) < 0 && errno == EINTR) {
    }
    // Reset before taking: an item queued from now on writes the eventfd again.
    wake_pending_.store(false, std::memory_order_release);
    LoopItem items[kDrainBatch];
    for (;;) {
        std::size_t n = queue_.try_dequeue_bulk(items, kDrainBatch);
        if (n == 0) break;
        for (std::size_t i = 0; i < n; ++i) {
            LoopItem& item = items[i];
            try {
                if (item.call) {
                    waiting_.fetch_sub(1, std::memory_order_relaxed);
                    if (item.call->websocket) app_->start_websocket(gil, std::move(item.call));
                    else app_->start_http(gil, std::move(item.call));
                } else if (item.run) {
                    item.run(gil);
                } else if (item.stop) {
                    stop_asked_ = true;
                    finish_if_stopped(gil);
                }
            } catch (const std::exception& e) {
                spdlog::error("ASGI loop: {}", e.what());
            }
            if (PyErr_Occurred()) {
                spdlog::error("ASGI loop: {}", py::take_exception_text(gil));
            }
            item = LoopItem{};
        }
    }
}

void AsgiExecutor::request_finished() {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    if (completed_.fetch_add(1, std::memory_order_relaxed) + 1 >= completed_limit_ && completed_notify_) completed_notify_();
}

// Once stop() was asked and no request is running: the lifespan shutdown, then the loop stops.
void AsgiExecutor::finish_if_stopped(GilHeld& gil) {
    if (!stop_asked_ || shutting_down_) return;
    if (app_->active() > 0) {
        // The server has stopped before the executor (the worker's order): no client waits any more.
        if (!app_->cancelling()) app_->cancel_requests(gil);
        return;
    }
    shutting_down_ = true;
    app_->shutdown_lifespan(gil, [this] {
        Ref stopped(PyObject_CallMethod(loop_.get(), "stop", nullptr));
        if (!stopped) PyErr_Clear();
    });
}

bool AsgiExecutor::set_up(GilHeld& gil, std::string& error) {
    Ref module(PyImport_ImportModule("gantry._asgi"));
    loop_ = Ref(module ? PyObject_CallMethod(module.get(), "new_loop", "s", settings_.loop.c_str()) : nullptr);
    Ref asyncio(loop_ ? PyImport_ImportModule("asyncio") : nullptr);
    Ref set(asyncio ? PyObject_CallMethod(asyncio.get(), "set_event_loop", "O", loop_.get()) : nullptr);
    Ref capsule(set ? PyCapsule_New(this, nullptr, nullptr) : nullptr);
    Ref callback(capsule ? PyCFunction_New(&drain_def, capsule.get()) : nullptr);
    Ref added(callback ? PyObject_CallMethod(loop_.get(), "add_reader", "iO", wake_fd_, callback.get()) : nullptr);
    if (added && tick_.count() > 0) {
        tick_callback_ = Ref(PyCFunction_New(&tick_def, capsule.get()));
        if (!tick_callback_) added.reset();
    }
    if (!added) {
        error = "cannot start the ASGI event loop (--loop " + settings_.loop + "):\n" + py::take_exception_text(gil);
        return false;
    }
    Ref name(PyObject_CallMethod(module.get(), "loop_name", "O", loop_.get()));
    const char* loop_name = name ? PyUnicode_AsUTF8(name.get()) : nullptr;
    if (!loop_name) PyErr_Clear();
    spdlog::debug("ASGI event loop: {}", loop_name ? loop_name : "?");
    heartbeat_.beat(Clock::now());
    schedule_tick(gil);
    try {
        app_ = std::make_unique<asgi::AsgiApp>(
            gil, app_object_, loop_.get(), settings_, [this](std::function<void(GilHeld&)> run) { post(std::move(run)); },
            [this](GilHeld& gil) {
                request_finished();
                finish_if_stopped(gil);
            });
    } catch (const std::exception& e) {
        error = e.what();
        return false;
    }
    return true;
}

void AsgiExecutor::loop_main() {
    PythonThread python;
    LoopStatePublished published(*this, python.state());
    GilRestored gil(python);
    std::string error;
    if (!set_up(gil, error)) {
        tick_handle_.reset();
        tick_callback_.reset();
        loop_.reset();
        report_start(error);
        return;
    }
    bool reported = false;
    app_->start_lifespan(gil, [this, &reported](bool ok, std::string why) {
        reported = true;
        if (ok) {
            report_start("");
            return;
        }
        report_start("ASGI lifespan startup failed" + (why.empty() ? std::string() : ":\n" + why));
        stop_asked_ = shutting_down_ = true;
        Ref stopped(PyObject_CallMethod(loop_.get(), "stop", nullptr));
        if (!stopped) PyErr_Clear();
    });
    Ref ran(PyObject_CallMethod(loop_.get(), "run_forever", nullptr));
    if (!ran) spdlog::error("ASGI event loop failed:\n{}", py::take_exception_text(gil));
    if (!reported) report_start("the ASGI event loop stopped before the lifespan startup completed");
    // Whatever is still queued is answered now (a stop after a failed start, a late dispatch).
    LoopItem item;
    while (queue_.try_dequeue(item))
        if (item.call) refuse(*item.call);
    if (tick_handle_) {
        Ref cancelled(PyObject_CallMethod(tick_handle_.get(), "cancel", nullptr));
        if (!cancelled) PyErr_Clear();
        tick_handle_.reset();
    }
    tick_callback_.reset();
    Ref removed(PyObject_CallMethod(loop_.get(), "remove_reader", "i", wake_fd_));
    Ref closed(PyObject_CallMethod(loop_.get(), "close", nullptr));
    if (!removed || !closed) PyErr_Clear();
    app_.reset();
    loop_.reset();
}

}  // namespace

std::unique_ptr<AppExecutor> start_asgi_executor(PythonRuntime& runtime, const ExecutorSettings& settings) {
    Interpreter& interpreter = runtime.interpreter();
    if (interpreter.executor_started()) throw AppLoadError("the executor is already running");
    GilHeld& gil = interpreter.starting_thread();
    PyObject* app = interpreter.app(gil);
    if (!app) throw AppLoadError("start_asgi_executor() before load_app()");
    // The loop thread needs the GIL from the start (the lifespan runs before this returns).
    interpreter.release_starting_thread();
    return std::make_unique<AsgiExecutor>(settings, app);
}

}  // namespace gantry
