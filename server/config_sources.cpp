#include "server/config_sources.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "server/config_arguments.hpp"
#include "server/config_file.hpp"
#include "server/gunicorn_settings.hpp"

namespace gantry {

namespace {

[[noreturn]] void error(const std::string& message) { throw ConfigError(message); }

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// $GANTRY_CMD_ARGS / $GUNICORN_CMD_ARGS read as more arguments. Their positional arguments are
// ignored, as gunicorn ignores them (the app comes from the command line or the config file).
ArgumentsRead environment_arguments(const char* variable, const char* version) {
    ArgumentsRead read;
    const char* text = std::getenv(variable);
    if (!text || !*text) return read;
    std::vector<std::string> words = split_shell_words(text, std::string("$") + variable);
    try {
        read = read_arguments(words, version);
    } catch (const ConfigError& e) {
        error(std::string("$") + variable + ": " + e.what());
    }
    if (read.exit_now) error(std::string("$") + variable + " may only hold settings, not --help or --version");
    read.layer.app.reset();
    return read;
}

}  // namespace

std::vector<std::string> split_shell_words(const std::string& text, const std::string& what) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == ' ' || c == '\t' || c == '\n') {
            if (in_word) words.push_back(std::move(word)), word.clear(), in_word = false;
        } else if (c == '\'') {
            std::size_t end = text.find('\'', i + 1);
            if (end == std::string::npos) error(what + ": no closing quotation");
            word.append(text, i + 1, end - i - 1), i = end, in_word = true;
        } else if (c == '"') {
            in_word = true;
            for (++i;; ++i) {
                if (i >= text.size()) error(what + ": no closing quotation");
                if (text[i] == '"') break;
                // POSIX: inside double quotes a backslash escapes only \ " $ ` and newline.
                if (text[i] == '\\' && i + 1 < text.size() && std::strchr("\\\"$`\n", text[i + 1])) ++i;
                word += text[i];
            }
        } else if (c == '\\') {
            if (i + 1 < text.size()) word += text[++i];
            in_word = true;
        } else {
            word += c, in_word = true;
        }
    }
    if (in_word) words.push_back(std::move(word));
    return words;
}

std::vector<std::string> python_settings_as_arguments(const std::vector<PythonConfigSetting>& settings,
                                                      ConfigLayer& extra) {
    std::vector<std::string> args;
    for (const auto& s : settings) {
        const GunicornSetting* row = find_gunicorn_setting(s.name);
        if (!row) continue;
        std::string flag = long_flag(*row);
        if (row->form == SettingForm::hook || flag.empty()) {
            if (s.name == "wsgi_app") {
                if (!s.values.empty()) extra.app = s.values.front();
            } else if (row->answer != SettingAnswer::implemented) {
                extra.gunicorn_given.emplace_back(s.name, s.values.empty() ? "" : s.values.front());
            }
            continue;
        }
        switch (row->form) {
        case SettingForm::switch_on:
        case SettingForm::switch_off:
            args.push_back(flag);  // the reader gives only the switches that change the default
            break;
        case SettingForm::value:
            if (!s.values.empty()) args.push_back(flag + "=" + s.values.front());
            break;
        case SettingForm::repeated:
            for (const auto& v : s.values) args.push_back(flag + "=" + v);
            break;
        default:
            break;
        }
    }
    return args;
}

CommandLine read_config_sources(const std::vector<std::string>& args, const char* version, PythonConfigReader* python) {
    CommandLine result;
    ArgumentsRead flags = read_arguments(args, version);
    if (flags.exit_now) {
        result.exit_now = true;
        result.exit_code = flags.exit_code;
        result.output = flags.output;
        return result;
    }
    ArgumentsRead gantry_env = environment_arguments("GANTRY_CMD_ARGS", version);
    ArgumentsRead gunicorn_env = environment_arguments("GUNICORN_CMD_ARGS", version);

    // Layers, lowest first: defaults, environment, config file, $GUNICORN_CMD_ARGS,
    // $GANTRY_CMD_ARGS, flags.
    Config& config = result.config;
    ConfigLayer environment;
    if (const char* wc = std::getenv("WEB_CONCURRENCY"); wc && *wc) {
        long long n = 0;
        auto [end, ec] = std::from_chars(wc, wc + std::strlen(wc), n);
        if (ec != std::errc() || *end != '\0')
            error("$WEB_CONCURRENCY must be a number of workers, got '" + std::string(wc) + "'");
        environment.workers = n;
    }
    if (const char* venv = std::getenv("VIRTUAL_ENV"); venv && *venv) environment.virtualenv = venv;
    apply_layer(config, environment, " (from the environment)");

    // The file named on the command line, else in the environment's arguments, else
    // ./gunicorn.conf.py if there is one (gunicorn's choice, in that order).
    std::optional<std::string> file = flags.config_file;
    if (!file) file = gantry_env.config_file;
    if (!file) file = gunicorn_env.config_file;
    if (!file) {
        std::error_code ec;
        if (std::filesystem::is_regular_file("gunicorn.conf.py", ec))
            file = (std::filesystem::current_path(ec) / "gunicorn.conf.py").string();
    }
    if (file && !file->empty()) {
        config.config_file = *file;
        std::string shown = file->rfind("python:", 0) == 0 ? *file : std::filesystem::path(*file).filename().string();
        if (ends_with(*file, ".toml")) {
            apply_layer(config, read_config_file(*file), " (in " + *file + ")");
        } else {
            if (!python) error("cannot read the Python config file " + *file + ": this program has no interpreter");
            // Read with the interpreter the workers will run: the virtualenv of the sources above it.
            std::string venv = config.virtualenv;
            for (const ArgumentsRead* over : {&gunicorn_env, &gantry_env, &flags})
                if (over->layer.virtualenv) venv = *over->layer.virtualenv;
            ConfigLayer extra;
            std::vector<std::string> as_flags = python_settings_as_arguments(python->read(*file, venv), extra);
            std::string source = " (in " + shown + ")";
            ArgumentsRead from_file;
            try {
                from_file = read_arguments(as_flags, version);
            } catch (const ConfigError& e) {
                error(std::string(e.what()) + source);
            }
            if (extra.app && !from_file.layer.app) from_file.layer.app = extra.app;
            for (auto& given : extra.gunicorn_given) from_file.layer.gunicorn_given.push_back(std::move(given));
            apply_layer(config, from_file.layer, source);
        }
    }
    apply_layer(config, gunicorn_env.layer, " (from $GUNICORN_CMD_ARGS)");
    apply_layer(config, gantry_env.layer, " (from $GANTRY_CMD_ARGS)");
    apply_layer(config, flags.layer, "");

    if (config.binds.empty()) config.binds.push_back(parse_bind_address("127.0.0.1:8000"));
    config.identity = resolve_identity(config.user, config.group, config.initgroups, "");
    if (config.reload && config.preload)
        error("--reload and --preload do not go together: with --preload the workers fork from the app the master "
              "loaded, so restarting them would not load the changed code");
    if (config.app.empty())
        error("no application given: gantry [OPTIONS] module:callable (or wsgi_app in gunicorn.conf.py, "
              "app = \"module:callable\" in a TOML file)");
    return result;
}

}  // namespace gantry
