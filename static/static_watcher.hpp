#pragma once
// Follows changes under some directories with inotify(7), on a thread of its own, and calls
// `on_change` once things have settled (50 ms without a new event). New subdirectories are
// watched as they appear. Dev mode (Django DEBUG, --static-watch) only: production indexes once.
#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace gantry {

class StaticWatcher {
public:
    // Throws std::runtime_error when inotify is unavailable.
    StaticWatcher(std::vector<std::string> dirs, std::function<void()> on_change);
    ~StaticWatcher();  // stops and joins the thread

    StaticWatcher(const StaticWatcher&) = delete;
    StaticWatcher& operator=(const StaticWatcher&) = delete;

private:
    void watch_tree(const std::string& dir);
    void run();

    std::vector<std::string> dirs_;
    std::function<void()> on_change_;
    int inotify_fd_ = -1;
    int stop_fd_ = -1;  // an eventfd: the destructor's wake-up
    std::thread thread_;
};

}  // namespace gantry
