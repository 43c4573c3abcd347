#include "static/static_watcher.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

namespace gantry {

namespace {
constexpr std::uint32_t kEvents = IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
                                  IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB | IN_MODIFY;
}

StaticWatcher::StaticWatcher(std::vector<std::string> dirs, std::function<void()> on_change)
    : dirs_(std::move(dirs)), on_change_(std::move(on_change)) {
    inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ < 0) throw std::runtime_error(std::string("inotify_init1: ") + std::strerror(errno));
    stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (stop_fd_ < 0) {
        ::close(inotify_fd_);
        throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
    }
    for (const auto& d : dirs_) watch_tree(d);
    thread_ = std::thread([this] { run(); });
}

StaticWatcher::~StaticWatcher() {
    std::uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof(one));
    if (thread_.joinable()) thread_.join();
    ::close(inotify_fd_);
    ::close(stop_fd_);
}

// inotify is not recursive: every directory gets its own watch (adding one twice is harmless).
void StaticWatcher::watch_tree(const std::string& dir) {
    if (::inotify_add_watch(inotify_fd_, dir.c_str(), kEvents) < 0) {
        if (errno != ENOENT) spdlog::warn("static: cannot watch {}: {}", dir, std::strerror(errno));
        return;
    }
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    std::vector<std::string> subdirs;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::string path = dir + "/" + e->d_name;
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) subdirs.push_back(std::move(path));
    }
    ::closedir(d);
    for (const auto& s : subdirs) watch_tree(s);
}

void StaticWatcher::run() {
    alignas(inotify_event) char buffer[16 * 1024];
    bool pending = false;
    for (;;) {
        pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
        // With a change pending, wait for 50 ms of quiet before rebuilding (an editor's save or a
        // collectstatic is many events).
        int n = ::poll(fds, 2, pending ? 50 : -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            spdlog::error("static: poll on inotify: {}", std::strerror(errno));
            return;
        }
        if (fds[0].revents) return;
        if (n == 0) {
            pending = false;
            // Directories created meanwhile (and their files) are watched before the rebuild reads them.
            for (const auto& d : dirs_) watch_tree(d);
            try {
                on_change_();
            } catch (const std::exception& e) {
                spdlog::error("static: re-indexing after a change failed: {}", e.what());
            }
            continue;
        }
        for (;;) {
            ssize_t got = ::read(inotify_fd_, buffer, sizeof(buffer));
            if (got <= 0) break;  // EAGAIN: drained
            pending = true;
        }
    }
}

}  // namespace gantry
