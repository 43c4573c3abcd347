#include "cache/shared_store.hpp"

#include <pthread.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <random>
#include <system_error>

#include <boost/interprocess/indexes/iset_index.hpp>
#include <boost/interprocess/managed_external_buffer.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/offset_ptr.hpp>
#include <boost/interprocess/sync/mutex_family.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/intrusive/unordered_set.hpp>

namespace gantry {

namespace {

namespace bi = boost::interprocess;
namespace bn = boost::intrusive;

using VoidPtr = bi::offset_ptr<void>;
using IndexHook = bn::unordered_set_base_hook<bn::void_pointer<VoidPtr>, bn::store_hash<true>>;
using LruHook = bn::list_base_hook<bn::void_pointer<VoidPtr>>;

// One stored key and value, in a single allocation: the header, then the key's bytes, then the value's.
struct Entry : IndexHook, LruHook {
    std::size_t hash;
    std::uint32_t key_len;
    std::uint32_t value_len;
    std::uint32_t flags;
    std::int64_t expires_ns;  // steady clock; 0 = never

    char* key_data() { return reinterpret_cast<char*>(this + 1); }
    const char* key_data() const { return reinterpret_cast<const char*>(this + 1); }
    std::string_view key() const { return {key_data(), key_len}; }
    std::string_view value() const { return {key_data() + key_len, value_len}; }
    std::size_t footprint() const { return sizeof(Entry) + key_len + value_len; }
};

struct EntryHash {
    std::size_t operator()(const Entry& e) const { return e.hash; }
    std::size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
};
struct EntryEqual {
    bool operator()(const Entry& a, const Entry& b) const { return a.key() == b.key(); }
    bool operator()(std::string_view key, const Entry& e) const { return key == e.key(); }
};

using Index = bn::unordered_set<Entry, bn::hash<EntryHash>, bn::equal<EntryEqual>, bn::constant_time_size<true>,
                                bn::power_2_buckets<true>>;
using Lru = bn::list<Entry, bn::constant_time_size<false>>;  // front: most recently used
// The store's own robust mutex guards every use, so the allocator needs none of its own (one it
// held when a worker died would never be released).
using Heap = bi::basic_managed_external_buffer<char, bi::rbtree_best_fit<bi::null_mutex_family, VoidPtr>, bi::iset_index>;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(SharedStore::Clock::now().time_since_epoch()).count();
}

std::int64_t expiry_from(SharedStore::Ttl ttl) {
    if (!ttl) return 0;
    return now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(*ttl).count();  // a TTL of 0 or less: expired at once
}

bool expired(const Entry& e, std::int64_t now) { return e.expires_ns != 0 && e.expires_ns <= now; }

constexpr std::size_t kAlign = 64;
std::size_t align_up(std::size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

// The start of the mapping. Everything in it is reached through plain pointers: the mapping is
// made before the fork, so it sits at the same address in every process of the server.
struct SharedStore::Region {
    pthread_mutex_t mutex;
    SharedStoreStats stats;  // capacity, hits, misses, evictions, wipes; entries/bytes from the index
    std::atomic<std::uint64_t> generation{0};  // outside the mutex: see SharedStore::generation
    std::size_t heap_bytes;
    Heap* heap;
    Index* index;
    Lru* lru;
    alignas(Heap) unsigned char heap_handle[sizeof(Heap)];

    unsigned char* heap_start() { return reinterpret_cast<unsigned char*>(this) + align_up(sizeof(Region)); }

    // Builds an empty store over the heap, whatever was there.
    void reset() {
        heap = new (heap_handle) Heap(bi::create_only, heap_start(), heap_bytes);
        std::size_t buckets = 64;
        while (buckets * 2048 < heap_bytes) buckets *= 2;  // ~one bucket per 2 KiB of budget
        auto* bucket_array = static_cast<Index::bucket_type*>(heap->allocate(buckets * sizeof(Index::bucket_type)));
        for (std::size_t i = 0; i < buckets; ++i) new (&bucket_array[i]) Index::bucket_type();
        index = new (heap->allocate(sizeof(Index))) Index(Index::bucket_traits(bucket_array, buckets));
        lru = new (heap->allocate(sizeof(Lru))) Lru();
        stats.entries = 0;
        stats.bytes_used = 0;
    }

    Entry* find(std::string_view key) {
        auto it = index->find(key, EntryHash{}, EntryEqual{});
        return it == index->end() ? nullptr : &*it;
    }

    void remove(Entry* e) {
        index->erase(index->iterator_to(*e));
        lru->erase(lru->iterator_to(*e));
        stats.entries -= 1;
        stats.bytes_used -= e->footprint();
        e->~Entry();
        heap->deallocate(e);
    }

    // Allocates a new entry, evicting from the cold end until it fits. nullptr if it cannot.
    Entry* insert(std::string_view key, std::string_view value, std::uint32_t flags, std::int64_t expires_ns) {
        std::size_t bytes = sizeof(Entry) + key.size() + value.size();
        void* memory = heap->allocate(bytes, std::nothrow);
        while (!memory && !lru->empty()) {
            remove(&lru->back());
            stats.evictions += 1;
            memory = heap->allocate(bytes, std::nothrow);
        }
        if (!memory) return nullptr;
        auto* e = new (memory) Entry();
        e->hash = EntryHash{}(key);
        e->key_len = static_cast<std::uint32_t>(key.size());
        e->value_len = static_cast<std::uint32_t>(value.size());
        e->flags = flags;
        e->expires_ns = expires_ns;
        // An empty view may have a null data(): memcpy's pointers must not be null even for 0 bytes.
        if (!key.empty()) std::memcpy(e->key_data(), key.data(), key.size());
        if (!value.empty()) std::memcpy(e->key_data() + key.size(), value.data(), value.size());
        index->insert(*e);
        lru->push_front(*e);
        stats.entries += 1;
        stats.bytes_used += e->footprint();
        return e;
    }

    // The live entry for `key`, or nullptr; an expired one is removed on the way.
    Entry* live(std::string_view key, std::int64_t now) {
        Entry* e = find(key);
        if (e && expired(*e, now)) {
            remove(e);
            return nullptr;
        }
        return e;
    }
};

class SharedStore::Guard {
public:
    explicit Guard(Region& region) : region_(region) {
        int rc = ::pthread_mutex_lock(&region_.mutex);
        if (rc == EOWNERDEAD) {
            // The holder died, maybe mid-update: start over rather than trust the structure.
            region_.reset();
            region_.stats.wipes += 1;
            ::pthread_mutex_consistent(&region_.mutex);
        } else if (rc != 0) {
            throw std::system_error(rc, std::generic_category(), "shared cache lock");
        }
    }
    ~Guard() { ::pthread_mutex_unlock(&region_.mutex); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

private:
    Region& region_;
};

SharedStore::SharedStore(std::size_t capacity_bytes) {
    if (capacity_bytes < (64u << 10)) capacity_bytes = 64u << 10;
    mapped_ = capacity_bytes;
    // MAP_NORESERVE: pages cost memory only once the cache fills them.
    void* memory = ::mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap of the shared cache");
    region_ = new (memory) Region();
    pthread_mutexattr_t attr;
    ::pthread_mutexattr_init(&attr);
    ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    ::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    ::pthread_mutex_init(&region_->mutex, &attr);
    ::pthread_mutexattr_destroy(&attr);
    region_->heap_bytes = mapped_ - align_up(sizeof(Region));
    region_->stats.capacity = mapped_;
    region_->reset();
    std::random_device entropy;
    id_ = (static_cast<std::uint64_t>(entropy()) << 32) ^ entropy();
}

SharedStore::~SharedStore() { ::munmap(region_, mapped_); }

std::uint64_t SharedStore::generation() const { return region_->generation.load(std::memory_order_acquire); }

void SharedStore::advance_generation() { region_->generation.fetch_add(1, std::memory_order_acq_rel); }

bool SharedStore::get_into(std::string_view key, Value& out) {
    Guard guard(*region_);
    Entry* e = region_->live(key, now_ns());
    if (!e) {
        region_->stats.misses += 1;
        return false;
    }
    region_->stats.hits += 1;
    region_->lru->erase(region_->lru->iterator_to(*e));
    region_->lru->push_front(*e);
    out.bytes.assign(e->value());
    out.flags = e->flags;
    out.expires.reset();
    if (e->expires_ns) out.expires = Clock::time_point(std::chrono::nanoseconds(e->expires_ns));
    return true;
}

std::optional<SharedStore::Value> SharedStore::get(std::string_view key) {
    Value v;
    if (!get_into(key, v)) return std::nullopt;
    return v;
}

bool SharedStore::contains(std::string_view key) {
    Guard guard(*region_);
    return region_->live(key, now_ns()) != nullptr;
}

bool SharedStore::set(std::string_view key, std::string_view value, std::uint32_t flags, Ttl ttl) {
    std::size_t bytes = sizeof(Entry) + key.size() + value.size();
    Guard guard(*region_);
    if (Entry* old = region_->find(key)) region_->remove(old);
    if (bytes > region_->heap_bytes / 8 || key.size() > std::numeric_limits<std::uint32_t>::max()) return false;
    return region_->insert(key, value, flags, expiry_from(ttl)) != nullptr;
}

bool SharedStore::add(std::string_view key, std::string_view value, std::uint32_t flags, Ttl ttl) {
    std::size_t bytes = sizeof(Entry) + key.size() + value.size();
    Guard guard(*region_);
    if (region_->live(key, now_ns())) return false;
    if (bytes > region_->heap_bytes / 8) return false;
    return region_->insert(key, value, flags, expiry_from(ttl)) != nullptr;
}

bool SharedStore::erase(std::string_view key) {
    Guard guard(*region_);
    Entry* e = region_->live(key, now_ns());
    if (!e) return false;
    region_->remove(e);
    return true;
}

bool SharedStore::touch(std::string_view key, Ttl ttl) {
    Guard guard(*region_);
    Entry* e = region_->live(key, now_ns());
    if (!e) return false;
    e->expires_ns = expiry_from(ttl);
    return true;
}

std::optional<std::int64_t> SharedStore::incr(std::string_view key, std::int64_t delta) {
    Guard guard(*region_);
    Entry* e = region_->live(key, now_ns());
    if (!e) return std::nullopt;
    std::string_view text = e->value();
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
    std::int64_t result;
    if (__builtin_add_overflow(n, delta, &result)) return std::nullopt;
    char buf[24];
    auto [out_end, out_ec] = std::to_chars(buf, buf + sizeof buf, result);
    std::string_view next(buf, static_cast<std::size_t>(out_end - buf));
    if (next.size() <= e->value_len) {  // in place (the entry just keeps a few spare bytes)
        region_->stats.bytes_used -= e->value_len - next.size();
        std::memcpy(e->key_data() + e->key_len, next.data(), next.size());
        e->value_len = static_cast<std::uint32_t>(next.size());
        return result;
    }
    std::uint32_t flags = e->flags;
    std::int64_t expires = e->expires_ns;
    std::string key_copy(key);
    region_->remove(e);
    if (!region_->insert(key_copy, next, flags, expires)) return std::nullopt;
    return result;
}

std::size_t SharedStore::erase_prefix(std::string_view prefix) {
    Guard guard(*region_);
    std::size_t removed = 0;
    for (auto it = region_->lru->begin(); it != region_->lru->end();) {
        Entry& e = *it++;
        if (e.key().substr(0, prefix.size()) == prefix) {
            region_->remove(&e);
            ++removed;
        }
    }
    return removed;
}

void SharedStore::clear() {
    Guard guard(*region_);
    region_->reset();
}

SharedStoreStats SharedStore::stats() {
    Guard guard(*region_);
    return region_->stats;
}

void SharedStore::lock_and_abandon_for_test() { ::pthread_mutex_lock(&region_->mutex); }

}  // namespace gantry
