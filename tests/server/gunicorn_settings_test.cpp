#include "server/gunicorn_settings.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config_support.hpp"
#include "server/config_sources.hpp"

namespace gantry {
namespace {

// A Python config file without an interpreter: what the embedded reader would return.
class FakePythonReader : public PythonConfigReader {
public:
    explicit FakePythonReader(std::vector<PythonConfigSetting> settings) : settings_(std::move(settings)) {}
    std::vector<PythonConfigSetting> read(const std::string& location, const std::string& virtualenv) override {
        location_ = location;
        virtualenv_ = virtualenv;
        return settings_;
    }
    std::string location_, virtualenv_;

private:
    std::vector<PythonConfigSetting> settings_;
};

class GunicornConfigTest : public ConfigTest {
protected:
    Config with_reader(PythonConfigReader& reader, std::initializer_list<std::string> args) {
        std::vector<std::string> storage{"gantry"};
        storage.insert(storage.end(), args.begin(), args.end());
        std::vector<const char*> argv;
        for (const auto& s : storage) argv.push_back(s.c_str());
        return parse_command_line(static_cast<int>(argv.size()), argv.data(), "1.2.3", &reader).config;
    }
};

std::vector<std::string> words_of(const char* flags) {
    std::istringstream in(flags);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

// A value each setting's flag takes (anything different from its default).
std::string sample_value(const GunicornSetting& s) {
    std::string name = s.name;
    if (name == "bind") return "127.0.0.1:9999";
    if (name == "raw_env") return "K=V";
    if (name == "umask") return "022";
    if (name == "worker_class") return "gthread";
    if (name == "forwarded_allow_ips") return "10.0.0.1";
    if (name == "loglevel") return "debug";
    if (name == "asgi_loop") return "asyncio";
    if (name == "asgi_lifespan") return "off";
    if (name == "root_path") return "/api";
    if (name == "config") return "";  // read separately
    if (name == "user" || name == "group") return "0";
    std::string d = s.by_default;
    if (!d.empty() && d.find_first_not_of("0123456789") == std::string::npos) return std::to_string(std::stoi(d) + 1);
    return "x";
}

TEST_F(GunicornConfigTest, NamesAreUniqueAndEveryFlagIsLongOrShort) {
    std::set<std::string> names, flags;
    for (const auto& s : gunicorn_settings()) {
        EXPECT_TRUE(names.insert(s.name).second) << s.name;
        for (const auto& f : words_of(s.flags)) {
            EXPECT_TRUE(flags.insert(f).second) << f;
            EXPECT_EQ(f[0], '-') << f;
        }
        bool has_flag = *s.flags != '\0';
        bool flagless = s.form == SettingForm::hook || s.form == SettingForm::file_only;
        EXPECT_EQ(has_flag, !flagless) << s.name;
        EXPECT_NE(std::string(s.text), "") << s.name;
    }
}

// Every flag of the table is one the command line knows, and it answers as the table says:
// implemented ones change the config, noted ones leave one line, refused ones an error naming
// the alternative.
TEST_F(GunicornConfigTest, EveryFlagAnswersAsTheTableSays) {
    for (const auto& s : gunicorn_settings()) {
        if (!*s.flags || std::string(s.name) == "config") continue;
        for (const auto& flag : words_of(s.flags)) {
            std::vector<std::string> args{"gantry", flag};
            bool takes_value = s.form == SettingForm::value || s.form == SettingForm::repeated;
            if (takes_value) args.push_back(sample_value(s));
            if (std::string(s.name) == "check_config" || std::string(s.name) == "print_config") {
                // exit later, in the master; parsing alone succeeds
            }
            args.push_back("a:b");
            std::vector<const char*> argv;
            for (const auto& a : args) argv.push_back(a.c_str());
            SCOPED_TRACE(flag);
            if (s.answer == SettingAnswer::refused) {
                try {
                    parse_command_line(static_cast<int>(argv.size()), argv.data(), "1.2.3");
                    ADD_FAILURE() << flag << " was not refused";
                } catch (const ConfigError& e) {
                    EXPECT_CONTAINS(e.what(), s.text);
                    EXPECT_CONTAINS(e.what(), long_flag(s));
                }
                continue;
            }
            Config c = parse_command_line(static_cast<int>(argv.size()), argv.data(), "1.2.3").config;
            if (s.answer == SettingAnswer::noted) {
                ASSERT_EQ(c.notes.size(), 1u);
                EXPECT_CONTAINS(c.notes[0], s.text);
                EXPECT_EQ(c.notes[0].rfind(long_flag(s), 0), 0u) << c.notes[0];
            } else {
                EXPECT_TRUE(c.notes.empty());
            }
        }
    }
}

TEST_F(GunicornConfigTest, RefusedGivenItsDefaultPasses) {
    Config c = config({"--protocol", "http", "--http-protocols", "h1", "--dirty-workers", "0", "a:b"});
    EXPECT_TRUE(c.notes.empty());
    EXPECT_CONTAINS(error_of({"--protocol", "uwsgi", "a:b"}), "--protocol uwsgi: gantry speaks HTTP only");
}

TEST_F(GunicornConfigTest, TheDockerfileLine) {
    Config c = config({"--bind", "0.0.0.0:8000", "--workers", "3", "--worker-tmp-dir", "/dev/shm", "--capture-output",
                       "--access-logfile", "-", "myproject.wsgi"});
    EXPECT_EQ(c.binds[0].to_string(), "0.0.0.0:8000");
    EXPECT_EQ(c.workers, 3);
    EXPECT_TRUE(c.capture_output);
    EXPECT_EQ(c.access_logfile, "-");
    ASSERT_EQ(c.notes.size(), 1u);
    EXPECT_CONTAINS(c.notes[0], "--worker-tmp-dir /dev/shm: gantry needs no heartbeat files");
}

TEST_F(GunicornConfigTest, WorkerClasses) {
    EXPECT_EQ(config({"-k", "sync", "a:b"}).interface, "auto");
    EXPECT_EQ(config({"-k", "gthread", "--threads", "4", "a:b"}).threads, 4);
    EXPECT_EQ(config({"-k", "uvicorn.workers.UvicornWorker", "a:b"}).interface, "asgi");
    EXPECT_EQ(config({"--worker-class", "uvicorn_worker.UvicornWorker", "a:b"}).interface, "asgi");
    EXPECT_EQ(config({"-k", "asgi", "a:b"}).interface, "asgi");
    EXPECT_EQ(config({"-k", "asgi", "--interface", "wsgi", "a:b"}).interface, "wsgi");  // the explicit one wins
    for (const char* green : {"gevent", "eventlet", "tornado", "gunicorn.workers.ggevent.GeventWorker"}) {
        std::string message = error_of({"-k", green, "a:b"});
        EXPECT_CONTAINS(message, "--interface asgi");
        EXPECT_CONTAINS(message, "--threads");
    }
    EXPECT_CONTAINS(error_of({"-k", "mypkg.MyWorker", "a:b"}), "must be sync, gthread, asgi");
}

TEST_F(GunicornConfigTest, ImplementedSwitches) {
    Config c = config({"--reuse-port", "--check-config", "-m", "0027", "--asgi-loop", "asyncio", "--asgi-lifespan", "off",
                       "a:b"});
    EXPECT_TRUE(c.reuse_port);
    EXPECT_TRUE(c.check_config);
    EXPECT_EQ(c.umask, 027);
    EXPECT_EQ(c.loop, "asyncio");
    EXPECT_EQ(c.lifespan, "off");
    EXPECT_EQ(config({"--umask", "0o22", "a:b"}).umask, 022);
    EXPECT_EQ(config({"--umask", "18", "a:b"}).umask, 18);
    EXPECT_EQ(config({"--umask", "0x12", "a:b"}).umask, 18);
    EXPECT_EQ(config({"a:b"}).umask, -1);
    EXPECT_CONTAINS(error_of({"--umask", "08", "a:b"}), "--umask must be a umask");
}

TEST_F(GunicornConfigTest, UserAndGroup) {
    Config c = config({"-u", "0", "-g", "0", "--initgroups", "a:b"});
    EXPECT_EQ(c.identity.uid, 0);
    EXPECT_EQ(c.identity.gid, 0);
    EXPECT_TRUE(c.identity.initgroups);
    EXPECT_EQ(c.identity.user_name, "root");
    Config by_name = config({"--user", "root", "a:b"});
    EXPECT_EQ(by_name.identity.gid, 0);  // the user's own group
    EXPECT_FALSE(config({"a:b"}).identity.changes());
    EXPECT_CONTAINS(error_of({"-u", "no-such-user-here", "a:b"}), "--user: no user named 'no-such-user-here'");
    EXPECT_CONTAINS(error_of({"-g", "no-such-group-here", "a:b"}), "--group: no group named 'no-such-group-here'");
    EXPECT_EQ(config({"-u", "123456", "a:b"}).identity.uid, 123456);  // a uid without a name, as gunicorn takes it
}

TEST_F(GunicornConfigTest, ShellWords) {
    EXPECT_EQ(split_shell_words(R"(a 'b c'  d"e f"\ g "h\"i" 'j\k')", "x"),
              (std::vector<std::string>{"a", "b c", "de f g", "h\"i", "j\\k"}));
    EXPECT_TRUE(split_shell_words("   ", "x").empty());
    EXPECT_THROW(split_shell_words("'open", "x"), ConfigError);
}

// gunicorn's order: command line > $GANTRY_CMD_ARGS > $GUNICORN_CMD_ARGS > file > $WEB_CONCURRENCY.
TEST_F(GunicornConfigTest, Precedence) {
    FakePythonReader reader({{"workers", {"4"}}, {"threads", {"2"}}, {"timeout", {"11"}}, {"keepalive", {"9"}},
                             {"backlog", {"77"}}});
    ::setenv("WEB_CONCURRENCY", "6", 1);
    ::setenv("GUNICORN_CMD_ARGS", "--threads 3 --timeout 12 --keep-alive 8 ignored:app", 1);
    ::setenv("GANTRY_CMD_ARGS", "--timeout 13 --keep-alive 7", 1);
    std::string file = (dir_ / "gunicorn.conf.py").string();
    Config c = with_reader(reader, {"-c", file, "--keep-alive", "5", "a:b"});
    EXPECT_EQ(reader.location_, file);
    EXPECT_EQ(c.workers, 4);     // the file over $WEB_CONCURRENCY
    EXPECT_EQ(c.backlog, 77);    // the file alone
    EXPECT_EQ(c.threads, 3);     // $GUNICORN_CMD_ARGS over the file
    EXPECT_EQ(c.timeout, 13);    // $GANTRY_CMD_ARGS over $GUNICORN_CMD_ARGS
    EXPECT_EQ(c.keep_alive, 5);  // the command line over all
    EXPECT_EQ(c.app, "a:b");
    EXPECT_EQ(c.config_file, file);
}

TEST_F(GunicornConfigTest, ConfigFileFromTheEnvironmentArguments) {
    FakePythonReader reader(std::vector<PythonConfigSetting>{{"wsgi_app", {"from.file:app"}}});
    ::setenv("GUNICORN_CMD_ARGS", "-c python:my.settings", 1);
    Config c = with_reader(reader, {});
    EXPECT_EQ(reader.location_, "python:my.settings");
    EXPECT_EQ(c.app, "from.file:app");  // wsgi_app, since the command line names none
    EXPECT_EQ(with_reader(reader, {"cli:app"}).app, "cli:app");
}

TEST_F(GunicornConfigTest, DefaultConfigFileInTheWorkingDirectory) {
    FakePythonReader reader(std::vector<PythonConfigSetting>{{"workers", {"3"}}});
    auto previous = std::filesystem::current_path();
    std::filesystem::current_path(dir_);
    Config without = with_reader(reader, {"a:b"});
    EXPECT_EQ(without.workers, 1);
    EXPECT_EQ(reader.location_, "");
    std::ofstream(dir_ / "gunicorn.conf.py") << "workers = 3\n";
    Config with = with_reader(reader, {"a:b"});
    std::filesystem::current_path(previous);
    EXPECT_EQ(with.workers, 3);
    EXPECT_EQ(reader.location_, (dir_ / "gunicorn.conf.py").string());
}

TEST_F(GunicornConfigTest, PythonSettingsBecomeFlags) {
    FakePythonReader reader({{"bind", {"127.0.0.1:1", "unix:/tmp/s"}},
                             {"preload_app", {}},
                             {"raw_env", {"A=1", "B=2"}},
                             {"accesslog", {"-"}},
                             {"loglevel", {"warning"}},
                             {"worker_class", {"uvicorn.workers.UvicornWorker"}},
                             {"worker_int", {}},
                             {"worker_tmp_dir", {"/dev/shm"}},
                             {"tmp_upload_dir", {"/tmp"}}});
    Config c = with_reader(reader, {"-c", "/etc/g.conf.py", "a:b"});
    ASSERT_EQ(c.binds.size(), 2u);
    EXPECT_EQ(c.binds[1].to_string(), "unix:/tmp/s");
    EXPECT_TRUE(c.preload);
    EXPECT_EQ(c.env.size(), 2u);
    EXPECT_EQ(c.access_logfile, "-");
    EXPECT_EQ(c.log_level, "warning");
    EXPECT_EQ(c.interface, "asgi");
    ASSERT_EQ(c.notes.size(), 3u);
    EXPECT_EQ(c.notes[0].rfind("--worker-tmp-dir /dev/shm (in g.conf.py): gantry needs no heartbeat files", 0), 0u)
        << c.notes[0];
    EXPECT_EQ(c.notes[1].rfind("worker_int (in g.conf.py): ", 0), 0u) << c.notes[1];
    EXPECT_EQ(c.notes[2].rfind("tmp_upload_dir /tmp (in g.conf.py): ", 0), 0u) << c.notes[2];
}

TEST_F(GunicornConfigTest, PythonSettingErrorsNameTheFile) {
    FakePythonReader bad_value(std::vector<PythonConfigSetting>{{"workers", {"abc"}}});
    try {
        with_reader(bad_value, {"-c", "/etc/g.conf.py", "a:b"});
        ADD_FAILURE() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_CONTAINS(e.what(), "workers");
        EXPECT_CONTAINS(e.what(), "(in g.conf.py)");
    }
    FakePythonReader refused(std::vector<PythonConfigSetting>{{"daemon", {}}});
    try {
        with_reader(refused, {"-c", "/etc/g.conf.py", "a:b"});
        ADD_FAILURE() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_CONTAINS(e.what(), "--daemon (in g.conf.py): gantry does not daemonize");
    }
}

TEST_F(GunicornConfigTest, PythonConfigNeedsAnInterpreter) {
    EXPECT_CONTAINS(error_of({"-c", "/etc/g.conf.py", "a:b"}), "this program has no interpreter");
}

TEST_F(GunicornConfigTest, MarkdownHasARowPerSetting) {
    std::string md = gunicorn_settings_markdown();
    std::size_t rows = 0;
    for (std::size_t at = 0; (at = md.find("\n| `", at)) != std::string::npos; ++at) ++rows;
    EXPECT_EQ(rows, gunicorn_settings().size());
}

}  // namespace
}  // namespace gantry
