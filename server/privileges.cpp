#include "server/privileges.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "http/config_error.hpp"

namespace gantry {

namespace {

bool all_digits(const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; }

int number(const std::string& s) {
    int v = -1;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

}  // namespace

WorkerIdentity resolve_identity(const std::string& user, const std::string& group, bool initgroups,
                                const std::string& source) {
    WorkerIdentity id;
    id.initgroups = initgroups;
    if (!user.empty()) {
        const passwd* pw = all_digits(user) ? ::getpwuid(static_cast<uid_t>(number(user))) : ::getpwnam(user.c_str());
        if (!pw && !all_digits(user)) throw ConfigError("--user" + source + ": no user named '" + user + "'");
        id.uid = pw ? static_cast<int>(pw->pw_uid) : number(user);
        if (pw) id.user_name = pw->pw_name;
        // Unlike gunicorn (which keeps the master's group, root's), --user alone takes the
        // user's own group: a worker should not keep gid 0.
        if (group.empty() && pw) id.gid = static_cast<int>(pw->pw_gid);
    }
    if (!group.empty()) {
        const struct group* gr = all_digits(group) ? ::getgrgid(static_cast<gid_t>(number(group))) : ::getgrnam(group.c_str());
        if (!gr && !all_digits(group)) throw ConfigError("--group" + source + ": no group named '" + group + "'");
        id.gid = gr ? static_cast<int>(gr->gr_gid) : number(group);
    }
    return id;
}

std::string drop_privileges(const WorkerIdentity& id) {
    if (!id.changes()) return {};
    auto failed = [](const char* what) { return std::string(what) + ": " + std::strerror(errno); };
    if (id.gid >= 0) {
        if (::geteuid() == 0) {
            // Root's supplementary groups must not stay: the user's (--initgroups), or the group alone.
            if (id.initgroups && !id.user_name.empty()) {
                if (::initgroups(id.user_name.c_str(), static_cast<gid_t>(id.gid)) != 0) return failed("initgroups");
            } else {
                gid_t only = static_cast<gid_t>(id.gid);
                if (::setgroups(1, &only) != 0) return failed("setgroups");
            }
        }
        if (static_cast<gid_t>(id.gid) != ::getgid() && ::setgid(static_cast<gid_t>(id.gid)) != 0) return failed("setgid");
    }
    if (id.uid >= 0 && static_cast<uid_t>(id.uid) != ::getuid() && ::setuid(static_cast<uid_t>(id.uid)) != 0)
        return failed("setuid");
    return {};
}

}  // namespace gantry
