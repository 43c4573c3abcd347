#include "server/config.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include <unistd.h>

namespace gantry {
namespace {

// Runs parse_command_line on "gantry <args...>" with a clean WEB_CONCURRENCY/VIRTUAL_ENV.
class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        ::unsetenv("WEB_CONCURRENCY");
        ::unsetenv("VIRTUAL_ENV");
        dir_ = std::filesystem::temp_directory_path() /
               ("gantry_config_test_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override {
        ::unsetenv("WEB_CONCURRENCY");
        ::unsetenv("VIRTUAL_ENV");
        std::filesystem::remove_all(dir_);
    }

    CommandLine parse(std::initializer_list<std::string> args) {
        std::vector<std::string> storage{"gantry"};
        storage.insert(storage.end(), args.begin(), args.end());
        std::vector<const char*> argv;
        for (const auto& s : storage) argv.push_back(s.c_str());
        return parse_command_line(static_cast<int>(argv.size()), argv.data(), "1.2.3");
    }
    Config config(std::initializer_list<std::string> args) {
        CommandLine cl = parse(args);
        EXPECT_FALSE(cl.exit_now);
        return cl.config;
    }
    std::string write_toml(const std::string& text) {
        auto path = dir_ / "gantry.toml";
        std::ofstream(path) << text;
        return path.string();
    }
    // The ConfigError message, or a failure if none was thrown.
    std::string error_of(std::initializer_list<std::string> args) {
        try {
            parse(args);
        } catch (const ConfigError& e) {
            return e.what();
        }
        ADD_FAILURE() << "no ConfigError";
        return {};
    }

    std::filesystem::path dir_;
};

#define EXPECT_CONTAINS(haystack, needle) \
    EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in: " << (haystack)

TEST_F(ConfigTest, Defaults) {
    Config c = config({"myapp:app"});
    EXPECT_EQ(c.app, "myapp:app");
    ASSERT_EQ(c.binds.size(), 1u);
    EXPECT_EQ(c.binds[0].to_string(), "127.0.0.1:8000");
    EXPECT_EQ(c.workers, 1);
    EXPECT_EQ(c.threads, 1);
    EXPECT_EQ(c.io_threads, 1);
    EXPECT_EQ(c.backlog, 2048);
    EXPECT_EQ(c.timeout, 30);
    EXPECT_EQ(c.keep_alive, 2);
    EXPECT_FALSE(c.preload);
    EXPECT_EQ(c.limit_request_line, 4094u);
    EXPECT_EQ(c.limit_request_fields, 100u);
    EXPECT_EQ(c.limit_request_field_size, 8190u);
    EXPECT_EQ(c.limit_request_body, 0u);
    EXPECT_EQ(c.access_logfile, "");
    EXPECT_EQ(c.error_logfile, "-");
    EXPECT_EQ(c.log_level, "info");
    EXPECT_EQ(c.access_logformat, kGunicornAccessLogFormat);
    EXPECT_EQ(c.forwarded_allow_ips, (std::vector<std::string>{"127.0.0.1", "::1"}));
    EXPECT_EQ(c.proc_name, "gantry");
}

TEST_F(ConfigTest, EveryLongFlag) {
    Config c = config({"--bind", "0.0.0.0:9000", "--bind=unix:/tmp/g.sock", "--backlog", "64", "--workers", "3",
                       "--threads", "4", "--io-threads", "2", "--timeout", "12.5", "--graceful-timeout", "7",
                       "--keep-alive", "5", "--header-timeout", "3", "--preload", "--limit-request-line", "100",
                       "--limit-request-fields", "20", "--limit-request-field_size", "300",
                       "--limit-request-body", "4096", "--body-buffer-size", "1024", "--chdir", "/srv",
                       "--pythonpath", "/a,/b", "--pythonpath", "/c", "--virtualenv", "/venv", "--env", "A=1",
                       "--env", "B=x=y", "--access-logfile", "-", "--error-logfile", "/tmp/err.log",
                       "--log-level", "warning", "--access-logformat", "%(h)s", "--forwarded-allow-ips",
                       "10.0.0.1, 10.0.0.2", "--pid", "/tmp/g.pid", "--name", "web", "--worker-class", "gthread",
                       "proj.wsgi:application"});
    EXPECT_EQ(c.app, "proj.wsgi:application");
    ASSERT_EQ(c.binds.size(), 2u);
    EXPECT_EQ(c.binds[0].to_string(), "0.0.0.0:9000");
    EXPECT_EQ(c.binds[1].to_string(), "unix:/tmp/g.sock");
    EXPECT_EQ(c.backlog, 64);
    EXPECT_EQ(c.workers, 3);
    EXPECT_EQ(c.threads, 4);
    EXPECT_EQ(c.io_threads, 2);
    EXPECT_DOUBLE_EQ(c.timeout, 12.5);
    EXPECT_DOUBLE_EQ(c.graceful_timeout, 7);
    EXPECT_DOUBLE_EQ(c.keep_alive, 5);
    EXPECT_DOUBLE_EQ(c.header_timeout, 3);
    EXPECT_TRUE(c.preload);
    EXPECT_EQ(c.limit_request_line, 100u);
    EXPECT_EQ(c.limit_request_fields, 20u);
    EXPECT_EQ(c.limit_request_field_size, 300u);
    EXPECT_EQ(c.limit_request_body, 4096u);
    EXPECT_EQ(c.body_buffer_size, 1024u);
    EXPECT_EQ(c.chdir, "/srv");
    EXPECT_EQ(c.pythonpath, (std::vector<std::string>{"/a", "/b", "/c"}));
    EXPECT_EQ(c.virtualenv, "/venv");
    using Env = std::vector<std::pair<std::string, std::string>>;
    EXPECT_EQ(c.env, (Env{{"A", "1"}, {"B", "x=y"}}));
    EXPECT_EQ(c.access_logfile, "-");
    EXPECT_EQ(c.error_logfile, "/tmp/err.log");
    EXPECT_EQ(c.log_level, "warning");
    EXPECT_EQ(c.access_logformat, "%(h)s");
    EXPECT_EQ(c.forwarded_allow_ips, (std::vector<std::string>{"10.0.0.1", "10.0.0.2"}));
    EXPECT_EQ(c.pidfile, "/tmp/g.pid");
    EXPECT_EQ(c.proc_name, "web");
}

TEST_F(ConfigTest, ShortFlagsAndAliases) {
    std::string toml = write_toml("workers = 2\n");
    Config c = config({"-b", "[::1]:8001", "-w", "5", "-t", "9", "-e", "K=V", "-n", "short", "-k", "sync",
                       "-p", "/tmp/p.pid", "-c", toml, "--log-file", "/tmp/e.log",
                       "--limit-request-field-size", "77", "app:x"});
    ASSERT_EQ(c.binds.size(), 1u);
    EXPECT_EQ(c.binds[0].to_string(), "[::1]:8001");
    EXPECT_EQ(c.workers, 5);
    EXPECT_DOUBLE_EQ(c.timeout, 9);
    EXPECT_EQ(c.env.size(), 1u);
    EXPECT_EQ(c.proc_name, "short");
    EXPECT_EQ(c.pidfile, "/tmp/p.pid");
    EXPECT_EQ(c.config_file, toml);
    EXPECT_EQ(c.error_logfile, "/tmp/e.log");
    EXPECT_EQ(c.limit_request_field_size, 77u);
}

TEST_F(ConfigTest, RepeatableFlagDoesNotSwallowTheApp) {
    Config c = config({"-b", "127.0.0.1:1", "app:x"});
    EXPECT_EQ(c.app, "app:x");
    EXPECT_EQ(c.binds.size(), 1u);
}

TEST_F(ConfigTest, LastSingleValuedFlagWins) {
    EXPECT_EQ(config({"-w", "2", "-w", "3", "a:b"}).workers, 3);
}

TEST_F(ConfigTest, Version) {
    CommandLine cl = parse({"--version"});
    EXPECT_TRUE(cl.exit_now);
    EXPECT_EQ(cl.exit_code, 0);
    EXPECT_EQ(cl.output, "gantry 1.2.3\n");
    EXPECT_EQ(parse({"-v"}).output, "gantry 1.2.3\n");
}

TEST_F(ConfigTest, Help) {
    CommandLine cl = parse({"--help"});
    EXPECT_TRUE(cl.exit_now);
    EXPECT_EQ(cl.exit_code, 0);
    EXPECT_CONTAINS(cl.output, "--bind");
    EXPECT_CONTAINS(cl.output, "--limit-request-field_size");
    EXPECT_CONTAINS(cl.output, "--access-logformat");
    EXPECT_TRUE(parse({"-h", "--workers", "0"}).exit_now);
}

TEST_F(ConfigTest, AppIsRequired) {
    EXPECT_CONTAINS(error_of({}), "no application given");
    EXPECT_CONTAINS(error_of({"-w", "2"}), "no application given");
}

TEST_F(ConfigTest, UnknownFlagAndBadNumbers) {
    EXPECT_CONTAINS(error_of({"--no-such-flag", "a:b"}), "no-such-flag");
    EXPECT_CONTAINS(error_of({"--workers", "many", "a:b"}), "many");
    EXPECT_CONTAINS(error_of({"--timeout", "soon", "a:b"}), "soon");
    EXPECT_CONTAINS(error_of({"a:b", "c:d"}), "c:d");
}

TEST_F(ConfigTest, ValidationErrors) {
    EXPECT_EQ(error_of({"--workers=0", "a:b"}), "--workers must be at least 1, got 0");
    EXPECT_EQ(error_of({"--threads=0", "a:b"}), "--threads must be at least 1, got 0");
    EXPECT_EQ(error_of({"--io-threads=-2", "a:b"}), "--io-threads must be at least 1, got -2");
    EXPECT_EQ(error_of({"--backlog=0", "a:b"}), "--backlog must be at least 1, got 0");
    EXPECT_EQ(error_of({"--timeout=0", "a:b"}), "--timeout must be more than 0 seconds, got 0");
    EXPECT_EQ(error_of({"--graceful-timeout=-1", "a:b"}), "--graceful-timeout must be more than 0 seconds, got -1");
    EXPECT_EQ(error_of({"--header-timeout=0", "a:b"}), "--header-timeout must be more than 0 seconds, got 0");
    EXPECT_EQ(error_of({"--keep-alive=-1", "a:b"}), "--keep-alive must be 0 or more seconds, got -1");
    EXPECT_EQ(error_of({"--limit-request-line=-1", "a:b"}), "--limit-request-line must be 0 or more, got -1");
    EXPECT_EQ(error_of({"--limit-request-body=-5", "a:b"}), "--limit-request-body must be 0 or more, got -5");
    EXPECT_EQ(error_of({"--log-level", "verbose", "a:b"}),
              "--log-level must be one of debug, info, warning, error, critical, got 'verbose'");
    EXPECT_EQ(error_of({"-e", "NOEQUALS", "a:b"}), "--env must be KEY=VALUE, got 'NOEQUALS'");
    EXPECT_EQ(error_of({"-e", "=v", "a:b"}), "--env must be KEY=VALUE, got '=v'");
    EXPECT_CONTAINS(error_of({"-b", "host:port", "a:b"}), "'host:port'");
    EXPECT_CONTAINS(error_of({"-b", "host:port", "a:b"}), "--bind");
    EXPECT_EQ(error_of({"-k", "eventlet", "a:b"}), "--worker-class must be sync, gthread or gantry, got 'eventlet'");
    EXPECT_EQ(error_of({"--forwarded-allow-ips", ",", "a:b"}), "--forwarded-allow-ips must not be empty");
}

TEST_F(ConfigTest, ZeroKeepAliveAndZeroLimitsAreAllowed) {
    Config c = config({"--keep-alive", "0", "--limit-request-line", "0", "a:b"});
    EXPECT_EQ(c.keep_alive, 0);
    EXPECT_EQ(c.limit_request_line, 0u);
}

TEST_F(ConfigTest, LogLevelIsCaseInsensitive) {
    EXPECT_EQ(config({"--log-level", "DEBUG", "a:b"}).log_level, "debug");
}

TEST_F(ConfigTest, ConfigFileEveryKey) {
    std::string path = write_toml(R"(
app = "fromfile:app"
bind = ["127.0.0.1:7000", "unix:/tmp/f.sock"]
backlog = 10
workers = 4
threads = 8
io_threads = 2
timeout = 60
graceful_timeout = 1.5
keep_alive = 3
header_timeout = 4
preload = true
limit_request_line = 1000
limit_request_fields = 50
limit_request_field_size = 8190
limit_request_body = 1048576
body_buffer_size = 65536
chdir = "/app"
pythonpath = ["/x", "/y"]
virtualenv = "/ve"
env = {ZED = "last", ALPHA = "first"}
access_logfile = "/tmp/access.log"
error_logfile = "/tmp/error.log"
log_level = "debug"
access_logformat = "%(r)s"
forwarded_allow_ips = ["*"]
pidfile = "/tmp/f.pid"
proc_name = "fromfile"
worker_class = "sync"
)");
    Config c = config({"-c", path});
    EXPECT_EQ(c.app, "fromfile:app");
    ASSERT_EQ(c.binds.size(), 2u);
    EXPECT_EQ(c.binds[1].path, "/tmp/f.sock");
    EXPECT_EQ(c.backlog, 10);
    EXPECT_EQ(c.workers, 4);
    EXPECT_EQ(c.threads, 8);
    EXPECT_EQ(c.io_threads, 2);
    EXPECT_DOUBLE_EQ(c.timeout, 60);
    EXPECT_DOUBLE_EQ(c.graceful_timeout, 1.5);
    EXPECT_DOUBLE_EQ(c.keep_alive, 3);
    EXPECT_DOUBLE_EQ(c.header_timeout, 4);
    EXPECT_TRUE(c.preload);
    EXPECT_EQ(c.limit_request_line, 1000u);
    EXPECT_EQ(c.limit_request_fields, 50u);
    EXPECT_EQ(c.limit_request_field_size, 8190u);
    EXPECT_EQ(c.limit_request_body, 1048576u);
    EXPECT_EQ(c.body_buffer_size, 65536u);
    EXPECT_EQ(c.chdir, "/app");
    EXPECT_EQ(c.pythonpath, (std::vector<std::string>{"/x", "/y"}));
    EXPECT_EQ(c.virtualenv, "/ve");
    using Env = std::vector<std::pair<std::string, std::string>>;
    EXPECT_EQ(c.env, (Env{{"ALPHA", "first"}, {"ZED", "last"}}));
    EXPECT_EQ(c.access_logfile, "/tmp/access.log");
    EXPECT_EQ(c.error_logfile, "/tmp/error.log");
    EXPECT_EQ(c.log_level, "debug");
    EXPECT_EQ(c.access_logformat, "%(r)s");
    EXPECT_EQ(c.forwarded_allow_ips, (std::vector<std::string>{"*"}));
    EXPECT_EQ(c.pidfile, "/tmp/f.pid");
    EXPECT_EQ(c.proc_name, "fromfile");
}

TEST_F(ConfigTest, ConfigFileStringForms) {
    std::string path = write_toml(R"(
app = "a:b"
bind = "0.0.0.0:1234"
pythonpath = "/p,/q"
env = ["K=V", "L=W=X"]
forwarded_allow_ips = "1.1.1.1, 2.2.2.2"
)");
    Config c = config({"-c", path});
    ASSERT_EQ(c.binds.size(), 1u);
    EXPECT_EQ(c.binds[0].to_string(), "0.0.0.0:1234");
    EXPECT_EQ(c.pythonpath, (std::vector<std::string>{"/p", "/q"}));
    using Env = std::vector<std::pair<std::string, std::string>>;
    EXPECT_EQ(c.env, (Env{{"K", "V"}, {"L", "W=X"}}));
    EXPECT_EQ(c.forwarded_allow_ips, (std::vector<std::string>{"1.1.1.1", "2.2.2.2"}));
}

TEST_F(ConfigTest, ConfigFileErrors) {
    EXPECT_CONTAINS(error_of({"-c", write_toml("wrokers = 2\n"), "a:b"}), "unknown key 'wrokers'");
    EXPECT_CONTAINS(error_of({"-c", write_toml("workers = \"two\"\n"), "a:b"}), "'workers' must be an integer");
    EXPECT_CONTAINS(error_of({"-c", write_toml("workers = 0\n"), "a:b"}), "--workers (in ");
    EXPECT_CONTAINS(error_of({"-c", write_toml("workers = 0\n"), "a:b"}), "must be at least 1, got 0");
    EXPECT_CONTAINS(error_of({"-c", write_toml("bind = [1]\n"), "a:b"}), "'bind' must be a string or a list");
    EXPECT_CONTAINS(error_of({"-c", write_toml("bind = \"x:y:z\"\n"), "a:b"}), "'x:y:z'");
    EXPECT_CONTAINS(error_of({"-c", write_toml("env = [\"NOPE\"]\n"), "a:b"}), "must be KEY=VALUE, got 'NOPE'");
    EXPECT_CONTAINS(error_of({"-c", write_toml("env = {A = 1}\n"), "a:b"}), "'env' must be");
    EXPECT_CONTAINS(error_of({"-c", write_toml("preload = 1\n"), "a:b"}), "'preload' must be true or false");
    EXPECT_CONTAINS(error_of({"-c", write_toml("timeout = \"1\"\n"), "a:b"}), "'timeout' must be a number");
    EXPECT_CONTAINS(error_of({"-c", write_toml("workers = \n"), "a:b"}), "is not valid TOML");
    EXPECT_CONTAINS(error_of({"-c", (dir_ / "missing.toml").string(), "a:b"}), "missing.toml");
}

// Found by fuzz/config_fuzz: toml11 parses nested arrays by recursion, and a file of deeply
// nested '[' or '{' overflowed the stack (a segfault, not "gantry: error: ...").
TEST_F(ConfigTest, DeeplyNestedConfigFileIsAnErrorNotACrash) {
    EXPECT_CONTAINS(error_of({"-c", write_toml("a = " + std::string(100000, '[') + "\n"), "a:b"}), "nested more than 32 deep");
    EXPECT_CONTAINS(error_of({"-c", write_toml("a = " + std::string(100000, '{') + "\n"), "a:b"}), "nested more than 32 deep");
    // Brackets inside strings and comments do not count; real nesting within the bound parses.
    auto c = parse({"-c", write_toml("# " + std::string(100, '[') + "\naccess_logformat = \"" + std::string(100, '[') +
                                     "\"\nproc_name = '''" + std::string(100, '{') + "'''\n[[middleware]]\nname = \"timing\"\n"
                                     "level = [[[1]]]\n"), "a:b"}).config;
    EXPECT_EQ(c.access_logformat, std::string(100, '['));
    EXPECT_EQ(c.proc_name, std::string(100, '{'));
}

// Found by fuzz/config_fuzz: toml11 3.7 reads past its buffer reporting invalid UTF-8 in a
// literal-string key (a heap overflow under ASan; garbage or a crash in a release build).
TEST_F(ConfigTest, ConfigFileThatIsNotUtf8IsAnError) {
    EXPECT_CONTAINS(error_of({"-c", write_toml("'i= \x8b'i=b:\x8b'i= \x8b'i= "), "a:b"}), "it is not UTF-8");
    EXPECT_CONTAINS(error_of({"-c", write_toml("proc_name = \"caf\xe9\"\n"), "a:b"}), "it is not UTF-8");
    EXPECT_EQ(config({"-c", write_toml("proc_name = \"caf\xc3\xa9\"\n"), "a:b"}).proc_name, "caf\xc3\xa9");
}

TEST_F(ConfigTest, PrecedenceFlagOverFileOverEnvironmentOverDefault) {
    ::setenv("WEB_CONCURRENCY", "6", 1);
    ::setenv("VIRTUAL_ENV", "/env/venv", 1);
    EXPECT_EQ(config({"a:b"}).workers, 6);
    EXPECT_EQ(config({"a:b"}).virtualenv, "/env/venv");

    std::string path = write_toml("workers = 4\nvirtualenv = \"/file/venv\"\napp = \"file:app\"\n");
    Config from_file = config({"-c", path});
    EXPECT_EQ(from_file.workers, 4);
    EXPECT_EQ(from_file.virtualenv, "/file/venv");
    EXPECT_EQ(from_file.app, "file:app");

    Config from_flags = config({"-c", path, "-w", "2", "--virtualenv", "/flag/venv", "flag:app"});
    EXPECT_EQ(from_flags.workers, 2);
    EXPECT_EQ(from_flags.virtualenv, "/flag/venv");
    EXPECT_EQ(from_flags.app, "flag:app");
}

TEST_F(ConfigTest, FlagBindsReplaceFileBinds) {
    std::string path = write_toml("bind = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n");
    Config c = config({"-c", path, "-b", "127.0.0.1:3", "a:b"});
    ASSERT_EQ(c.binds.size(), 1u);
    EXPECT_EQ(c.binds[0].port, 3);
}

TEST_F(ConfigTest, BadWebConcurrency) {
    ::setenv("WEB_CONCURRENCY", "lots", 1);
    EXPECT_EQ(error_of({"a:b"}), "$WEB_CONCURRENCY must be a number of workers, got 'lots'");
    ::setenv("WEB_CONCURRENCY", "0", 1);
    EXPECT_CONTAINS(error_of({"a:b"}), "must be at least 1, got 0");
    // A bad value is reported even when -w is given, as gunicorn fails on it too; a valid one
    // is simply overridden by the flag.
    ::setenv("WEB_CONCURRENCY", "3", 1);
    EXPECT_EQ(config({"-w", "1", "a:b"}).workers, 1);
}

}  // namespace
}  // namespace gantry

namespace gantry {
namespace {

class MiddlewareConfigTest : public ConfigTest {};

TEST_F(MiddlewareConfigTest, DefaultsAndFlags) {
    Config d = config({"m:a"});
    ASSERT_EQ(d.middleware.size(), 2u);
    EXPECT_EQ(d.middleware[0].name, "timing");
    EXPECT_EQ(d.middleware[1].name, "static");
    EXPECT_EQ(d.timing, "on");
    EXPECT_FALSE(d.server_timing);
    EXPECT_EQ(d.timing_allow_ips, (std::vector<std::string>{"127.0.0.1", "::1"}));

    Config c = config({"--middleware", "timing,static", "--middleware", "cache", "--timing", "full", "--server-timing",
                       "--timing-allow-ips", "10.0.0.1,10.0.0.2", "--access-log-json", "-", "m:a"});
    ASSERT_EQ(c.middleware.size(), 3u);
    EXPECT_EQ(c.middleware[1].name, "static");
    EXPECT_EQ(c.middleware[2].name, "cache");
    EXPECT_EQ(c.timing, "full");
    EXPECT_TRUE(c.server_timing);
    EXPECT_EQ(c.timing_allow_ips, (std::vector<std::string>{"10.0.0.1", "10.0.0.2"}));
    EXPECT_EQ(c.access_log_json, "-");
    EXPECT_CONTAINS(error_of({"--timing", "sometimes", "m:a"}), "--timing must be off, on or full");
}

TEST_F(MiddlewareConfigTest, TomlMiddlewareTablesKeepOrderAndOptions) {
    auto path = write_toml(R"(
app = "m:a"
server_timing = true
timing = "off"
[[middleware]]
name = "timing"
server_timing = false
allow_ips = ["127.0.0.1", "10.0.0.9"]
[[middleware]]
name = "compress"
level = 6
)");
    Config c = config({"-c", path});
    ASSERT_EQ(c.middleware.size(), 2u);
    EXPECT_EQ(c.middleware[0].name, "timing");
    EXPECT_EQ(c.middleware[0].options,
              (std::vector<std::pair<std::string, std::string>>{{"allow_ips", "127.0.0.1,10.0.0.9"}, {"server_timing", "false"}}));
    EXPECT_EQ(c.middleware[1].name, "compress");
    EXPECT_EQ(c.middleware[1].options, (std::vector<std::pair<std::string, std::string>>{{"level", "6"}}));
    EXPECT_TRUE(c.server_timing);
    EXPECT_EQ(c.timing, "off");

    auto nameless = write_toml("app = \"m:a\"\n[[middleware]]\nlevel = 1\n");
    EXPECT_CONTAINS(error_of({"-c", nameless}), "name");
}

TEST_F(MiddlewareConfigTest, StaticMountsFromFlagsAndToml) {
    Config d = config({"m:a"});
    EXPECT_TRUE(d.static_mounts.empty());
    EXPECT_FALSE(d.static_watch);
    Config c = config({"--static", "/static/=/srv/static", "--static", "/media=/srv/media", "--static-watch", "m:a"});
    EXPECT_EQ(c.static_mounts, (std::vector<std::pair<std::string, std::string>>{{"/static/", "/srv/static"},
                                                                                  {"/media", "/srv/media"}}));
    EXPECT_TRUE(c.static_watch);
    EXPECT_EQ(c.app, "m:a");
    auto path = write_toml("app = \"m:a\"\nstatic = [\"/s/=/srv/s\"]\nstatic_watch = true\n");
    Config t = config({"-c", path});
    EXPECT_EQ(t.static_mounts, (std::vector<std::pair<std::string, std::string>>{{"/s/", "/srv/s"}}));
    EXPECT_TRUE(t.static_watch);
    EXPECT_CONTAINS(error_of({"--static", "/static/", "m:a"}), "URL_PREFIX=DIR");
    EXPECT_CONTAINS(error_of({"--static", "static=/x", "m:a"}), "starting with '/'");
    EXPECT_CONTAINS(error_of({"--static", "/s=", "m:a"}), "URL_PREFIX=DIR");
}

TEST_F(MiddlewareConfigTest, CompressStaticSubcommand) {
    CommandLine cl = parse({"compress-static", "/srv/static"});
    EXPECT_FALSE(cl.exit_now);
    EXPECT_EQ(cl.compress_static_dir, "/srv/static");
    EXPECT_TRUE(parse({"compress-static", "--help"}).exit_now);
    error_of({"compress-static"});  // DIR is required
}

}  // namespace
}  // namespace gantry

namespace gantry {
namespace {

class CacheConfigTest : public ::testing::Test {
protected:
    static CommandLine parse(std::initializer_list<std::string> args) {
        std::vector<std::string> storage{"gantry"};
        storage.insert(storage.end(), args.begin(), args.end());
        storage.push_back("app:app");
        std::vector<const char*> argv;
        for (const auto& s : storage) argv.push_back(s.c_str());
        return parse_command_line(static_cast<int>(argv.size()), argv.data(), "1.2.3");
    }
};

TEST_F(CacheConfigTest, SizesWithUnits) {
    EXPECT_EQ(parse({}).config.cache_size, 64u << 20);
    EXPECT_EQ(parse({"--cache-size", "256MB"}).config.cache_size, 256u << 20);
    EXPECT_EQ(parse({"--cache-size", "1GiB"}).config.cache_size, std::size_t{1} << 30);
    EXPECT_EQ(parse({"--cache-size", "512k"}).config.cache_size, 512u << 10);
    EXPECT_EQ(parse({"--cache-size", "1048576"}).config.cache_size, 1048576u);
    EXPECT_EQ(parse({"--cache-size", "0"}).config.cache_size, 0u);
    for (const char* bad : {"lots", "12XB", "-5", "MB", "99999999999999999999G"})
        EXPECT_THROW(parse({"--cache-size", bad}), ConfigError) << bad;
}

TEST_F(CacheConfigTest, RedisUrl) {
    EXPECT_EQ(parse({"--cache", "redis://127.0.0.1:6380/1"}).config.cache_url, "redis://127.0.0.1:6380/1");
    EXPECT_THROW(parse({"--cache", "memcached://x"}), ConfigError);
}

}  // namespace
}  // namespace gantry
