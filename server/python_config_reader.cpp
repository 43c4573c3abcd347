#include "server/python_config_reader.hpp"

#include "embed/runtime/python_runtime.hpp"
#include "server/gunicorn_settings.hpp"

namespace gantry {

namespace {

const char* form_name(SettingForm form) {
    switch (form) {
    case SettingForm::switch_on: return "switch_on";
    case SettingForm::switch_off: return "switch_off";
    case SettingForm::value: return "value";
    case SettingForm::repeated: return "repeated";
    case SettingForm::hook: return "hook";
    case SettingForm::file_only: return "file_only";
    }
    return "value";
}

}  // namespace

EmbeddedConfigReader::EmbeddedConfigReader() = default;
EmbeddedConfigReader::~EmbeddedConfigReader() {
    // Not finalised: the process is ending (as a --preload master's interpreter).
    (void)runtime_.release();
}

std::vector<PythonConfigSetting> EmbeddedConfigReader::read(const std::string& location, const std::string& virtualenv) {
    std::vector<std::pair<std::string, std::string>> forms;
    for (const auto& s : gunicorn_settings()) forms.emplace_back(s.name, form_name(s.form));
    std::vector<PythonConfigSetting> settings;
    try {
        if (!runtime_) {
            // Started as the workers' interpreter would be, in the directory gantry was started
            // from: the file's relative paths mean what they mean to gunicorn.
            RuntimeSettings start;
            start.virtualenv = virtualenv;
            runtime_ = PythonRuntime::start(start);
        }
        for (auto& [name, values] : runtime_->read_config_file(location, forms))
            settings.push_back(PythonConfigSetting{std::move(name), std::move(values)});
    } catch (const AppLoadError& e) {
        throw ConfigError(e.what());
    }
    return settings;
}

std::unique_ptr<PythonRuntime> EmbeddedConfigReader::take_interpreter() { return std::move(runtime_); }

}  // namespace gantry
