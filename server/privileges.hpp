#pragma once
// --user, --group, --initgroups (gunicorn's): the master binds as root, then every worker gives
// its root up before it loads the app.
#include <string>

namespace gantry {

struct WorkerIdentity {
    int uid = -1;            // -1: keep the master's
    int gid = -1;            // -1: keep the master's (with --user alone: that user's primary group)
    std::string user_name;   // for initgroups
    bool initgroups = false; // the user's supplementary groups; else the group alone
    bool changes() const { return uid >= 0 || gid >= 0; }
};

// "www-data" or "33" -> the identity; `group` "" keeps the user's primary group. Throws
// ConfigError naming `source` for an unknown name.
WorkerIdentity resolve_identity(const std::string& user, const std::string& group, bool initgroups,
                                const std::string& source);

// In a worker, after its listeners and logs are open: setgroups/initgroups, setgid, setuid, in
// that order. Returns "" or what failed (errno's text).
std::string drop_privileges(const WorkerIdentity& identity);

}  // namespace gantry
