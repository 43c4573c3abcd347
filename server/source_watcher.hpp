#pragma once
// --reload: which files are the app's source (SourceFilter), and a watcher that follows them with
// inotify(7) for the master (SourceWatcher). No thread of its own: the master polls fd() with its
// signal pipe, so nothing runs beside the master's loop while it forks workers.
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "server/config.hpp"

namespace gantry {

// uvicorn's defaults, plus the templates and compiled translations a Django app caches once
// loaded (Django 3.2 caches templates when DEBUG is off: a changed template needs a restart).
inline const std::vector<std::string> kReloadIncludes = {"*.py", "*.html", "*.mo"};
inline const std::vector<std::string> kReloadExcludes = {".*", ".py[cod]", ".sw.*", "~*"};

// The include/exclude globs. A glob matches a path from the right, one component per component,
// as Python's PurePath.match (uvicorn's): "*.py" matches any .py file at any depth,
// "templates/*.html" one directly in a templates directory.
class SourceFilter {
public:
    // The defaults above plus `includes` / `excludes`; a default exclude given as an include is
    // dropped (uvicorn's rule: --reload-include '.*' brings dotfiles back).
    SourceFilter(const std::vector<std::string>& includes, const std::vector<std::string>& excludes);

    // A file whose change restarts the workers: matches an include and no exclude.
    bool is_source(std::string_view path) const;
    // A directory never watched: one an exclude matches (.git, .venv, a user's "node_modules"),
    // __pycache__, site-packages and dist-packages (installed code is not the project's).
    bool skips_directory(std::string_view path) const;

    const std::vector<std::string>& includes() const { return includes_; }
    const std::vector<std::string>& excludes() const { return excludes_; }

private:
    std::vector<std::string> includes_, excludes_;
};

// Whether `glob` matches `path` the way PurePath(path).match(glob) does.
bool glob_matches_path(std::string_view glob, std::string_view path);

// Whether a path lies in installed packages (a site-packages or dist-packages component) or is a
// virtualenv (a directory holding pyvenv.cfg).
bool is_installed_code(const std::string& path);

struct SourceWatchSettings {
    std::vector<std::string> dirs;         // each watched with its subdirectories
    std::vector<std::string> extra_files;  // watched whatever their names say (--reload-extra-file)
    std::vector<std::string> includes, excludes;  // beyond the defaults
    // A save is many events (write, rename, a backup file): the workers restart once the
    // events have been quiet this long, or this long after the first at the latest.
    std::chrono::milliseconds quiet{100};
    std::chrono::milliseconds longest_wait{1000};
};

// --reload's settings from the config: --reload-dir, else --chdir, else the current directory;
// directories inside installed code are dropped (logged). Throws ConfigError when none is left.
SourceWatchSettings reload_watch_settings(const Config& config);

class SourceWatcher {
public:
    using Clock = std::chrono::steady_clock;

    // Watches every directory now (a walk of the trees). Throws std::runtime_error when inotify
    // cannot be used at all; a directory that cannot be watched is logged and skipped.
    explicit SourceWatcher(SourceWatchSettings settings);
    ~SourceWatcher();
    SourceWatcher(const SourceWatcher&) = delete;
    SourceWatcher& operator=(const SourceWatcher&) = delete;

    // Readable when inotify has events: give it to poll(2), then call read_events().
    int fd() const { return fd_; }
    // Takes the pending events (never blocks): a change to a source file starts or extends the
    // quiet period; a new directory is watched with everything under it.
    void read_events(Clock::time_point now);
    // Once the changes have settled: the first file changed since the last answer, then nothing
    // until the next change.
    std::optional<std::string> settled(Clock::time_point now);
    // How long until settled() can answer; nullopt when no change is pending.
    std::optional<std::chrono::milliseconds> time_to_settle(Clock::time_point now) const;

    std::size_t watched_directories() const { return watches_.size(); }
    const SourceWatchSettings& settings() const { return settings_; }
    const SourceFilter& filter() const { return filter_; }

private:
    struct Watch {
        std::string dir;
        bool tree = false;              // a directory of the source trees (not only an extra file's)
        std::set<std::string> extra;    // names of --reload-extra-file files in it
    };
    // Adds `dir` and its subdirectories; true if a source file was seen in them.
    bool watch_tree(const std::string& dir);
    Watch* add_watch(const std::string& dir);
    void changed(std::string path, Clock::time_point now);

    SourceWatchSettings settings_;
    SourceFilter filter_;
    int fd_ = -1;
    std::map<int, Watch> watches_;  // by inotify watch descriptor
    std::optional<std::string> first_change_;
    Clock::time_point first_at_{}, last_at_{};
};

}  // namespace gantry
