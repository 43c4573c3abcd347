#pragma once
// gunicorn's settings, each with gantry's answer: the single source the command line, the Python
// config file, `gantry --print-settings-table` and docs/gunicorn.md are made from.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace gantry {

// How a setting is given: how its flag takes a value, and what a config file's name holds.
enum class SettingForm {
    switch_on,   // a flag without a value (store_true): `--preload`, `preload_app = True`
    switch_off,  // a flag that turns a default off (store_const False): `--no-sendfile`, `sendfile = False`
    value,       // one value, the last one given wins: `--workers 3`, `workers = 3`
    repeated,    // a value per occurrence, all kept: `--bind a --bind b`, `bind = ["a", "b"]`
    hook,        // a function in the config file (a server hook): no flag
    file_only,   // a config-file name without a flag: `wsgi_app`, `secure_scheme_headers`
};

// What gantry does with it.
enum class SettingAnswer {
    implemented,  // gunicorn's meaning (the flag is one of gantry's own options)
    noted,        // accepted; one log line at start says what gantry does instead
    refused,      // an error naming the alternative (unless it is given its default value)
};

struct GunicornSetting {
    const char* name;      // gunicorn's setting name, as a config file spells it
    const char* flags;     // its flags, space-separated ("-b --bind"); "" for hooks and file-only names
    const char* section;   // gunicorn's settings section
    SettingForm form;
    SettingAnswer answer;
    const char* by_default;  // gunicorn's default as a flag value would spell it ("" when none)
    const char* text;      // implemented: gantry's meaning; noted: the log line; refused: the alternative
    const char* only_in;   // "": in Debian 12's gunicorn 20.1 and in gunicorn 26.1; "26": 26.1 only; "20.1": Debian's only
};

// Every setting of gunicorn 20.1 (Debian 12's) and of gunicorn 26.1, in gunicorn's order.
const std::vector<GunicornSetting>& gunicorn_settings();
const GunicornSetting* find_gunicorn_setting(std::string_view name);
// The long flag ("--workers"), or "" for hooks and file-only settings.
std::string long_flag(const GunicornSetting& setting);

// What a noted or refused setting given with `value` says: the log line ("--worker-tmp-dir
// /dev/shm: gantry needs no heartbeat files ..."), or the error message of a refused one.
// `source` names where it came from ("" for the command line, " (in gunicorn.conf.py)").
std::string setting_message(const GunicornSetting& setting, const std::string& value, const std::string& source);

// The table as Markdown, for docs/gunicorn.md (`gantry --print-settings-table`).
std::string gunicorn_settings_markdown();

}  // namespace gantry
