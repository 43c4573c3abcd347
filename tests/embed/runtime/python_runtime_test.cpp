// Interpreter start and app loading. Each case re-executes this binary in child mode: its own
// process, so its own interpreter with its own configuration.
#include "embed/runtime/python_runtime.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "support.hpp"

namespace gantry::test {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

const std::string kApps = GANTRY_TEST_APPS_DIR;

// The body after the "LOADED" line, parsed as JSON.
json loaded_json(const ChildResult& r) {
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto nl = r.output.find('\n');
    EXPECT_EQ(r.output.substr(0, nl), "LOADED") << r.output;
    return json::parse(r.output.substr(nl + 1), nullptr, false);
}

std::string loaded_body(const ChildResult& r) {
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto nl = r.output.find('\n');
    EXPECT_EQ(r.output.substr(0, nl), "LOADED") << r.output;
    return r.output.substr(nl + 1);
}

TEST(LoadApp, GunicornForms) {
    EXPECT_EQ(loaded_body(run_child({"--pythonpath", kApps, "loadforms:application"})), "application");
    EXPECT_EQ(loaded_body(run_child({"--pythonpath", kApps, "loadforms"})), "application");
    EXPECT_EQ(loaded_body(run_child({"--pythonpath", kApps, "loadforms:other"})), "other");
    EXPECT_EQ(loaded_body(run_child({"--pythonpath", kApps, "loadforms:factory()"})), "factory () {}");
    EXPECT_EQ(loaded_body(run_child({"--pythonpath", kApps, "loadforms:factory('a', 2, k=[1])"})),
              "factory ('a', 2) {'k': [1]}");
    EXPECT_EQ(loaded_body(run_child({"--pythonpath", kApps, "loadforms:holder.inner.app"})), "attr");
}

void expect_load_error(const std::vector<std::string>& args, const std::vector<std::string>& needles) {
    auto r = run_child(args);
    EXPECT_EQ(r.exit_code, 3) << r.output;
    EXPECT_EQ(r.output.rfind("LOAD ERROR\n", 0), 0u) << r.output;
    for (const auto& n : needles) EXPECT_NE(r.output.find(n), std::string::npos) << "wanted: " << n << "\n" << r.output;
}

TEST(LoadApp, ImportErrorIsTheTraceback) {
    expect_load_error({"--pythonpath", kApps, "no_such_module_here:app"},
                      {"Traceback (most recent call last)", "ModuleNotFoundError: No module named 'no_such_module_here'"});
    expect_load_error({"--pythonpath", kApps, "broken_import"},
                      {"Traceback (most recent call last)", "broken_import.py\", line 2", "RuntimeError: broken at import"});
}

TEST(LoadApp, BadNamesAndObjects) {
    expect_load_error({"--pythonpath", kApps, "loadforms:missing"}, {"Failed to find attribute 'missing' in 'loadforms'"});
    expect_load_error({"--pythonpath", kApps, "loadforms:not_callable"}, {"must be callable (got int)"});
    expect_load_error({"--pythonpath", kApps, "loadforms:factory(len)"}, {"Failed to parse arguments as literal values"});
    expect_load_error({"--pythonpath", kApps, "loadforms:factory_none()"}, {"returned None"});
    expect_load_error({"--pythonpath", kApps, "loadforms:1+"}, {"Failed to parse"});
}

TEST(Start, DebianPythonSeesDjangoAndCwdIsFirstOnSysPath) {
    json j = loaded_json(run_child({"--pythonpath", kApps, "pathapp"}));
    EXPECT_EQ(j["executable"], "/usr/bin/python3");
    EXPECT_FALSE(j["django"].is_null());  // Debian's dist-packages
    EXPECT_TRUE(j["venv_mod"].is_null());
    EXPECT_EQ(j["sys.path"][0], kApps);                       // --pythonpath first
    EXPECT_EQ(j["sys.path"][1], fs::current_path().string());  // then the working directory
    bool gantry_last = j["sys.path"].back().get<std::string>().ends_with("embed/python");
    EXPECT_TRUE(gantry_last) << j["sys.path"];
}

TEST(Start, ChdirEnvAndPythonpath) {
    std::string root = kApps + "/chdir_root";
    json j = loaded_json(run_child({"--chdir", root, "--pythonpath", kApps, "--env", "GANTRY_CHILD_ENV=hello world",
                                    "chdir_only_app"}));
    EXPECT_EQ(j["cwd"], root);
    EXPECT_EQ(j["env"], "hello world");
    EXPECT_EQ(j["sys.path"][0], kApps);
    EXPECT_EQ(j["sys.path"][1], root);
}

TEST(Fork, ChildAndParentBothServeAfterFork) {
    auto r = run_child({"--fork", "--pythonpath", kApps, "pathapp"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto child = r.output.find("CHILD ");
    auto parent = r.output.find("\nPARENT ");
    ASSERT_NE(child, std::string::npos) << r.output;
    ASSERT_NE(parent, std::string::npos) << r.output;
    json c = json::parse(r.output.substr(child + 6, parent - child - 6), nullptr, false);
    json p = json::parse(r.output.substr(parent + 8), nullptr, false);
    ASSERT_FALSE(c.is_discarded()) << r.output;
    ASSERT_FALSE(p.is_discarded()) << r.output;
    EXPECT_NE(c["pid"], p["pid"]);
}

TEST(Start, ScriptNameFromTheEnvironmentIsStrippedFromPathInfo) {
    json j = loaded_json(run_child({"--pythonpath", kApps, "--env", "SCRIPT_NAME=/prefix", "testapp", "/prefix/environ/x"}));
    EXPECT_EQ(j["SCRIPT_NAME"], "/prefix");
    EXPECT_EQ(j["PATH_INFO"], "/environ/x");
    EXPECT_EQ(j["wsgi.multithread"], false);  // threads = 1
    EXPECT_EQ(j["wsgi.multiprocess"], false);
}

TEST(Executor, StopAnswersEveryQueuedCallThenRefusesNewOnes) {
    auto r = run_child({"--burst", "300", "--pythonpath", kApps, "testapp", "/list"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("ANSWERED 300 LATE fail"), std::string::npos) << r.output;
}

class Virtualenv : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = (fs::temp_directory_path() / ("gantry-venv-" + std::to_string(::getpid()))).string();
        std::string cmd = "/usr/bin/python3 -m venv --without-pip --system-site-packages '" + dir_ + "'";
        ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
        std::ofstream(dir_ + "/lib/python3.11/site-packages/venv_only_mod.py") << "VALUE = 'from the venv'\n";
    }
    static void TearDownTestSuite() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    static std::string dir_;
};
std::string Virtualenv::dir_;

TEST_F(Virtualenv, FlagMakesTheVenvsPackagesAndSystemSitePackagesVisible) {
    json j = loaded_json(run_child({"--venv", dir_, "--pythonpath", kApps, "pathapp"}));
    EXPECT_EQ(j["venv_mod"], "from the venv");
    EXPECT_FALSE(j["django"].is_null());  // include-system-site-packages = true
    EXPECT_EQ(j["prefix"], dir_);
    EXPECT_EQ(j["base_prefix"], "/usr");
}

TEST_F(Virtualenv, VirtualEnvVariableIsHonoured) {
    json j = loaded_json(run_child({"--pythonpath", kApps, "pathapp"}, {"VIRTUAL_ENV='" + dir_ + "'"}));
    EXPECT_EQ(j["venv_mod"], "from the venv");
    EXPECT_EQ(j["prefix"], dir_);
}

// What the static middleware learns from the app (PythonRuntime::django_static_settings).
json static_settings(const std::vector<std::string>& env, const std::string& app) {
    auto r = run_child({"--static-settings", "--pythonpath", kApps, app}, env);
    return loaded_json(r);
}

TEST(StaticSettings, NotDjangoIsNotFound) {
    json j = static_settings({}, "loadforms:application");
    EXPECT_FALSE(j["found"]);
    EXPECT_TRUE(j["notes"].empty());
}

TEST(StaticSettings, ProductionIsStaticRootUnderStaticUrl) {
    json j = static_settings({}, "djangostatic");
    EXPECT_TRUE(j["found"]);
    EXPECT_FALSE(j["debug"]);
    EXPECT_EQ(j["static_url"], "/static/");  // Django's relative form, made a path
    EXPECT_EQ(j["static_root"], "/srv/collected");
    EXPECT_TRUE(j["sources"].empty());  // finders only in DEBUG
}

TEST(StaticSettings, DebugListsTheFindersInOrder) {
    json j = static_settings({"DJANGOSTATIC_DEBUG=1"}, "djangostatic");
    EXPECT_TRUE(j["debug"]);
    const auto& sources = j["sources"];
    ASSERT_GE(sources.size(), 3u) << j;
    EXPECT_EQ(sources[0][0], kApps + "/djangostatic_files/assets");  // STATICFILES_DIRS first
    EXPECT_EQ(sources[0][1], "");
    EXPECT_EQ(sources[1][0], kApps + "/djangostatic_files/vendor");
    EXPECT_EQ(sources[1][1], "vendor");
    bool admin = false;  // then the apps' static/ directories
    for (const auto& s : sources) admin = admin || s[0].get<std::string>().ends_with("django/contrib/admin/static");
    EXPECT_TRUE(admin) << j;
}

TEST(StaticSettings, AnAbsoluteStaticUrlIsNotServed) {
    json j = static_settings({"DJANGOSTATIC_URL=https://cdn.example.com/s/"}, "djangostatic");
    EXPECT_TRUE(j["found"]);
    EXPECT_EQ(j["static_url"], "");
}

}  // namespace
}  // namespace gantry::test
