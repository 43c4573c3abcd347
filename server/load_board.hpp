#pragma once
// How loaded each worker of a server is, in memory the master maps before it forks, so that every
// worker sees every other one. It is what spreads the work: a worker accepts a new connection
// only while its load is not above the least-loaded serving worker's (plus a small slack), and a
// worker whose Python queue backs up while another sits idle sends its busiest connection away
// (Connection: close), so the client reconnects to a less loaded worker.
//
// Without it the worker whose I/O thread wakes first takes every pending connection: its I/O
// thread is never busy with Python, so a burst of keep-alive connections can all land on one
// worker while the others idle.
//
// Fixed-size, lock-free atomics only: the mapping means the same in every process. Reads are
// racy snapshots; every decision made from them is a heuristic that tolerates being off by one.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace gantry {

class LoadBoard {
public:
    static constexpr int kSlots = 1024;  // worker numbers 0..kSlots-1 (as the ready board)

    struct alignas(64) Slot {             // one cache line per worker: no false sharing
        std::atomic<int> pid{0};           // 0: no worker serves from this slot
        std::atomic<int> accepting{0};     // 1 while its accept loops run (not draining)
        std::atomic<std::int32_t> connections{0};  // open connections
        std::atomic<std::int32_t> python_busy{0};  // calls queued for or running in Python
        std::atomic<std::uint64_t> connections_total{0};
        std::atomic<std::uint64_t> requests_total{0};
        std::atomic<std::uint64_t> sent_away_total{0};  // responses closed to rebalance
    };
    static_assert(std::atomic<std::int32_t>::is_always_lock_free && std::atomic<std::uint64_t>::is_always_lock_free);

    // Maps a zeroed shared segment. Call in the master before forking. Throws std::system_error.
    static std::unique_ptr<LoadBoard> create();
    ~LoadBoard();
    LoadBoard(const LoadBoard&) = delete;
    LoadBoard& operator=(const LoadBoard&) = delete;

    Slot* slot(int n) { return n >= 0 && n < kSlots ? &segment_->slots[n] : nullptr; }
    const Slot* slot(int n) const { return n >= 0 && n < kSlots ? &segment_->slots[n] : nullptr; }
    // The master, before forking worker `n`: its slot is taken (pid set by the worker itself).
    void open(int n);
    // How many slots may be in use (one past the highest opened): the scans stop there.
    int slots_in_use() const { return segment_->in_use.load(std::memory_order_relaxed); }

    // A worker's load as the balancing sees it: what it holds now plus what waits for its Python.
    static std::int64_t load_of(const Slot& s) {
        return s.connections.load(std::memory_order_relaxed) + s.python_busy.load(std::memory_order_relaxed);
    }
    // Whether worker `me` should accept a connection now: no other accepting worker has a load
    // more than `slack` below its own. True when `me` is the only accepting worker.
    bool may_accept(int me, std::int64_t slack = 1) const;
    // Whether some other accepting worker is idle (no call in Python) while holding at least two
    // connections fewer than `me`: the condition under which `me` sends a connection away (with
    // one fewer, moving a connection would only swap the two workers' places).
    bool other_worker_idle(int me) const;

    // Per worker, in Prometheus text format 0.0.4 (label worker = its number, pid): open
    // connections and calls in Python (gauges), connections, requests and connections sent
    // away to rebalance (counters, from the worker's start).
    std::string render() const;

    // The master, when a worker has gone: its slot no longer counts (its connections died with it).
    void clear(int n);

private:
    struct Segment {
        alignas(64) std::atomic<int> in_use{0};
        Slot slots[kSlots];
    };
    explicit LoadBoard(Segment* segment) : segment_(segment) {}
    Segment* segment_;
};

}  // namespace gantry
