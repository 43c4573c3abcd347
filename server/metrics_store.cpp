#include "server/metrics_store.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <new>
#include <stdexcept>
#include <system_error>
#include <type_traits>

#include <sys/mman.h>

namespace gantry {

namespace {

// A lock-free atomic is address-free, so it works across processes mapping the same pages; a
// lock-based one would use a process-local lock and silently lose increments.
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::int64_t>::is_always_lock_free);

// The le label of each bucket, as written in the exposition (same order as kBucketBoundsNs).
constexpr std::array<std::string_view, MetricsStore::kBuckets> kBucketLabels = {
    "0.00001", "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025",
    "0.005",   "0.01",    "0.025",  "0.05",    "0.1",    "0.25",  "0.5",
    "1",       "2.5",     "5",      "10",      "+Inf"};

constexpr std::array<std::string_view, 5> kStatusClasses = {"1xx", "2xx", "3xx", "4xx", "5xx"};

constexpr std::size_t kMaxStageNameLength = 128;

bool label_safe(std::string_view name) {
    if (name.empty() || name.size() > kMaxStageNameLength) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == ':' || c == '-';
    });
}

// Nanoseconds as decimal seconds, exactly (no binary floating point on the way).
void append_seconds(std::string& out, std::uint64_t ns) {
    char buf[48];
    int n = std::snprintf(buf, sizeof buf, "%llu.%09llu",
                          static_cast<unsigned long long>(ns / 1'000'000'000),
                          static_cast<unsigned long long>(ns % 1'000'000'000));
    out.append(buf, static_cast<std::size_t>(n));
}

void append_number(std::string& out, std::uint64_t v) { out += std::to_string(v); }

}  // namespace

// Only trivially destructible, fixed-size atomics: no pointers, identical meaning in every
// process. Each histogram gets its own cache lines so stages written by different workers at the
// same time do not contend.
struct MetricsStore::Segment {
    struct alignas(64) Histogram {
        // Per-bucket (not cumulative) counts: one increment per observation. The count of the
        // histogram is their total, so _count always equals the +Inf bucket in render().
        std::atomic<std::uint64_t> buckets[kBuckets];
        std::atomic<std::uint64_t> sum_ns;
    };
    Histogram stages[kMaxStages];
    alignas(64) std::atomic<std::uint64_t> responses[kStatusClasses.size()];
    std::atomic<std::int64_t> in_flight[kWorkerSlots];
    std::atomic<std::uint64_t> worker_restarts;
    std::atomic<std::int64_t> websocket_open[kWorkerSlots];
    alignas(64) std::atomic<std::uint64_t> websocket_messages[2];  // received, sent
    std::atomic<std::uint64_t> websocket_bytes[2];
};

std::unique_ptr<MetricsStore> MetricsStore::create(std::vector<std::string> stage_names) {
    // The segment is never destroyed, only unmapped: nothing may need a destructor.
    static_assert(std::is_trivially_destructible_v<Segment>);
    if (stage_names.size() > kMaxStages) {
        throw std::invalid_argument("metrics: " + std::to_string(stage_names.size()) +
                                    " stages, at most " + std::to_string(kMaxStages));
    }
    for (std::size_t i = 0; i < stage_names.size(); ++i) {
        const std::string& name = stage_names[i];
        if (!label_safe(name)) {
            throw std::invalid_argument("metrics: stage name \"" + name +
                                        "\" must be 1-128 characters of A-Z a-z 0-9 _ . : -");
        }
        if (std::find(stage_names.begin(), stage_names.begin() + static_cast<std::ptrdiff_t>(i),
                      name) != stage_names.begin() + static_cast<std::ptrdiff_t>(i)) {
            throw std::invalid_argument("metrics: stage name \"" + name + "\" given twice");
        }
    }
    // Anonymous shared pages come zeroed and stay shared with every child forked afterwards.
    void* p = ::mmap(nullptr, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
    if (p == MAP_FAILED) {
        throw std::system_error(errno, std::generic_category(), "metrics: mmap of shared segment");
    }
    auto* segment = new (p) Segment{};  // value-initialised: every atomic starts at 0
    return std::unique_ptr<MetricsStore>(new MetricsStore(std::move(stage_names), segment));
}

MetricsStore::MetricsStore(std::vector<std::string> names, Segment* segment) noexcept
    : names_(std::move(names)), segment_(segment) {}

MetricsStore::~MetricsStore() { ::munmap(segment_, sizeof(Segment)); }

std::size_t MetricsStore::stage_index(std::string_view name) const noexcept {
    auto it = std::find(names_.begin(), names_.end(), name);
    return it == names_.end() ? npos : static_cast<std::size_t>(it - names_.begin());
}

void MetricsStore::observe(std::size_t stage, std::chrono::nanoseconds d) noexcept {
    if (stage >= names_.size()) return;
    const std::uint64_t ns = d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0;
    // The bucket is the number of bounds below ns (le is inclusive): a fixed count of compares
    // without branches, which the compiler unrolls and vectorises.
    std::size_t bucket = 0;
    for (std::uint64_t bound : kBucketBoundsNs) bucket += static_cast<std::size_t>(ns > bound);
    Segment::Histogram& h = segment_->stages[stage];
    h.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
    h.sum_ns.fetch_add(ns, std::memory_order_relaxed);
}

void MetricsStore::count_response(int status) noexcept {
    if (status < 100 || status > 599) return;
    segment_->responses[static_cast<std::size_t>(status / 100 - 1)].fetch_add(
        1, std::memory_order_relaxed);
}

void MetricsStore::reset_worker_slot(std::size_t slot) noexcept {
    segment_->in_flight[slot % kWorkerSlots].store(0, std::memory_order_relaxed);
    segment_->websocket_open[slot % kWorkerSlots].store(0, std::memory_order_relaxed);
}

void MetricsStore::websocket_open_add(int delta) noexcept {
    segment_->websocket_open[slot_].fetch_add(delta, std::memory_order_relaxed);
}

void MetricsStore::count_websocket_received(std::uint64_t bytes) noexcept {
    segment_->websocket_messages[0].fetch_add(1, std::memory_order_relaxed);
    segment_->websocket_bytes[0].fetch_add(bytes, std::memory_order_relaxed);
}

void MetricsStore::count_websocket_sent(std::uint64_t bytes) noexcept {
    segment_->websocket_messages[1].fetch_add(1, std::memory_order_relaxed);
    segment_->websocket_bytes[1].fetch_add(bytes, std::memory_order_relaxed);
}

void MetricsStore::in_flight_add(int delta) noexcept {
    segment_->in_flight[slot_].fetch_add(delta, std::memory_order_relaxed);
}

void MetricsStore::count_worker_restart() noexcept {
    segment_->worker_restarts.fetch_add(1, std::memory_order_relaxed);
}

std::string MetricsStore::render() const {
    std::string out;
    out.reserve(256 + names_.size() * kBuckets * 72);

    out += "# HELP gantry_stage_duration_seconds Time spent in each stage of a request, all workers.\n"
           "# TYPE gantry_stage_duration_seconds histogram\n";
    for (std::size_t s = 0; s < names_.size(); ++s) {
        const Segment::Histogram& h = segment_->stages[s];
        // Cumulated from one pass over a snapshot, so the buckets never decrease and the +Inf
        // bucket equals _count even while workers keep observing.
        std::uint64_t cumulative = 0;
        for (std::size_t b = 0; b < kBuckets; ++b) {
            cumulative += h.buckets[b].load(std::memory_order_relaxed);
            out += "gantry_stage_duration_seconds_bucket{stage=\"";
            out += names_[s];
            out += "\",le=\"";
            out += kBucketLabels[b];
            out += "\"} ";
            append_number(out, cumulative);
            out += '\n';
        }
        out += "gantry_stage_duration_seconds_sum{stage=\"";
        out += names_[s];
        out += "\"} ";
        append_seconds(out, h.sum_ns.load(std::memory_order_relaxed));
        out += "\ngantry_stage_duration_seconds_count{stage=\"";
        out += names_[s];
        out += "\"} ";
        append_number(out, cumulative);
        out += '\n';
    }

    out += "# HELP gantry_requests_total Responses sent, by status class, all workers.\n"
           "# TYPE gantry_requests_total counter\n";
    for (std::size_t c = 0; c < kStatusClasses.size(); ++c) {
        out += "gantry_requests_total{status=\"";
        out += kStatusClasses[c];
        out += "\"} ";
        append_number(out, segment_->responses[c].load(std::memory_order_relaxed));
        out += '\n';
    }

    out += "# HELP gantry_requests_in_flight Requests being handled now, all workers.\n"
           "# TYPE gantry_requests_in_flight gauge\n"
           "gantry_requests_in_flight ";
    std::int64_t in_flight = 0;
    for (const auto& slot : segment_->in_flight) in_flight += slot.load(std::memory_order_relaxed);
    out += std::to_string(in_flight);
    out += '\n';

    out += "# HELP gantry_worker_restarts_total Workers the master started again after one ended.\n"
           "# TYPE gantry_worker_restarts_total counter\n"
           "gantry_worker_restarts_total ";
    append_number(out, segment_->worker_restarts.load(std::memory_order_relaxed));
    out += '\n';

    out += "# HELP gantry_websocket_connections WebSocket connections open now, all workers.\n"
           "# TYPE gantry_websocket_connections gauge\n"
           "gantry_websocket_connections ";
    std::int64_t open = 0;
    for (const auto& slot : segment_->websocket_open) open += slot.load(std::memory_order_relaxed);
    out += std::to_string(open);
    out += '\n';
    static constexpr std::string_view kDirections[] = {"received", "sent"};
    out += "# HELP gantry_websocket_messages_total WebSocket messages, by direction, all workers.\n"
           "# TYPE gantry_websocket_messages_total counter\n";
    for (std::size_t d = 0; d < 2; ++d) {
        out += "gantry_websocket_messages_total{direction=\"";
        out += kDirections[d];
        out += "\"} ";
        append_number(out, segment_->websocket_messages[d].load(std::memory_order_relaxed));
        out += '\n';
    }
    out += "# HELP gantry_websocket_bytes_total WebSocket message payload bytes, by direction, all workers.\n"
           "# TYPE gantry_websocket_bytes_total counter\n";
    for (std::size_t d = 0; d < 2; ++d) {
        out += "gantry_websocket_bytes_total{direction=\"";
        out += kDirections[d];
        out += "\"} ";
        append_number(out, segment_->websocket_bytes[d].load(std::memory_order_relaxed));
        out += '\n';
    }
    return out;
}

}  // namespace gantry
