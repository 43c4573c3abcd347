#pragma once
// The static files of one URL prefix, indexed once (at start, or again after a change when
// watched): for each file its size, mtime, ETag, Content-Type, whether its name is hashed
// (ManifestStaticFilesStorage: immutable), its precompressed siblings (.br, .zst, .gz), and the
// bytes of small files, held in memory and shared with the responses that send them.
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http/app_static_files.hpp"  // StaticSource

namespace gantry {

// What one URL prefix serves: sources in priority order (the first holding a name wins, as with
// Django's finders).
struct StaticMountSpec {
    std::string url_prefix;  // "/static/": always starts and ends with "/"
    std::vector<StaticSource> sources;
};

// Limits on what is held in memory (files above, or beyond the budget, go by sendfile(2)).
struct StaticMemoryLimits {
    std::uint64_t file_max = 256 * 1024;
    std::uint64_t budget = 64ull << 20;  // per mount, all encodings together
};

// One encoding of a file: the file itself or a precompressed sibling.
struct StaticVariant {
    std::string encoding;  // "" (identity), "br", "zstd", "gzip"
    std::string path;      // absolute, symlinks resolved (opened with O_NOFOLLOW)
    std::uint64_t size = 0;
    std::time_t mtime = 0;
    std::string etag;      // nginx's form: "\"<mtime hex>-<size hex>\""
    std::string last_modified;  // HTTP date of mtime
    std::shared_ptr<const std::string> bytes;  // the content when held in memory, else null
};

struct StaticFile {
    std::string content_type;
    bool immutable = false;                // hashed name: cached for a year
    std::vector<StaticVariant> variants;   // [0] is identity; then the precompressed ones
    const StaticVariant* variant(std::string_view encoding) const {
        for (const auto& v : variants)
            if (v.encoding == encoding) return &v;
        return nullptr;
    }
    bool has_encodings() const { return variants.size() > 1; }
};

// An immutable view of one prefix's files.
class StaticSnapshot {
public:
    const StaticFile* find(const std::string& name) const {
        auto it = files_.find(name);
        return it == files_.end() ? nullptr : &it->second;
    }
    std::size_t size() const { return files_.size(); }
    std::uint64_t memory_bytes() const { return memory_bytes_; }

    // Walks every source (symlinks followed only while they stay inside their source's root;
    // dotfiles and dot-directories skipped; unreadable entries skipped with a warning).
    static std::shared_ptr<const StaticSnapshot> build(const StaticMountSpec& spec, const StaticMemoryLimits& limits);

private:
    std::unordered_map<std::string, StaticFile> files_;
    std::uint64_t memory_bytes_ = 0;
};

// A prefix and its current snapshot. Unwatched: built once, read without a lock. Watched: the
// watcher rebuilds and swaps the snapshot while requests keep theirs alive.
class StaticIndex {
public:
    StaticIndex(StaticMountSpec spec, StaticMemoryLimits limits, bool watched);

    const std::string& url_prefix() const { return spec_.url_prefix; }
    const StaticMountSpec& spec() const { return spec_; }
    bool watched() const { return watched_; }

    std::shared_ptr<const StaticSnapshot> snapshot() const {
        if (!watched_) return snapshot_;
        std::lock_guard lock(mutex_);
        return snapshot_;
    }
    // The unwatched fast path: no reference count touched.
    const StaticSnapshot& fixed_snapshot() const { return *snapshot_; }
    // Re-reads the sources and swaps the snapshot (the watcher's thread); a no-op unless watched,
    // since an unwatched snapshot is read without the lock.
    void rebuild();

private:
    StaticMountSpec spec_;
    StaticMemoryLimits limits_;
    bool watched_;
    mutable std::mutex mutex_;
    std::shared_ptr<const StaticSnapshot> snapshot_;
};

// Whether a file name is hashed as Django's ManifestStaticFilesStorage writes it:
// "name.<12 hex>.ext" (e.g. "app.3f2a1b4c5d6e.js").
bool is_hashed_name(std::string_view name);

// "/static" -> "/static/"; "static/" -> "/static/"; "" or "/" -> "/".
std::string normalize_url_prefix(std::string_view prefix);

}  // namespace gantry
