#pragma once
// The master process: binds the listen sockets, forks and supervises the workers, like gunicorn's
// arbiter. TERM/INT: graceful stop within --graceful-timeout; QUIT: stop now; a dead worker is
// replaced; a worker that cannot load the app stops the whole server.
#include <string>
#include <vector>

#include "server/config.hpp"

namespace gantry {

class EmbeddedConfigReader;  // server/python_config_reader.hpp

// Runs the server until it stops; returns the process exit status. `argv`: the command line,
// to start the binary again on USR2. `reader`: what read a Python config file, whose interpreter
// the master keeps (the workers fork from it); null or unused when there was none.
int run_master(const Config& config, std::vector<std::string> argv = {}, EmbeddedConfigReader* reader = nullptr);

}  // namespace gantry
