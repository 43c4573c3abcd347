#pragma once
// The master process: binds the listen sockets, forks and supervises the workers, like gunicorn's
// arbiter. TERM/INT: graceful stop within --graceful-timeout; QUIT: stop now; a dead worker is
// replaced; a worker that cannot load the app stops the whole server.
#include "server/config.hpp"

namespace gantry {

// Runs the server until it stops; returns the process exit status.
int run_master(const Config& config);

}  // namespace gantry
