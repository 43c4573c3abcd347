#pragma once
// The public face of embed/: what server/ code (the master, the worker) uses to run Python. The
// protocol executors that serve the loaded app start from embed/wsgi/executor.hpp (and, later,
// embed/asgi/). No Python.h here: the CPython API stays inside embed/.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "http/app_dispatcher.hpp"
#include "http/app_static_files.hpp"

namespace gantry {

// The app could not be imported or built; what() holds the Python traceback as text.
struct AppLoadError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// What the interpreter and the app loader need (from the command line: --chdir, --pythonpath, ...).
struct RuntimeSettings {
    std::string app;                       // "module:callable", "module:factory(args)", ...
    std::string chdir;                     // --chdir ("" : stay)
    std::vector<std::string> pythonpath;   // --pythonpath, in order
    std::string virtualenv;                // --virtualenv ("" : $VIRTUAL_ENV, if set)
    std::vector<std::pair<std::string, std::string>> env;  // -e KEY=VALUE
    bool timing_full = false;              // --timing full: Django's middleware is timed from the import on
    // --reload: a Django app's URLconf (and so its views) is imported with the app, as runserver's
    // checks do, so that a view that does not import shows at once, not at its first request.
    bool import_django_urls = false;
};

// What a protocol executor needs.
struct ExecutorSettings {
    int threads = 1;            // --threads: Python threads serving calls (WSGI)
    bool multiprocess = false;  // wsgi.multiprocess: more than one worker
    bool timing_full = false;   // --timing full: report the app's breakdown with each response
    std::string loop = "auto";      // ASGI --loop: auto (uvloop if installed), asyncio, uvloop
    std::string lifespan = "auto";  // ASGI --lifespan: auto, on, off (uvicorn's meanings)
    std::string root_path;          // ASGI scope root_path (--root-path; else $SCRIPT_NAME)
    // ASGI: a loop silent longer than this is logged as blocked, with its stack (0: not watched).
    std::chrono::milliseconds loop_block_warn{100};
    // --timeout (0: none). ASGI: the loop beats well within it, so that a loop blocked for that
    // long is told from a task that is only waiting.
    std::chrono::milliseconds timeout{0};
};

// A protocol executor: Python threads serving the loaded app. dispatch() never blocks and never
// takes the GIL; stop() lets queued and running calls finish, then joins the threads.
class AppExecutor : public AppDispatcher {
public:
    virtual void stop() = 0;
    // Calls that have run longer than `limit` (--timeout): each is answered 504 at once
    // (ResponseSink::fail_timeout). A call whose thread cannot be stopped (a WSGI thread, a
    // blocked ASGI event loop) is returned as its request line plus the Python stack of that
    // thread, for the error log: replace the worker. One the executor can stop (an ASGI task,
    // cancelled on its loop) is not returned: the executor logs it, with its stack, itself.
    virtual std::vector<std::string> expire_overdue(std::chrono::milliseconds limit) = 0;
    // Calls finished since the start (--max-requests).
    virtual std::uint64_t completed() const = 0;
    // `notify` runs (on a Python thread) each time a call finishes once `after` calls have:
    // the worker recycles right after the request that reached --max-requests.
    virtual void on_completed(std::uint64_t after, std::function<void()> notify) = 0;
    // For a worker that must exit while a thread is stuck in the app: fails what is queued
    // and returns without joining the threads (the process is about to end).
    virtual void abandon() = 0;
};

class Interpreter;  // embed/runtime/interpreter.hpp: what the executors start from

// The interpreter of this process (one per process) and the loaded application.
class PythonRuntime {
public:
    // Initialises CPython 3.11 as /usr/bin/python3 would (so Debian's dist-packages are seen),
    // applies --chdir, the virtualenv (--virtualenv or $VIRTUAL_ENV), --pythonpath, -e/--env, and
    // puts the `gantry` Python package (embed/python) on sys.path. The calling thread holds the GIL
    // afterwards. Throws AppLoadError.
    static std::unique_ptr<PythonRuntime> start(const RuntimeSettings& settings);
    ~PythonRuntime();  // finalises the interpreter

    // Applies to this running interpreter what start() applies from `settings` (-e/--env into
    // os.environ, --chdir, --pythonpath; the app and --timing for load_app), for an interpreter
    // started before they were known: the master's, which read the config file. Variables that
    // CPython reads only at its start (PYTHON*) no longer count. Throws AppLoadError.
    void configure(const RuntimeSettings& settings);

    // Executes a gunicorn config file (a path, file:PATH or python:module) as gunicorn does and
    // returns the gunicorn settings among its names as (name, values as flag text). `forms` maps
    // each setting name to its form (switch_on, switch_off, value, repeated, hook, file_only).
    // The module stays loaded (sys.modules["__config__"]): its hooks are at hand. Throws
    // AppLoadError with the traceback, or the setting and the value that is not usable.
    std::vector<std::pair<std::string, std::vector<std::string>>> read_config_file(
        const std::string& location, const std::vector<std::pair<std::string, std::string>>& forms);

    // A server hook of the config file read above (gantry/_hooks.py builds gunicorn's server and
    // worker objects). Calls `name` if the file defines it; the calling thread holds the GIL (the
    // master's, or a worker's before its executor starts). False if it raised: its traceback is
    // in the error log, the consequence is the caller's.
    struct HookCall {
        int master_pid = 0;
        int workers = 0;      // server.num_workers
        int worker_pid = 0;   // worker.pid (0 before the fork: pre_fork)
        int worker_age = 0;   // worker.age: the master's spawn counter
        int new_value = 0, old_value = 0;  // nworkers_changed
    };
    bool call_hook(const std::string& name, const HookCall& call);
    bool defines_hook(const std::string& name);

    // Imports settings.app ("module:callable" or "module:factory(args)"). Throws AppLoadError.
    void load_app();
    bool app_loaded() const;
    // Whether the loaded app is an ASGI app: an `async def` callable or an object whose __call__
    // is one (uvicorn's and hypercorn's test; Django's ASGIHandler passes). Needs the GIL (call
    // before an executor starts). Throws AppLoadError.
    bool app_is_asgi();

    // The loaded app's Django static settings (STATIC_URL, STATIC_ROOT, DEBUG and, in DEBUG, the
    // staticfiles finders' directories); `found` false for an app that is not Django. Needs the
    // GIL (call before an executor starts). Never throws: a failure is a note.
    DjangoStaticSettings django_static_settings();

    // Fork support for prefork workers (the caller's thread holds the GIL across fork()).
    void before_fork();
    void after_fork_parent();
    void after_fork_child();

    // For the protocol executors as they start (embed/wsgi/executor.hpp): the app, and the
    // starting thread's GIL, which they release once their threads run.
    Interpreter& interpreter() { return *interpreter_; }

    PythonRuntime(const PythonRuntime&) = delete;
    PythonRuntime& operator=(const PythonRuntime&) = delete;

private:
    explicit PythonRuntime(std::unique_ptr<Interpreter> interpreter);
    std::unique_ptr<Interpreter> interpreter_;
};

}  // namespace gantry
