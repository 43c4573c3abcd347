#include "server/logging.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace gantry {
namespace {

class LoggingTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("gantry_logging_test_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
        config_.error_logfile = (dir_ / "error.log").string();
        config_.access_logfile = (dir_ / "access.log").string();
    }
    void TearDown() override {
        shutdown_logging();
        std::filesystem::remove_all(dir_);
    }

    static std::vector<std::string> lines(const std::string& path) {
        std::ifstream in(path);
        std::vector<std::string> out;
        for (std::string line; std::getline(in, line);) out.push_back(line);
        return out;
    }
    std::vector<std::string> error_lines() const { return lines(config_.error_logfile); }
    std::vector<std::string> access_lines() const { return lines(config_.access_logfile); }

    // Runs `body` in a forked child (with a watchdog so a deadlock fails instead of hanging)
    // and returns its exit status.
    template <class F>
    static int in_child(F body) {
        pid_t pid = ::fork();
        if (pid == 0) {
            ::alarm(20);
            int rc = 1;
            try {
                rc = body();
            } catch (...) {
                rc = 2;
            }
            ::_exit(rc);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
        return WEXITSTATUS(status);
    }

    std::filesystem::path dir_;
    Config config_;
};

TEST(LogLevel, GunicornNamesMapToSpdlog) {
    EXPECT_EQ(log_level_from_name("debug"), spdlog::level::debug);
    EXPECT_EQ(log_level_from_name("info"), spdlog::level::info);
    EXPECT_EQ(log_level_from_name("warning"), spdlog::level::warn);
    EXPECT_EQ(log_level_from_name("error"), spdlog::level::err);
    EXPECT_EQ(log_level_from_name("critical"), spdlog::level::critical);
    EXPECT_THROW(log_level_from_name("warn"), ConfigError);
    EXPECT_THROW(log_level_from_name(""), ConfigError);
}

TEST_F(LoggingTest, ErrorLogLineFormatIsGunicorns) {
    setup_logging(config_, LogMode::master_sync);
    error_log().info("Listening at: http://127.0.0.1:8000 ({})", 42);
    auto got = error_lines();
    ASSERT_EQ(got.size(), 1u);
    std::regex expected(R"(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[)" + std::to_string(::getpid()) +
                        R"(\] \[INFO\] Listening at: http://127\.0\.0\.1:8000 \(42\))");
    EXPECT_TRUE(std::regex_match(got[0], expected)) << got[0];
}

TEST_F(LoggingTest, LevelNamesAndFiltering) {
    config_.log_level = "warning";
    setup_logging(config_, LogMode::master_sync);
    error_log().debug("hidden debug");
    error_log().info("hidden info");
    error_log().warn("w");
    error_log().error("e");
    error_log().critical("c");
    auto got = error_lines();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_NE(got[0].find("] [WARNING] w"), std::string::npos) << got[0];
    EXPECT_NE(got[1].find("] [ERROR] e"), std::string::npos) << got[1];
    EXPECT_NE(got[2].find("] [CRITICAL] c"), std::string::npos) << got[2];
}

TEST_F(LoggingTest, DebugLevelShowsDebug) {
    config_.log_level = "debug";
    setup_logging(config_, LogMode::master_sync);
    error_log().debug("d");
    auto got = error_lines();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_NE(got[0].find("] [DEBUG] d"), std::string::npos);
}

TEST_F(LoggingTest, FilesAreAppendedNotTruncated) {
    std::ofstream(config_.error_logfile) << "old error line\n";
    std::ofstream(config_.access_logfile) << "old access line\n";
    setup_logging(config_, LogMode::master_sync);
    error_log().info("new");
    access_log()->info("new access");
    auto err = error_lines();
    ASSERT_EQ(err.size(), 2u);
    EXPECT_EQ(err[0], "old error line");
    EXPECT_EQ(access_lines(), (std::vector<std::string>{"old access line", "new access"}));
}

TEST_F(LoggingTest, AccessLogIsRawAndAlwaysAtInfo) {
    config_.log_level = "critical";  // does not silence the access log, as in gunicorn
    setup_logging(config_, LogMode::master_sync);
    ASSERT_NE(access_log(), nullptr);
    access_log()->info("127.0.0.1 - - [x] \"GET / HTTP/1.1\" 200 2");
    access_log()->info("{} and {{braces}}", "second");
    EXPECT_EQ(access_lines(), (std::vector<std::string>{"127.0.0.1 - - [x] \"GET / HTTP/1.1\" 200 2",
                                                        "second and {braces}"}));
    EXPECT_TRUE(error_lines().empty());
}

TEST_F(LoggingTest, AccessLogDisabledByEmptyPath) {
    config_.access_logfile = "";
    setup_logging(config_, LogMode::master_sync);
    EXPECT_EQ(access_log(), nullptr);
    EXPECT_FALSE(std::filesystem::exists(dir_ / "access.log"));
}

TEST_F(LoggingTest, DashMeansStdoutForAccessLog) {
    config_.access_logfile = "-";
    setup_logging(config_, LogMode::master_sync);
    ::testing::internal::CaptureStdout();
    access_log()->info("to stdout");
    flush_logs();
    EXPECT_EQ(::testing::internal::GetCapturedStdout(), "to stdout\n");
}

TEST_F(LoggingTest, DashMeansStderrForErrorLog) {
    config_.error_logfile = "-";
    setup_logging(config_, LogMode::master_sync);
    ::testing::internal::CaptureStderr();
    error_log().error("to stderr");
    flush_logs();
    std::string got = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(got.find("[ERROR] to stderr\n"), std::string::npos) << got;
}

TEST_F(LoggingTest, UnopenableFileIsAConfigError) {
    // spdlog creates missing directories, so block the path with a regular file instead.
    std::ofstream(dir_ / "blocker") << "x";
    config_.error_logfile = (dir_ / "blocker" / "e.log").string();
    try {
        setup_logging(config_, LogMode::master_sync);
        FAIL() << "no ConfigError";
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("--error-logfile"), std::string::npos) << e.what();
    }
    // A directory where the access log file should be.
    config_.error_logfile = (dir_ / "e.log").string();
    config_.access_logfile = dir_.string();
    EXPECT_THROW(setup_logging(config_, LogMode::master_sync), ConfigError);
}

TEST_F(LoggingTest, WorkerAsyncWritesEverythingByShutdown) {
    setup_logging(config_, LogMode::worker_async);
    for (int i = 0; i < 500; ++i) access_log()->info("line {}", i);
    error_log().warn("async warning");
    shutdown_logging();
    auto acc = access_lines();
    ASSERT_EQ(acc.size(), 500u);
    EXPECT_EQ(acc.front(), "line 0");
    EXPECT_EQ(acc.back(), "line 499");
    auto err = error_lines();
    ASSERT_EQ(err.size(), 1u);
    EXPECT_NE(err[0].find("[WARNING] async warning"), std::string::npos);
    EXPECT_EQ(access_log(), nullptr);  // back to the pre-setup state
}

TEST_F(LoggingTest, ErrorLogBeforeSetupGoesToStderr) {
    ::testing::internal::CaptureStderr();
    error_log().info("early");
    std::string got = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(got.find("[INFO] early"), std::string::npos) << got;
    EXPECT_EQ(access_log(), nullptr);
}

TEST_F(LoggingTest, WorkerSetupAfterForkOfSyncMaster) {
    setup_logging(config_, LogMode::master_sync);
    error_log().info("master before fork");
    int rc = in_child([&] {
        setup_logging(config_, LogMode::worker_async);
        error_log().info("worker {}", ::getpid());
        access_log()->info("worker access");
        shutdown_logging();
        return 0;
    });
    EXPECT_EQ(rc, 0);
    error_log().info("master after fork");
    auto err = error_lines();
    ASSERT_EQ(err.size(), 3u);  // nothing duplicated by the fork
    EXPECT_NE(err[0].find("master before fork"), std::string::npos);
    EXPECT_NE(err[1].find("[INFO] worker "), std::string::npos);
    EXPECT_EQ(err[1].find("[" + std::to_string(::getpid()) + "]"), std::string::npos) << "child logs its own pid";
    EXPECT_NE(err[2].find("master after fork"), std::string::npos);
    EXPECT_EQ(access_lines(), (std::vector<std::string>{"worker access"}));
}

TEST_F(LoggingTest, ChildOfAsyncProcessCanStillSetUpLogging) {
    // Not the intended use, but it must not hang or crash: the parent's pools are leaked in the child.
    setup_logging(config_, LogMode::worker_async);
    // Fork only once the parent's logging threads have written a line, i.e. are idle in their
    // queues: a thread still starting up may hold an allocator lock (ASan's is not fork-safe),
    // which the child would inherit locked. A server forks from its sync master, never from here.
    error_log().info("parent ready");
    access_log()->info("parent access");
    for (int i = 0; i < 2000 && (error_lines().empty() || access_lines().empty()); ++i) ::usleep(1000);
    int rc = in_child([&] {
        setup_logging(config_, LogMode::worker_async);
        error_log().info("grandchild style");
        shutdown_logging();
        return 0;
    });
    EXPECT_EQ(rc, 0);
    shutdown_logging();
    auto err = error_lines();
    ASSERT_EQ(err.size(), 2u);
    EXPECT_NE(err[0].find("parent ready"), std::string::npos);
    EXPECT_NE(err[1].find("grandchild style"), std::string::npos);
}

TEST_F(LoggingTest, SetupTwiceReplacesTheLoggers) {
    setup_logging(config_, LogMode::worker_async);
    access_log()->info("first");
    Config other = config_;
    other.access_logfile = (dir_ / "other.log").string();
    setup_logging(other, LogMode::master_sync);  // drains the async one first
    access_log()->info("second");
    EXPECT_EQ(access_lines(), (std::vector<std::string>{"first"}));
    EXPECT_EQ(lines(other.access_logfile), (std::vector<std::string>{"second"}));
}

}  // namespace
}  // namespace gantry
