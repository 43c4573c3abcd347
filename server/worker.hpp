#pragma once
// One worker process: the Python executor plus the HTTP server on the listen sockets it inherited
// from the master. Runs until TERM/INT (graceful) or QUIT (now), or until the master goes away.
#include <atomic>
#include <memory>
#include <vector>

#include "embed/runtime/python_runtime.hpp"
#include "server/config.hpp"
#include "server/listen_socket.hpp"

namespace gantry {

class LoadBoard;
class MetricsStore;
class SharedStore;

// What the interpreter and the WSGI executor take from the config.
RuntimeSettings runtime_settings(const Config& config);
ExecutorSettings executor_settings(const Config& config);

// What the master maps before forking, shared by every worker.
struct WorkerShared {
    MetricsStore* metrics = nullptr;  // --metrics-bind
    SharedStore* cache = nullptr;     // --cache-size > 0: the response cache and Django's cache backend
    int number = 0;                   // this worker's slot, 0..workers-1 (slot 0 subscribes to purges)
    std::atomic<int>* ready = nullptr;  // where it writes its pid once serving (the master's board)
    LoadBoard* board = nullptr;       // each worker's load: balancing connections and requests
    int age = 0;                      // the master's spawn counter (gunicorn's worker.age, for hooks)
};

// Exit status a worker uses when the app cannot be loaded: the master stops instead of
// restarting it in a loop (gunicorn's WORKER_BOOT_ERROR).
inline constexpr int kWorkerBootError = 3;

// `runtime` is the interpreter inherited from a --preload master, or null to start one here.
// Returns the process exit status.
int run_worker(const Config& config, const std::vector<ListenSocket>& sockets,
               std::unique_ptr<PythonRuntime> runtime, int master_pid, WorkerShared shared);

}  // namespace gantry
