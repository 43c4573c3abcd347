#pragma once
// Prometheus metrics of one server, aggregated across all of its worker processes.
//
// The counters live in one anonymous MAP_SHARED mapping that the master creates BEFORE it forks
// the workers: every worker inherits the same pages, so an increment in any worker is seen by the
// master (which renders /metrics) and by every other worker. The mapping holds only fixed-size
// lock-free atomics and no pointers, so it means the same in every process.
//
// Hot path (observe, count_response, in_flight_add): no lock, no allocation, no system call;
// one or two relaxed atomic adds. Rendering (render) reads the atomics and allocates.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gantry {

class MetricsStore {
public:
    static constexpr std::size_t kMaxStages = 64;
    // Finite histogram upper bounds in nanoseconds (le, inclusive); a last +Inf bucket follows.
    static constexpr std::array<std::uint64_t, 18> kBucketBoundsNs = {
        10'000,          50'000,          100'000,        250'000,        500'000,
        1'000'000,       2'500'000,       5'000'000,      10'000'000,     25'000'000,
        50'000'000,      100'000'000,     250'000'000,    500'000'000,    1'000'000'000,
        2'500'000'000,   5'000'000'000,   10'000'000'000};
    static constexpr std::size_t kBuckets = kBucketBoundsNs.size() + 1;  // with +Inf
    // What stage_index returns for a name that is not a stage.
    static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();
    // The Content-Type of render()'s output (Prometheus text exposition format 0.0.4).
    static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

    // Maps a fresh, zeroed shared segment. Call in the master before forking the workers.
    // stage_names: at most kMaxStages, unique, each 1..128 characters of [A-Za-z0-9_.:-] (safe as
    // a Prometheus label value without escaping). Throws std::invalid_argument on a bad list,
    // std::system_error if the mapping fails.
    static std::unique_ptr<MetricsStore> create(std::vector<std::string> stage_names);

    ~MetricsStore();  // unmaps this process's view; other processes keep theirs
    MetricsStore(const MetricsStore&) = delete;
    MetricsStore& operator=(const MetricsStore&) = delete;

    // The index of a stage for observe(), or npos. Look indices up once, at start-up.
    std::size_t stage_index(std::string_view name) const noexcept;
    const std::vector<std::string>& stage_names() const noexcept { return names_; }

    // Adds one duration to a stage's histogram. A negative duration counts as 0; an index out of
    // range (npos included) is ignored.
    void observe(std::size_t stage, std::chrono::nanoseconds d) noexcept;
    // Counts one response by its class (1xx..5xx); a status outside 100..599 is ignored.
    void count_response(int status) noexcept;
    // The in-flight gauge: +1 when a request starts, -1 when its response is done. Each worker
    // counts in its own slot (set_worker_slot, after fork), so the master can forget the
    // requests of a worker that died mid-request (reset_worker_slot); the gauge is their sum.
    static constexpr std::size_t kWorkerSlots = 256;
    void set_worker_slot(std::size_t slot) noexcept { slot_ = slot % kWorkerSlots; }
    void in_flight_add(int delta) noexcept;
    void reset_worker_slot(std::size_t slot) noexcept;
    // WebSocket: the open-connections gauge (per worker slot, as in_flight) and the messages and
    // payload bytes each way.
    void websocket_open_add(int delta) noexcept;
    void count_websocket_received(std::uint64_t bytes) noexcept;
    void count_websocket_sent(std::uint64_t bytes) noexcept;
    // The master calls this each time it replaces a worker that died or was recycled.
    void count_worker_restart() noexcept;

    // Everything in Prometheus text format 0.0.4: gantry_stage_duration_seconds (histogram, label
    // stage), gantry_requests_total (counter, label status), gantry_requests_in_flight (gauge),
    // gantry_worker_restarts_total (counter), gantry_websocket_connections (gauge),
    // gantry_websocket_messages_total and gantry_websocket_bytes_total (counters, label direction).
    std::string render() const;

private:
    struct Segment;  // the shared layout, defined in the .cpp

    MetricsStore(std::vector<std::string> names, Segment* segment) noexcept;

    std::vector<std::string> names_;  // process-local copy; the segment holds no strings
    Segment* segment_;
    std::size_t slot_ = 0;            // this process's in-flight slot
};

}  // namespace gantry
