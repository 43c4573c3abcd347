#include "server/source_watcher.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <poll.h>
#include <unistd.h>

namespace gantry {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

TEST(GlobMatchesPath, MatchesFromTheRightOneComponentEach) {
    EXPECT_TRUE(glob_matches_path("*.py", "/srv/app/shop/views.py"));
    EXPECT_TRUE(glob_matches_path("*.py", "views.py"));
    EXPECT_FALSE(glob_matches_path("*.py", "/srv/app/views.pyc"));
    EXPECT_FALSE(glob_matches_path("*.py", "/srv/app/views.py/x"));
    EXPECT_TRUE(glob_matches_path("templates/*.html", "/srv/app/shop/templates/list.html"));
    EXPECT_FALSE(glob_matches_path("templates/*.html", "/srv/app/shop/list.html"));
    EXPECT_TRUE(glob_matches_path(".*", "/srv/app/.git"));
    EXPECT_TRUE(glob_matches_path(".sw.*", "/srv/app/.sw.x"));
    EXPECT_TRUE(glob_matches_path("~*", "/srv/app/~views.py"));
    EXPECT_TRUE(glob_matches_path("/srv/*/x.py", "/srv/app/x.py"));
    EXPECT_FALSE(glob_matches_path("/app/x.py", "/srv/app/x.py")) << "an absolute glob is the whole path";
    EXPECT_FALSE(glob_matches_path("", "/srv/app/x.py"));
}

TEST(SourceFilter, DefaultsArePythonTemplatesAndTranslationsWithoutDotfilesOrBackups) {
    SourceFilter f({}, {});
    EXPECT_TRUE(f.is_source("/p/shop/views.py"));
    EXPECT_TRUE(f.is_source("/p/shop/templates/shop/list.html"));
    EXPECT_TRUE(f.is_source("/p/locale/fr/LC_MESSAGES/django.mo"));
    EXPECT_FALSE(f.is_source("/p/shop/views.pyc"));
    EXPECT_FALSE(f.is_source("/p/shop/.views.py.swp"));
    EXPECT_FALSE(f.is_source("/p/shop/.#views.py")) << "emacs' lock file";
    EXPECT_FALSE(f.is_source("/p/shop/~views.py"));
    EXPECT_FALSE(f.is_source("/p/shop/static/shop/style.css")) << "static files are followed by the static index";
    EXPECT_FALSE(f.is_source("/p/db.sqlite3"));
}

TEST(SourceFilter, IncludesAndExcludesAddToTheDefaults) {
    SourceFilter f({"*.css", "*.toml"}, {"*_test.py", "generated"});
    EXPECT_TRUE(f.is_source("/p/shop/static/style.css"));
    EXPECT_TRUE(f.is_source("/p/pyproject.toml"));
    EXPECT_TRUE(f.is_source("/p/views.py"));
    EXPECT_FALSE(f.is_source("/p/views_test.py"));
    EXPECT_FALSE(f.is_source("/p/.hidden.css"));
    EXPECT_TRUE(f.skips_directory("/p/generated"));
    EXPECT_FALSE(f.skips_directory("/p/shop"));
}

TEST(SourceFilter, ADefaultExcludeGivenAsAnIncludeIsDropped) {
    SourceFilter f({".*"}, {});
    EXPECT_TRUE(f.is_source("/p/.env"));
    EXPECT_FALSE(f.skips_directory("/p/.config"));
    EXPECT_TRUE(SourceFilter({}, {}).skips_directory("/p/.config"));
}

TEST(SourceFilter, SkipsCachesInstalledPackagesAndExcludedDirectories) {
    SourceFilter f({}, {});
    EXPECT_TRUE(f.skips_directory("/p/.git"));
    EXPECT_TRUE(f.skips_directory("/p/.venv"));
    EXPECT_TRUE(f.skips_directory("/p/shop/__pycache__"));
    EXPECT_TRUE(f.skips_directory("/p/env/lib/python3.11/site-packages"));
    EXPECT_TRUE(f.skips_directory("/usr/lib/python3/dist-packages"));
    EXPECT_FALSE(f.skips_directory("/p/shop/templates"));
}

class SourceWatcherTest : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() /
                ("gantry_source_watcher_" + std::to_string(::getpid()) + "_" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(root_);
        for (const char* d : {"shop", "shop/templates", ".git", "shop/__pycache__", "venv/lib"}) fs::create_directories(root_ / d);
        write("app.py", "x = 1\n");
        write("shop/views.py", "x = 1\n");
        write("venv/pyvenv.cfg", "home = /usr/bin\n");
        write("venv/lib/dep.py", "x = 1\n");
    }
    void TearDown() override { fs::remove_all(root_); }

    void write(const std::string& rel, const std::string& text) { std::ofstream(root_ / rel) << text; }
    std::string path(const std::string& rel) const { return (root_ / rel).string(); }

    SourceWatchSettings settings() const {
        SourceWatchSettings s;
        s.dirs = {root_.string()};
        return s;
    }
    // inotify queues an event within the system call that caused it: no waiting is needed; the
    // poll only proves the descriptor says so.
    static bool readable(const SourceWatcher& w) {
        pollfd p{w.fd(), POLLIN, 0};
        return ::poll(&p, 1, 0) == 1;
    }

    fs::path root_;
    const SourceWatcher::Clock::time_point t0_ = SourceWatcher::Clock::now();
};

TEST_F(SourceWatcherTest, WatchesTheTreeButNotDotDirsCachesOrVirtualenvs) {
    SourceWatcher w(settings());
    EXPECT_EQ(w.watched_directories(), 3u) << "the root, shop and shop/templates";
    write(".git/hook.py", "x\n");
    write("shop/__pycache__/views.cpython-311.py", "x\n");
    write("venv/lib/dep.py", "x = 2\n");
    EXPECT_FALSE(readable(w));
    w.read_events(t0_);
    EXPECT_FALSE(w.time_to_settle(t0_));
}

TEST_F(SourceWatcherTest, ASaveSettlesOnceQuietAndNamesTheFile) {
    SourceWatcher w(settings());
    write("shop/views.py", "x = 2\n");
    ASSERT_TRUE(readable(w));
    w.read_events(t0_);
    ASSERT_TRUE(w.time_to_settle(t0_));
    EXPECT_EQ(*w.time_to_settle(t0_), 100ms);
    EXPECT_FALSE(w.settled(t0_ + 99ms));
    EXPECT_EQ(w.settled(t0_ + 100ms), path("shop/views.py"));
    EXPECT_FALSE(w.settled(t0_ + 200ms)) << "answered once";
    EXPECT_FALSE(w.time_to_settle(t0_ + 200ms));
}

TEST_F(SourceWatcherTest, MoreEventsExtendTheQuietUpToTheLongestWait) {
    SourceWatcher w(settings());
    write("app.py", "x = 2\n");
    w.read_events(t0_);
    write("shop/views.py", "x = 2\n");
    w.read_events(t0_ + 80ms);
    EXPECT_FALSE(w.settled(t0_ + 150ms));
    EXPECT_EQ(w.settled(t0_ + 180ms), path("app.py")) << "the first file changed";
    for (auto t = 0ms; t <= 900ms; t += 90ms) {
        write("app.py", "x = 3\n");
        w.read_events(t0_ + 1s + t);
        if (t < 900ms) EXPECT_FALSE(w.settled(t0_ + 1s + t + 50ms));
    }
    EXPECT_TRUE(w.settled(t0_ + 2s)) << "settled 1 s after the first event, though events go on";
}

TEST_F(SourceWatcherTest, ASaveByRenameIsSeen) {
    SourceWatcher w(settings());
    write("shop/.views.py.tmp", "x = 3\n");
    w.read_events(t0_);
    EXPECT_FALSE(w.time_to_settle(t0_)) << "the editor's temporary file is not source";
    fs::rename(root_ / "shop/.views.py.tmp", root_ / "shop/views.py");
    w.read_events(t0_);
    EXPECT_EQ(w.settled(t0_ + 1s), path("shop/views.py"));
}

TEST_F(SourceWatcherTest, OtherFilesAreIgnoredAndDeletionsCount) {
    SourceWatcher w(settings());
    write("notes.txt", "x\n");
    write("shop/style.css", "x\n");
    w.read_events(t0_);
    EXPECT_FALSE(w.time_to_settle(t0_));
    fs::remove(root_ / "app.py");
    w.read_events(t0_);
    EXPECT_EQ(w.settled(t0_ + 1s), path("app.py"));
}

TEST_F(SourceWatcherTest, ANewDirectoryIsWatchedWithWhatItHolds) {
    SourceWatcher w(settings());
    fs::create_directories(root_ / "blog/sub");
    w.read_events(t0_);
    EXPECT_FALSE(w.time_to_settle(t0_)) << "an empty directory changes no code";
    EXPECT_EQ(w.watched_directories(), 5u);
    write("blog/sub/models.py", "x = 1\n");
    w.read_events(t0_);
    EXPECT_EQ(w.settled(t0_ + 1s), path("blog/sub/models.py"));

    // A package moved in whole: its files arrived before any watch on it.
    fs::path outside = root_.string() + "_outside";
    fs::create_directories(outside / "pkg");
    std::ofstream(outside / "pkg" / "m.py") << "x = 1\n";
    fs::rename(outside / "pkg", root_ / "pkg");
    fs::remove_all(outside);
    w.read_events(t0_ + 2s);
    EXPECT_EQ(w.settled(t0_ + 3s), path("pkg"));
    write("pkg/m.py", "x = 2\n");
    w.read_events(t0_ + 4s);
    EXPECT_EQ(w.settled(t0_ + 5s), path("pkg/m.py"));
}

TEST_F(SourceWatcherTest, ExtraFilesCountWhateverTheirNames) {
    write("settings.yaml", "a: 1\n");
    auto s = settings();
    s.extra_files = {path("settings.yaml")};
    SourceWatcher w(s);
    write("other.yaml", "a: 1\n");
    w.read_events(t0_);
    EXPECT_FALSE(w.time_to_settle(t0_));
    write("settings.yaml", "a: 2\n");
    w.read_events(t0_);
    EXPECT_EQ(w.settled(t0_ + 1s), path("settings.yaml"));
}

TEST_F(SourceWatcherTest, IncludeAndExcludeGlobsAreHonoured) {
    auto s = settings();
    s.includes = {"*.css"};
    s.excludes = {"views.py"};
    SourceWatcher w(s);
    write("shop/views.py", "x = 5\n");
    w.read_events(t0_);
    EXPECT_FALSE(w.time_to_settle(t0_));
    write("shop/style.css", "a{}\n");
    w.read_events(t0_);
    EXPECT_EQ(w.settled(t0_ + 1s), path("shop/style.css"));
}

TEST(InstalledCode, SitePackagesDistPackagesAndVirtualenvs) {
    EXPECT_TRUE(is_installed_code("/usr/lib/python3/dist-packages/django"));
    EXPECT_TRUE(is_installed_code("/home/u/.venv/lib/python3.11/site-packages"));
    EXPECT_FALSE(is_installed_code("/srv/app"));
    fs::path venv = fs::temp_directory_path() / ("gantry_venv_" + std::to_string(::getpid()));
    fs::create_directories(venv);
    std::ofstream(venv / "pyvenv.cfg") << "home = /usr/bin\n";
    EXPECT_TRUE(is_installed_code(venv.string()));
    fs::remove_all(venv);
}

}  // namespace
}  // namespace gantry
