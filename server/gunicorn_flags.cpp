#include "server/gunicorn_flags.hpp"

#include <sstream>

namespace gantry {

GunicornCompatFlags::GunicornCompatFlags(CLI::App& cli) {
    for (const auto& s : gunicorn_settings()) {
        if (s.answer == SettingAnswer::implemented || !*s.flags) continue;
        std::string names;
        std::istringstream in(s.flags);
        for (std::string f; in >> f;) names += (names.empty() ? "" : ",") + f;
        std::string help = std::string(s.answer == SettingAnswer::refused ? "gunicorn's, refused: " : "gunicorn's, noted: ") + s.text;
        Entry& e = entries_.emplace_back(Entry{&s, nullptr, {}, false});
        if (s.form == SettingForm::switch_on || s.form == SettingForm::switch_off) {
            e.option = cli.add_flag(names, e.on, help);
        } else {
            e.option = cli.add_option(names, e.values, help)->expected(1)->allow_extra_args(false);
            e.option->multi_option_policy(s.form == SettingForm::repeated ? CLI::MultiOptionPolicy::TakeAll
                                                                          : CLI::MultiOptionPolicy::TakeLast);
        }
        e.option->group("gunicorn compatibility");
    }
}

void GunicornCompatFlags::take(ConfigLayer& layer) const {
    for (const auto& e : entries_) {
        if (!e.option->count()) continue;
        if (e.values.empty()) {
            layer.gunicorn_given.emplace_back(e.setting->name, "");
            continue;
        }
        std::string joined;
        for (const auto& v : e.values) joined += (joined.empty() ? "" : " ") + v;
        layer.gunicorn_given.emplace_back(e.setting->name, joined);
    }
}

}  // namespace gantry
