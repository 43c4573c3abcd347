#pragma once
// One entry of the native middleware chain as the user wrote it: `--middleware timing,...` or a
// `[[middleware]]` table in the TOML file (name = "...", then the middleware's own options, kept
// as text for its factory to validate).
#include <string>
#include <utility>
#include <vector>

namespace gantry {

struct MiddlewareSpec {
    std::string name;
    std::vector<std::pair<std::string, std::string>> options;
    bool operator==(const MiddlewareSpec&) const = default;
};

}  // namespace gantry
