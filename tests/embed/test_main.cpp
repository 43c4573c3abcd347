// One Python interpreter per test process, started by a gtest Environment; plus a child mode
// (`embed_tests --child ...`) for tests whose configuration must be fixed before Py_Initialize.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <array>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include "support.hpp"

#include "embed/asgi/executor.hpp"
#include "embed/wsgi/executor.hpp"
#include "http/websocket_channel.hpp"

namespace gantry::test {

namespace {
std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> g_log_sink;
std::unique_ptr<PythonRuntime> g_runtime;
std::unique_ptr<AppExecutor> g_executor;
std::string g_self;

void install_logger() {
    g_log_sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
    g_log_sink->set_pattern("%l|%v");
    auto logger = std::make_shared<spdlog::logger>("test", g_log_sink);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
}

class RuntimeEnvironment : public ::testing::Environment {
public:
    void SetUp() override {
        RuntimeSettings config;
        config.app = "testapp:application";
        config.pythonpath = {GANTRY_TEST_APPS_DIR};
        config.env = {{"GANTRY_TEST_FROM_ENV", "from-env"}};
        g_runtime = PythonRuntime::start(config);
        g_runtime->load_app();
        ExecutorSettings executor;
        executor.threads = 2;
        executor.multiprocess = true;  // as with 3 workers
        g_executor = start_wsgi_executor(*g_runtime, executor);
    }
    void TearDown() override {
        g_executor->stop();
        g_executor.reset();
        g_runtime.reset();
    }
};

// --child --websocket ... APP TARGET: the ASGI executor serves one WebSocket handshake of TARGET,
// this thread playing its connection: the first message it accepts is echoed; then the executor
// stops with the WebSocket still open. Prints what the connection saw, one word per event.
int websocket_child(PythonRuntime& runtime, const std::string& target) {
    std::mutex mutex;
    std::condition_variable cv;
    bool woken = false;
    auto channel = std::make_shared<WebSocketChannel>(
        [&] {
            std::lock_guard lock(mutex);
            woken = true;
            cv.notify_all();
        },
        1 << 20);
    std::deque<WebSocketChannel::Outgoing> seen;
    // Takes what the app queued until `count` events came (or 20 s passed: a failure).
    auto wait_for_events = [&](std::size_t count) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (seen.size() < count) {
            std::unique_lock lock(mutex);
            if (!cv.wait_until(lock, deadline, [&] { return woken; })) return false;
            woken = false;
            lock.unlock();
            channel->take_outgoing(seen);
        }
        return true;
    };
    ExecutorSettings settings;
    settings.lifespan = "off";
    auto executor = start_asgi_executor(runtime, settings);
    std::cout << "TAKES " << executor->takes_websockets();
    auto call = std::make_unique<AppCall>();
    call->request.method = "GET";
    call->request.target = target;
    call->request.server_name = "127.0.0.1";
    call->request.server_port = 8000;
    call->websocket = channel;
    executor->dispatch(std::move(call));
    if (wait_for_events(1) && seen[0].kind == WebSocketChannel::Outgoing::Kind::accept) std::cout << " ACCEPT";
    channel->push({true, "ping"});
    if (wait_for_events(2) && seen[1].kind == WebSocketChannel::Outgoing::Kind::message) std::cout << " ECHO " << seen[1].message.data;
    std::cout << " INFLIGHT " << executor->in_flight();
    executor->stop();  // the app waits in receive(): its task is cancelled
    channel->take_outgoing(seen);
    if (seen.size() == 3 && seen[2].kind == WebSocketChannel::Outgoing::Kind::close) std::cout << " CLOSE " << seen[2].code;
    std::cout << " INFLIGHT " << executor->in_flight() << std::flush;
    executor.reset();
    return 0;
}

// --child [--fork] [--static-settings] [--websocket] [--burst N] [--venv DIR] [--chdir DIR] [--pythonpath DIR] [--env K=V] [--threads N] APP [TARGET]
// Starts a runtime, loads APP, prints "LOADED" or "LOAD ERROR" + the error, then the body of
// one GET TARGET. Exit code 0, or 3 on a load error.
int child_main(int argc, char** argv) {
    RuntimeSettings config;
    ExecutorSettings executor;
    std::string target = "/";
    std::vector<std::string> positional;
    bool fork_first = false, static_settings = false, websocket = false;
    int burst = 0;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&] { return std::string(argv[++i]); };
        if (a == "--fork") fork_first = true;
        else if (a == "--static-settings") static_settings = true;
        else if (a == "--websocket") websocket = true;
        else if (a == "--burst") burst = std::stoi(next());
        else if (a == "--venv") config.virtualenv = next();
        else if (a == "--chdir") config.chdir = next();
        else if (a == "--pythonpath") config.pythonpath.push_back(next());
        else if (a == "--env") {
            std::string kv = next();
            auto eq = kv.find('=');
            config.env.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
        } else positional.push_back(a);
    }
    config.app = positional.at(0);
    if (positional.size() > 1) target = positional[1];
    std::unique_ptr<PythonRuntime> runtime;
    try {
        runtime = PythonRuntime::start(config);
        runtime->load_app();
    } catch (const AppLoadError& e) {
        std::cout << "LOAD ERROR\n" << e.what() << std::flush;
        return 3;
    }
    std::cout << "LOADED\n" << std::flush;
    if (websocket) return websocket_child(*runtime, target);
    if (static_settings) {
        // What the static middleware learns from the app, as JSON.
        DjangoStaticSettings s = runtime->django_static_settings();
        nlohmann::json sources = nlohmann::json::array();
        for (const auto& src : s.finder_sources) sources.push_back({src.dir, src.sub_prefix});
        nlohmann::json out = {{"found", s.found}, {"debug", s.debug}, {"static_url", s.static_url},
                              {"static_root", s.static_root}, {"sources", sources}, {"notes", s.notes}};
        std::cout << out.dump() << std::flush;
        return 0;
    }
    if (fork_first) {
        // As a prefork master does: fork with the app loaded, both sides then serve.
        runtime->before_fork();
        pid_t pid = ::fork();
        if (pid == 0) {
            runtime->after_fork_child();
            std::cout << "CHILD ";
        } else {
            runtime->after_fork_parent();
            int status = 0;
            ::waitpid(pid, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 5;
            std::cout << "\nPARENT ";
        }
    }
    g_executor = start_wsgi_executor(*runtime, executor);
    if (burst > 0) {
        // stop() right after queueing: every queued call must still be answered.
        std::vector<std::shared_ptr<RecordingSink>> sinks;
        for (int i = 0; i < burst; ++i) {
            sinks.push_back(std::make_shared<RecordingSink>());
            g_executor->dispatch(make_call("GET", target, {}, {}, sinks.back()));
        }
        g_executor->stop();
        int answered = 0;
        for (auto& s : sinks) answered += s->find("send_whole") ? 1 : 0;
        auto late = std::make_shared<RecordingSink>();
        g_executor->dispatch(make_call("GET", target, {}, {}, late));
        std::cout << "ANSWERED " << answered << " LATE " << (late->find("fail") ? "fail" : "other") << std::flush;
        g_executor.reset();
        return 0;
    }
    auto sink = run(make_call("GET", target));
    std::cout << sink->body() << std::flush;
    g_executor->stop();
    g_executor.reset();
    return sink->find("fail") ? 4 : 0;
}
}  // namespace

bool RecordingSink::spend() {
    if (budget_ < 0) return true;
    if (budget_ == 0) {
        gone_ = true;
        return false;
    }
    --budget_;
    return true;
}

bool RecordingSink::write_chunk(std::string data) {
    std::lock_guard lock(mutex_);
    events_.push_back({"write_chunk", {}, std::move(data)});
    return spend();
}

bool RecordingSink::send_file(int fd, off_t offset, std::size_t count) {
    Event e{"send_file", {}, std::string(count, '\0'), offset, count};
    ssize_t n = ::pread(fd, e.data.data(), count, offset);
    e.data.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    ::close(fd);
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(e));
    return spend();
}

void RecordingSink::record(Event e, bool terminal) {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(e));
    if (terminal) {
        done_ = true;
        cv_.notify_all();
    }
}

bool RecordingSink::wait(std::chrono::seconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return done_; });
}

std::vector<std::string> RecordingSink::kinds() const {
    std::vector<std::string> out;
    for (const auto& e : events()) out.push_back(e.kind);
    return out;
}

std::string RecordingSink::body() const {
    std::string out;
    for (const auto& e : events())
        if (e.kind == "send_whole" || e.kind == "write_chunk" || e.kind == "send_file") out += e.data;
    return out;
}

const RecordingSink::Event* RecordingSink::find(const std::string& kind) const {
    std::lock_guard lock(mutex_);
    for (const auto& e : events_)
        if (e.kind == kind) return &e;
    return nullptr;
}

std::unique_ptr<AppCall> make_call(std::string method, std::string target, std::vector<HttpHeader> headers,
                                   std::string body, std::shared_ptr<ResponseSink> sink,
                                   std::size_t body_memory_limit) {
    auto call = std::make_unique<AppCall>();
    call->request.method = std::move(method);
    call->request.target = std::move(target);
    call->request.headers = std::move(headers);
    call->request.body = RequestBody(body_memory_limit);
    call->request.body.append(body);
    call->request.remote_addr = "10.1.2.3";
    call->request.remote_port = 54321;
    call->request.server_name = "127.0.0.1";
    call->request.server_port = 8000;
    call->response = ResponseHandle(sink ? std::move(sink) : std::make_shared<RecordingSink>());
    call->queued_at = std::chrono::steady_clock::now();
    return call;
}

std::shared_ptr<RecordingSink> run(std::unique_ptr<AppCall> call, std::shared_ptr<RecordingSink> sink) {
    if (sink) call->response = ResponseHandle(sink);  // the default sink it replaces is never read
    auto recording = std::dynamic_pointer_cast<RecordingSink>(call->response.sink());
    (g_executor ? *g_executor : throw std::logic_error("no executor")).dispatch(std::move(call));
    if (!recording->wait()) ADD_FAILURE() << "no terminal response call within the timeout";
    return recording;
}

std::shared_ptr<RecordingSink> get(const std::string& target, std::vector<HttpHeader> headers) {
    return run(make_call("GET", target, std::move(headers)));
}

AppExecutor& executor() { return *g_executor; }

std::vector<std::string> take_log() {
    auto lines = g_log_sink->last_formatted();
    // ringbuffer_sink has no clear(): swap in a fresh sink.
    auto fresh = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
    fresh->set_pattern("%l|%v");
    auto logger = std::make_shared<spdlog::logger>("test", fresh);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
    g_log_sink = fresh;
    return lines;
}

ChildResult run_child(const std::vector<std::string>& args, const std::vector<std::string>& env) {
    std::string cmd;
    for (const auto& e : env) cmd += e + " ";
    cmd += "'" + g_self + "' --child";
    for (const auto& a : args) {
        std::string quoted = "'";
        for (char c : a) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
        cmd += " " + quoted + "'";
    }
    cmd += " 2>&1";
    ChildResult r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf;
    std::size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
    int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

}  // namespace gantry::test

int main(int argc, char** argv) {
    gantry::test::g_self = std::filesystem::read_symlink("/proc/self/exe").string();
    gantry::test::install_logger();
    if (argc > 2 && std::strcmp(argv[1], "--child") == 0) return gantry::test::child_main(argc, argv);
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new gantry::test::RuntimeEnvironment);
    return RUN_ALL_TESTS();
}
