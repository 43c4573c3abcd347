// The WSGI executor's threads: they take AppCalls from a lock-free queue and call the app (see
// callbacks.cpp) with the GIL held, one acquisition for as many calls as are waiting.
#include "embed/wsgi/executor.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <concurrentqueue/blockingconcurrentqueue.h>
#include <spdlog/spdlog.h>

#include "embed/runtime/gil.hpp"
#include "embed/runtime/interpreter.hpp"
#include "embed/runtime/stack_dump.hpp"
#include "embed/wsgi/callbacks.hpp"
#include "embed/wsgi/errors.hpp"

namespace gantry {
namespace {

// An idle Python thread sleeps at once instead of spinning 10000 times first (moodycamel's
// default): the I/O thread that would post the next call, and the one that must write the
// answer just posted, often share its core, and a spinning waiter only delays them.
struct CallQueueTraits : moodycamel::ConcurrentQueueDefaultTraits {
    static const int MAX_SEMA_SPINS = 1;
};

class WsgiExecutor final : public AppExecutor {
public:
    WsgiExecutor(GilHeld& gil, const ExecutorSettings& config, PyObject* app) : threads_count_(std::max(1, config.threads)) {
        app_.emplace(gil, app, config, [this] { return queue_.size_approx() == 0; });
        for (int i = 0; i < threads_count_; ++i) running_.push_back(std::make_unique<Running>());
        for (int i = 0; i < threads_count_; ++i) threads_.emplace_back([this, i] { thread_main(*running_[i]); });
    }

    ~WsgiExecutor() override {
        stop();
        GilEnsured gil;  // the app's objects go with the GIL held
        app_.reset();
    }

    void dispatch(std::unique_ptr<AppCall> call) override {
        if (stopping_.load(std::memory_order_acquire)) {
            std::move(call->response).fail();
            return;
        }
        waiting_.fetch_add(1, std::memory_order_relaxed);
        in_flight_.fetch_add(1, std::memory_order_relaxed);
        queue_.enqueue(std::move(call));
    }

    std::size_t waiting() const override { return waiting_.load(std::memory_order_relaxed); }
    std::size_t in_flight() const override { return in_flight_.load(std::memory_order_relaxed); }
    std::uint64_t completed() const override { return completed_.load(std::memory_order_relaxed); }
    void on_completed(std::uint64_t after, std::function<void()> notify) override {
        completed_notify_ = std::move(notify);  // set before any call runs (the worker does it at start)
        completed_limit_ = after;
    }

    std::vector<std::string> expire_overdue(std::chrono::milliseconds limit) override {
        std::vector<std::string> reports;
        auto now = std::chrono::steady_clock::now();
        for (auto& slot : running_) {
            std::lock_guard lock(slot->mutex);
            if (!slot->call || slot->expired || now - slot->started < limit) continue;
            slot->expired = true;
            if (slot->sink) slot->sink->fail_timeout();
            double seconds = std::chrono::duration<double>(now - slot->started).count();
            std::string report = fmt::format("{} {} ran {:.1f} s; its thread's Python stack (most recent call first):\n",
                                             slot->call->request.method, slot->call->request.target, seconds);
            report += dump_python_stack(slot->thread_state);
            reports.push_back(std::move(report));
        }
        return reports;
    }

    void abandon() override {
        stopping_.store(true, std::memory_order_release);
        std::unique_ptr<AppCall> call;
        while (queue_.try_dequeue(call))
            if (call) std::move(call->response).fail();
        for (auto& t : threads_) t.detach();
    }

    void stop() override {
        if (stopping_.exchange(true)) {
            join();
            return;
        }
        for (int i = 0; i < threads_count_; ++i) queue_.enqueue(nullptr);  // wake the idle ones
        join();
    }

private:
    void join() {
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }

    // What one Python thread is running, for the --timeout watchdog (another thread).
    struct Running {
        std::mutex mutex;
        AppCall* call = nullptr;
        // The call's sink, kept for fail_timeout: the call's handle is consumed as it completes.
        std::shared_ptr<ResponseSink> sink;
        std::chrono::steady_clock::time_point started;
        PyThreadState* thread_state = nullptr;
        bool expired = false;
    };

    void thread_main(Running& slot);
    void run(GilHeld& gil, Running& slot, std::unique_ptr<AppCall> call);

    int threads_count_;
    std::optional<wsgi::WsgiApp> app_;
    moodycamel::BlockingConcurrentQueue<std::unique_ptr<AppCall>, CallQueueTraits> queue_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> waiting_{0};
    std::atomic<std::size_t> in_flight_{0};
    std::atomic<std::uint64_t> completed_{0};
    std::uint64_t completed_limit_ = UINT64_MAX;
    std::function<void()> completed_notify_;
    std::vector<std::unique_ptr<Running>> running_;
    std::vector<std::thread> threads_;
};

void WsgiExecutor::run(GilHeld& gil, Running& slot, std::unique_ptr<AppCall> call) {
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    {
        std::lock_guard lock(slot.mutex);
        slot.call = call.get();
        slot.sink = call->response.sink();
        slot.started = std::chrono::steady_clock::now();
        slot.expired = false;
    }
    // Nothing may escape and end the thread: a C++ exception (from a sink, or bad_alloc) fails
    // the request, through the handle that still holds it.
    try {
        app_->call(gil, *call);
    } catch (const std::exception& e) {
        wsgi::log_call_exception(gil, call->request, e);
    }
    std::move(call->response).fail();  // only if the call never took the response over
    {
        std::lock_guard lock(slot.mutex);  // before the call goes: the watchdog reads it
        slot.call = nullptr;
        slot.sink.reset();
    }
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    if (completed_.fetch_add(1, std::memory_order_relaxed) + 1 >= completed_limit_ && completed_notify_)
        completed_notify_();
}

void WsgiExecutor::thread_main(Running& slot) {
    // This thread's own Python thread state; the GIL is held only while calls run.
    PythonThread python;
    {
        std::lock_guard lock(slot.mutex);
        slot.thread_state = python.state();
    }
    std::unique_ptr<AppCall> call;
    for (;;) {
        if (!queue_.wait_dequeue_timed(call, std::chrono::milliseconds(200))) {
            if (stopping_.load(std::memory_order_acquire)) break;
            continue;
        }
        if (!call) {
            if (!stopping_.load(std::memory_order_acquire)) continue;
            // Stopping: finish what is queued, then leave.
            GilRestored gil(python);
            while (queue_.try_dequeue(call))
                if (call) run(gil, slot, std::move(call));
            break;
        }
        GilRestored gil(python);
        run(gil, slot, std::move(call));
        // Take the next call without giving up the GIL when one is already waiting.
        while (queue_.try_dequeue(call) && call) run(gil, slot, std::move(call));
    }
}

}  // namespace

std::unique_ptr<AppExecutor> start_wsgi_executor(PythonRuntime& runtime, const ExecutorSettings& settings) {
    Interpreter& interpreter = runtime.interpreter();
    if (interpreter.executor_started()) throw AppLoadError("the executor is already running");
    GilHeld& gil = interpreter.starting_thread();
    PyObject* app = interpreter.app(gil);
    if (!app) throw AppLoadError("start_wsgi_executor() before load_app()");
    auto executor = std::make_unique<WsgiExecutor>(gil, settings, app);
    // The executor threads need the GIL; this thread gives it up until the runtime is destroyed.
    interpreter.release_starting_thread();
    return executor;
}

}  // namespace gantry
