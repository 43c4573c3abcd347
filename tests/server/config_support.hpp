#pragma once
// The fixture the command-line and config-file tests share: parse_command_line on "gantry <args...>"
// with a clean environment and a temporary directory for TOML files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include <unistd.h>

#include "server/config.hpp"

namespace gantry {

class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        ::unsetenv("WEB_CONCURRENCY");
        ::unsetenv("VIRTUAL_ENV");
        ::unsetenv("GUNICORN_CMD_ARGS");
        ::unsetenv("GANTRY_CMD_ARGS");
        dir_ = std::filesystem::temp_directory_path() /
               ("gantry_config_test_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override {
        ::unsetenv("WEB_CONCURRENCY");
        ::unsetenv("VIRTUAL_ENV");
        ::unsetenv("GUNICORN_CMD_ARGS");
        ::unsetenv("GANTRY_CMD_ARGS");
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

class MiddlewareConfigTest : public ConfigTest {};

}  // namespace gantry
