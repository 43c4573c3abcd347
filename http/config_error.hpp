#pragma once
// A setting that cannot be used: a bad flag, value, config file or middleware option. Thrown at
// start-up, never per request; what() is the message for the user.
#include <stdexcept>

namespace gantry {

struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace gantry
