#pragma once
// The flags of gunicorn's settings that gantry accepts only to note or refuse them
// (server/gunicorn_settings.hpp), added to the command line from the table, so that every
// gunicorn flag is known: what was given goes into the layer, where apply_layer answers it.
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "server/config_layer.hpp"
#include "server/gunicorn_settings.hpp"

namespace gantry {

class GunicornCompatFlags {
public:
    explicit GunicornCompatFlags(CLI::App& cli);
    // The settings given (name, value as given; "" for a switch), in the table's order.
    void take(ConfigLayer& layer) const;

private:
    struct Entry {
        const GunicornSetting* setting;
        CLI::Option* option;
        std::vector<std::string> values;
        bool on = false;
    };
    std::deque<Entry> entries_;  // stable addresses: CLI11 writes into them
};

}  // namespace gantry
