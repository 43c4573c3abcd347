#include "static/static_index.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "static/conditional.hpp"
#include "static/content_types.hpp"

namespace gantry {

namespace {

struct FoundFile {
    std::string path;  // canonical
    struct stat st;
};

bool under_root(const std::string& path, const std::string& root) {
    if (root == "/") return true;
    return path.size() > root.size() && path.compare(0, root.size(), root) == 0 && path[root.size()] == '/';
}

std::string canonical(const std::string& path) {
    char* resolved = ::realpath(path.c_str(), nullptr);
    if (!resolved) return {};
    std::string out(resolved);
    std::free(resolved);
    return out;
}

// Depth-first walk of `dir` (canonical, under `root`), adding regular files as `rel` names.
void walk(const std::string& root, const std::string& dir, const std::string& rel,
          std::set<std::string>& visited, std::vector<std::pair<std::string, FoundFile>>& out) {
    if (!visited.insert(dir).second) return;  // a symlink loop, or a directory reached twice
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
        spdlog::warn("static: cannot read directory {}: {}", dir, std::strerror(errno));
        return;
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;  // ".", "..", and dotfiles: never served
        names.emplace_back(e->d_name);
    }
    ::closedir(d);
    for (const auto& name : names) {
        std::string path = dir + "/" + name;
        std::string name_rel = rel.empty() ? name : rel + "/" + name;
        struct stat lst {};
        if (::lstat(path.c_str(), &lst) != 0) continue;  // vanished meanwhile
        std::string real = path;
        if (S_ISLNK(lst.st_mode)) {
            real = canonical(path);
            // A link that leaves the root (or dangles) is not ours to serve.
            if (real.empty() || !under_root(real, root)) continue;
        }
        struct stat st {};
        if (::stat(real.c_str(), &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            walk(root, real, name_rel, visited, out);
        } else if (S_ISREG(st.st_mode)) {
            out.push_back({name_rel, FoundFile{real, st}});
        }
    }
}

std::string etag_of(const struct stat& st) {
    char buf[64];
    int n = std::snprintf(buf, sizeof(buf), "\"%llx-%llx\"", static_cast<unsigned long long>(st.st_mtime),
                          static_cast<unsigned long long>(st.st_size));
    return std::string(buf, static_cast<std::size_t>(n));
}

std::shared_ptr<const std::string> read_whole(const std::string& path, std::uint64_t size) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return nullptr;
    auto bytes = std::make_shared<std::string>();
    bytes->resize(size);
    std::uint64_t got = 0;
    while (got < size) {
        ssize_t n = ::read(fd, bytes->data() + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
    if (got != size) return nullptr;  // changed while we read: go by sendfile instead
    return bytes;
}

}  // namespace

bool is_hashed_name(std::string_view name) {
    auto slash = name.rfind('/');
    if (slash != std::string_view::npos) name.remove_prefix(slash + 1);
    auto ext_dot = name.rfind('.');
    if (ext_dot == std::string_view::npos || ext_dot + 1 == name.size()) return false;
    std::string_view stem = name.substr(0, ext_dot);
    if (stem.size() < 14) return false;  // at least "x.<12 hex>"
    std::string_view hash = stem.substr(stem.size() - 12);
    if (stem[stem.size() - 13] != '.') return false;
    for (char c : hash)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

std::string normalize_url_prefix(std::string_view prefix) {
    std::string p(prefix);
    if (p.empty() || p.front() != '/') p.insert(p.begin(), '/');
    if (p.back() != '/') p.push_back('/');
    return p;
}

std::shared_ptr<const StaticSnapshot> StaticSnapshot::build(const StaticMountSpec& spec, const StaticMemoryLimits& limits) {
    auto snap = std::make_shared<StaticSnapshot>();
    // Every file under every source, first source first; a later source never replaces a name.
    std::unordered_map<std::string, FoundFile> found;
    std::vector<std::string> order;
    for (const auto& source : spec.sources) {
        std::string root = canonical(source.dir);
        if (root.empty()) {
            spdlog::warn("static: {} -> {}: {}", spec.url_prefix, source.dir, std::strerror(errno));
            continue;
        }
        std::vector<std::pair<std::string, FoundFile>> files;
        std::set<std::string> visited;
        walk(root, root, "", visited, files);
        std::string sub = source.sub_prefix;
        while (!sub.empty() && sub.back() == '/') sub.pop_back();
        while (!sub.empty() && sub.front() == '/') sub.erase(sub.begin());
        for (auto& [rel, file] : files) {
            std::string name = sub.empty() ? rel : sub + "/" + rel;
            if (found.emplace(name, std::move(file)).second) order.push_back(std::move(name));
        }
    }

    static const std::pair<const char*, const char*> kSiblings[] = {{".br", "br"}, {".zst", "zstd"}, {".gz", "gzip"}};
    std::uint64_t memory = 0;
    auto make_variant = [&](std::string encoding, const FoundFile& f) {
        StaticVariant v;
        v.encoding = std::move(encoding);
        v.path = f.path;
        v.size = static_cast<std::uint64_t>(f.st.st_size);
        v.mtime = f.st.st_mtime;
        v.etag = etag_of(f.st);
        v.last_modified = format_http_date(f.st.st_mtime);
        if (v.size <= limits.file_max && memory + v.size <= limits.budget) {
            v.bytes = read_whole(v.path, v.size);
            if (v.bytes) memory += v.size;
        }
        return v;
    };
    for (const auto& name : order) {
        const FoundFile& f = found.at(name);
        StaticFile file;
        ContentType type = content_type_for(name);
        file.content_type = std::move(type.value);
        file.immutable = is_hashed_name(name);
        file.variants.push_back(make_variant("", f));
        for (const auto& [suffix, encoding] : kSiblings) {
            auto sibling = found.find(name + suffix);
            if (sibling != found.end()) file.variants.push_back(make_variant(encoding, sibling->second));
        }
        snap->files_.emplace(name, std::move(file));
    }
    snap->memory_bytes_ = memory;
    return snap;
}

StaticIndex::StaticIndex(StaticMountSpec spec, StaticMemoryLimits limits, bool watched)
    : spec_(std::move(spec)), limits_(limits), watched_(watched) {
    spec_.url_prefix = normalize_url_prefix(spec_.url_prefix);
    snapshot_ = StaticSnapshot::build(spec_, limits_);
}

void StaticIndex::rebuild() {
    if (!watched_) return;
    auto fresh = StaticSnapshot::build(spec_, limits_);
    std::lock_guard lock(mutex_);
    snapshot_ = std::move(fresh);
}

}  // namespace gantry
