#include "static/static_watcher.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace gantry {
namespace {

namespace fs = std::filesystem;

// Waits (up to 10 s: a deadline for a hung test, not a speed claim) for the count to pass `n`.
bool wait_for(const std::atomic<int>& count, int n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (count.load() <= n) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

TEST(StaticWatcher, ReportsChangesInNewAndOldDirectories) {
    char tmpl[] = "/tmp/gantry-static-watch-XXXXXX";
    fs::path root = ::mkdtemp(tmpl);
    std::atomic<int> changes{0};
    {
        StaticWatcher watcher({root.string()}, [&] { ++changes; });
        std::ofstream(root / "a.css") << "a";
        ASSERT_TRUE(wait_for(changes, 0));
        int seen = changes.load();
        fs::create_directories(root / "sub");
        ASSERT_TRUE(wait_for(changes, seen));
        seen = changes.load();
        std::ofstream(root / "sub" / "b.css") << "b";  // the new directory is watched too
        ASSERT_TRUE(wait_for(changes, seen));
        seen = changes.load();
        fs::remove(root / "a.css");
        ASSERT_TRUE(wait_for(changes, seen));
    }  // the destructor stops the thread
    fs::remove_all(root);
}

}  // namespace
}  // namespace gantry
