#include "server/source_watcher.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <dirent.h>
#include <fnmatch.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/logging.hpp"

namespace gantry {

namespace {

// A file written in place ends with CLOSE_WRITE; an editor that saves by rename (vim, JetBrains,
// sed -i) ends with MOVED_TO; CREATE, DELETE and MOVED_FROM are files appearing and going away.
constexpr std::uint32_t kWatchMask =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ONLYDIR | IN_EXCL_UNLINK;

std::vector<std::string_view> components(std::string_view path) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t slash = path.find('/', start);
        if (slash == std::string_view::npos) slash = path.size();
        if (slash > start) parts.push_back(path.substr(start, slash - start));
        start = slash + 1;
    }
    return parts;
}

std::string absolute(const std::string& path) {
    char* resolved = ::realpath(path.c_str(), nullptr);
    if (!resolved) return path;
    std::string out(resolved);
    std::free(resolved);
    return out;
}

bool is_directory(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

bool glob_matches_path(std::string_view glob, std::string_view path) {
    auto pattern = components(glob);
    auto parts = components(path);
    if (pattern.empty() || pattern.size() > parts.size()) return false;
    // An absolute glob matches the whole path; a relative one its last components.
    if (!glob.empty() && glob.front() == '/' && pattern.size() != parts.size()) return false;
    std::size_t offset = parts.size() - pattern.size();
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        std::string p(pattern[i]), name(parts[offset + i]);
        if (::fnmatch(p.c_str(), name.c_str(), 0) != 0) return false;
    }
    return true;
}

bool is_installed_code(const std::string& path) {
    for (auto part : components(path))
        if (part == "site-packages" || part == "dist-packages") return true;
    struct stat st {};
    return ::stat((path + "/pyvenv.cfg").c_str(), &st) == 0;
}

SourceFilter::SourceFilter(const std::vector<std::string>& includes, const std::vector<std::string>& excludes) {
    includes_ = kReloadIncludes;
    for (const auto& i : includes)
        if (std::find(includes_.begin(), includes_.end(), i) == includes_.end()) includes_.push_back(i);
    for (const auto& e : kReloadExcludes)
        if (std::find(includes.begin(), includes.end(), e) == includes.end()) excludes_.push_back(e);
    for (const auto& e : excludes)
        if (std::find(excludes_.begin(), excludes_.end(), e) == excludes_.end()) excludes_.push_back(e);
}

bool SourceFilter::is_source(std::string_view path) const {
    auto matches = [&](const std::string& glob) { return glob_matches_path(glob, path); };
    return std::any_of(includes_.begin(), includes_.end(), matches) &&
           std::none_of(excludes_.begin(), excludes_.end(), matches);
}

bool SourceFilter::skips_directory(std::string_view path) const {
    auto parts = components(path);
    if (parts.empty()) return false;
    auto name = parts.back();
    if (name == "__pycache__" || name == "site-packages" || name == "dist-packages") return true;
    return std::any_of(excludes_.begin(), excludes_.end(),
                       [&](const std::string& glob) { return glob_matches_path(glob, path); });
}

SourceWatchSettings reload_watch_settings(const Config& config) {
    SourceWatchSettings s;
    std::vector<std::string> dirs = config.reload_dirs;
    if (dirs.empty()) dirs.push_back(config.chdir.empty() ? "." : config.chdir);
    for (const auto& d : dirs) {
        std::string dir = absolute(d);
        if (!is_directory(dir)) throw ConfigError("--reload-dir " + d + ": not a directory");
        if (is_installed_code(dir)) {
            error_log().warn("--reload: not watching {}: installed packages or a virtualenv are not the app's code", dir);
            continue;
        }
        s.dirs.push_back(std::move(dir));
    }
    if (s.dirs.empty()) throw ConfigError("--reload: no directory left to watch");
    for (const auto& f : config.reload_extra_files) s.extra_files.push_back(f.front() == '/' ? f : absolute(".") + "/" + f);
    s.includes = config.reload_includes;
    s.excludes = config.reload_excludes;
    return s;
}

SourceWatcher::SourceWatcher(SourceWatchSettings settings)
    : settings_(std::move(settings)), filter_(settings_.includes, settings_.excludes) {
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error(std::string("inotify_init1: ") + std::strerror(errno));
    for (const auto& dir : settings_.dirs) watch_tree(dir);
    for (const auto& file : settings_.extra_files) {
        auto slash = file.rfind('/');
        std::string dir = absolute(slash == 0 ? "/" : file.substr(0, slash)), name = file.substr(slash + 1);
        // The directory, not the file: a save by rename replaces the file's inode.
        if (Watch* w = add_watch(dir)) w->extra.insert(name);
    }
}

SourceWatcher::~SourceWatcher() {
    if (fd_ >= 0) ::close(fd_);
}

SourceWatcher::Watch* SourceWatcher::add_watch(const std::string& dir) {
    int wd = ::inotify_add_watch(fd_, dir.c_str(), kWatchMask);
    if (wd < 0) {
        if (errno == ENOSPC)
            error_log().warn("--reload: cannot watch {}: the inotify watch limit is reached "
                             "(raise fs.inotify.max_user_watches, or narrow --reload-dir)", dir);
        else if (errno != ENOENT)
            error_log().warn("--reload: cannot watch {}: {}", dir, std::strerror(errno));
        return nullptr;
    }
    Watch& w = watches_[wd];  // the same directory added twice is the same descriptor
    w.dir = dir;
    return &w;
}

bool SourceWatcher::watch_tree(const std::string& dir) {
    if (is_installed_code(dir)) return false;  // a virtualenv inside the project
    Watch* w = add_watch(dir);
    if (!w) return false;
    w->tree = true;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return false;
    bool saw_source = false;
    std::vector<std::string> subdirs;
    while (dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        std::string path = dir + "/" + e->d_name;
        // lstat: a symbolic link to a directory is not followed (it could loop, or leave the project).
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if (!filter_.skips_directory(path)) subdirs.push_back(std::move(path));
        } else if (filter_.is_source(path)) {
            saw_source = true;
        }
    }
    ::closedir(d);
    for (const auto& s : subdirs) saw_source = watch_tree(s) || saw_source;
    return saw_source;
}

void SourceWatcher::changed(std::string path, Clock::time_point now) {
    if (!first_change_) {
        first_change_ = std::move(path);
        first_at_ = now;
    }
    last_at_ = now;
}

void SourceWatcher::read_events(Clock::time_point now) {
    alignas(inotify_event) char buffer[16 * 1024];
    for (;;) {
        ssize_t got = ::read(fd_, buffer, sizeof(buffer));
        if (got <= 0) return;  // EAGAIN: drained
        for (char* p = buffer; p < buffer + got;) {
            const auto* ev = reinterpret_cast<const inotify_event*>(p);
            p += sizeof(inotify_event) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                // Events were lost: count it as a change and pick up any new directory.
                changed("(more changes than inotify could queue)", now);
                for (const auto& dir : settings_.dirs) watch_tree(dir);
                continue;
            }
            auto it = watches_.find(ev->wd);
            if (it == watches_.end()) continue;
            if (ev->mask & IN_IGNORED) {  // its directory is gone
                watches_.erase(it);
                continue;
            }
            const Watch& w = it->second;
            std::string name = ev->len ? std::string(ev->name) : std::string();
            std::string path = w.dir + "/" + name;
            if (ev->mask & IN_ISDIR) {
                if (!w.tree || filter_.skips_directory(path)) continue;
                if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
                    // Files may have landed in it before its watch existed (git checkout, mv).
                    if (watch_tree(path)) changed(path, now);
                } else if (ev->mask & IN_MOVED_FROM) {
                    // A package renamed away: its modules are gone. (A deleted one's files were
                    // reported one by one.) Its watches would go on naming the old paths.
                    for (auto i = watches_.begin(); i != watches_.end();) {
                        const std::string& d = i->second.dir;
                        bool under = d == path || (d.size() > path.size() && d.compare(0, path.size() + 1, path + "/") == 0);
                        if (under) {
                            ::inotify_rm_watch(fd_, i->first);
                            i = watches_.erase(i);
                        } else {
                            ++i;
                        }
                    }
                    changed(path, now);
                }
                continue;
            }
            if (w.extra.count(name) || (w.tree && filter_.is_source(path))) changed(path, now);
        }
    }
}

std::optional<std::string> SourceWatcher::settled(Clock::time_point now) {
    if (!first_change_) return std::nullopt;
    if (now - last_at_ < settings_.quiet && now - first_at_ < settings_.longest_wait) return std::nullopt;
    std::optional<std::string> out = std::move(first_change_);
    first_change_.reset();
    return out;
}

std::optional<std::chrono::milliseconds> SourceWatcher::time_to_settle(Clock::time_point now) const {
    if (!first_change_) return std::nullopt;
    auto left = std::min(settings_.quiet - (now - last_at_), settings_.longest_wait - (now - first_at_));
    if (left <= Clock::duration::zero()) return std::chrono::milliseconds(0);
    return std::chrono::ceil<std::chrono::milliseconds>(left);
}

}  // namespace gantry
