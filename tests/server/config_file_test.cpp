#include "server/config_file.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config_support.hpp"

namespace gantry {
namespace {

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

}  // namespace
}  // namespace gantry
