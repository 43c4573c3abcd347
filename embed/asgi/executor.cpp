// The ASGI executor's loop thread: I/O threads put calls (and callbacks) on one lock-free queue
// and write the eventfd the loop watches with add_reader, once per batch; the loop drains the
// whole queue at each wake-up. The loop thread holds the GIL while it runs Python and gives it up
// while the loop waits in epoll (asyncio and uvloop both do).
#include "embed/asgi/executor.hpp"

#include <atomic>
#include <cerrno>
#include <condition_variable>
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
#include "embed/runtime/gil.hpp"
#include "embed/runtime/interpreter.hpp"

namespace gantry {
namespace {

using py::Ref;

constexpr std::size_t kDrainBatch = 64;

// What crosses to the loop thread: a request, a function to run there, or the order to stop.
struct LoopItem {
    std::unique_ptr<AppCall> call;
    std::function<void(GilHeld&)> run;
    bool stop = false;
};

class AsgiExecutor final : public AppExecutor {
public:
    AsgiExecutor(const ExecutorSettings& settings, PyObject* app) : settings_(settings), app_object_(app) {
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
    }

    ~AsgiExecutor() override {
        stop();
        if (wake_fd_ >= 0) ::close(wake_fd_);
    }

    void dispatch(std::unique_ptr<AppCall> call) override {
        if (stopping_.load(std::memory_order_acquire)) {
            std::move(call->response).fail();
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
    std::uint64_t completed() const override { return completed_.load(std::memory_order_relaxed); }
    void on_completed(std::uint64_t after, std::function<void()> notify) override {
        completed_notify_ = std::move(notify);
        completed_limit_ = after;
    }

    std::vector<std::string> expire_overdue(std::chrono::milliseconds limit) override {
        return app_ ? app_->expire_overdue(limit) : std::vector<std::string>{};
    }

    void abandon() override {
        stopping_.store(true, std::memory_order_release);
        if (thread_.joinable()) thread_.detach();
    }

    void stop() override {
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

private:
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

    // Loop thread only (app_ is also read by expire_overdue once the start is reported).
    Ref loop_;
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

void AsgiExecutor::drain(GilHeld& gil) {
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
                    app_->start_http(gil, std::move(item.call));
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
    if (!added) {
        error = "cannot start the ASGI event loop (--loop " + settings_.loop + "):\n" + py::take_exception_text(gil);
        return false;
    }
    Ref name(PyObject_CallMethod(module.get(), "loop_name", "O", loop_.get()));
    const char* loop_name = name ? PyUnicode_AsUTF8(name.get()) : nullptr;
    if (!loop_name) PyErr_Clear();
    spdlog::debug("ASGI event loop: {}", loop_name ? loop_name : "?");
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
    GilRestored gil(python);
    std::string error;
    if (!set_up(gil, error)) {
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
        if (item.call) std::move(item.call->response).fail();
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
