#include "server/load_board.hpp"

#include <algorithm>
#include <cerrno>
#include <new>
#include <system_error>

#include <sys/mman.h>

namespace gantry {

std::unique_ptr<LoadBoard> LoadBoard::create() {
    void* m = ::mmap(nullptr, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap of the load board");
    return std::unique_ptr<LoadBoard>(new LoadBoard(new (m) Segment()));
}

LoadBoard::~LoadBoard() { ::munmap(segment_, sizeof(Segment)); }

void LoadBoard::open(int n) {
    Slot* s = slot(n);
    if (!s) return;
    clear(n);
    s->connections_total.store(0, std::memory_order_relaxed);
    s->requests_total.store(0, std::memory_order_relaxed);
    s->sent_away_total.store(0, std::memory_order_relaxed);
    int used = segment_->in_use.load(std::memory_order_relaxed);
    while (used < n + 1 && !segment_->in_use.compare_exchange_weak(used, n + 1, std::memory_order_relaxed)) {
    }
}

bool LoadBoard::may_accept(int me, std::int64_t slack) const {
    const Slot* mine = slot(me);
    if (!mine) return true;
    const std::int64_t my_load = load_of(*mine);
    for (int n = 0, used = slots_in_use(); n < used; ++n) {
        if (n == me) continue;
        const Slot& s = segment_->slots[n];
        if (s.pid.load(std::memory_order_relaxed) == 0 || !s.accepting.load(std::memory_order_relaxed)) continue;
        if (load_of(s) + slack < my_load) return false;
    }
    return true;
}

bool LoadBoard::other_worker_idle(int me) const {
    const Slot* mine = slot(me);
    if (!mine) return false;
    const auto my_connections = mine->connections.load(std::memory_order_relaxed);
    for (int n = 0, used = slots_in_use(); n < used; ++n) {
        if (n == me) continue;
        const Slot& s = segment_->slots[n];
        if (s.pid.load(std::memory_order_relaxed) == 0 || !s.accepting.load(std::memory_order_relaxed)) continue;
        if (s.python_busy.load(std::memory_order_relaxed) == 0 &&
            s.connections.load(std::memory_order_relaxed) + 2 <= my_connections)
            return true;
    }
    return false;
}

std::string LoadBoard::render() const {
    struct Family {
        const char* name;
        const char* type;
        const char* help;
        std::uint64_t (*value)(const Slot&);
    };
    static const Family families[] = {
        {"gantry_worker_connections", "gauge", "Open connections, per worker.",
         [](const Slot& s) { return static_cast<std::uint64_t>(std::max(0, s.connections.load(std::memory_order_relaxed))); }},
        {"gantry_worker_python_busy", "gauge", "Requests queued for or running in the worker's Python threads.",
         [](const Slot& s) { return static_cast<std::uint64_t>(std::max(0, s.python_busy.load(std::memory_order_relaxed))); }},
        {"gantry_worker_connections_total", "counter", "Connections accepted by the worker since it started.",
         [](const Slot& s) { return s.connections_total.load(std::memory_order_relaxed); }},
        {"gantry_worker_requests_total", "counter", "Requests answered by the worker since it started.",
         [](const Slot& s) { return s.requests_total.load(std::memory_order_relaxed); }},
        {"gantry_worker_sent_away_total", "counter",
         "Connections the worker closed after a response to move their client to an idle worker.",
         [](const Slot& s) { return s.sent_away_total.load(std::memory_order_relaxed); }},
    };
    std::string out;
    for (const auto& f : families) {
        out += "# HELP ";
        out += f.name;
        out += ' ';
        out += f.help;
        out += "\n# TYPE ";
        out += f.name;
        out += ' ';
        out += f.type;
        out += '\n';
        for (int n = 0, used = slots_in_use(); n < used; ++n) {
            const Slot& s = segment_->slots[n];
            int pid = s.pid.load(std::memory_order_relaxed);
            if (pid == 0) continue;
            out += f.name;
            out += "{worker=\"" + std::to_string(n) + "\",pid=\"" + std::to_string(pid) + "\"} ";
            out += std::to_string(f.value(s));
            out += '\n';
        }
    }
    return out;
}

void LoadBoard::clear(int n) {
    Slot* s = slot(n);
    if (!s) return;
    s->pid.store(0, std::memory_order_relaxed);
    s->accepting.store(0, std::memory_order_relaxed);
    s->connections.store(0, std::memory_order_relaxed);
    s->python_busy.store(0, std::memory_order_relaxed);
}

}  // namespace gantry
