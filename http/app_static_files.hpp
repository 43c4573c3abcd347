#pragma once
// What an application says about its static files, as embed/ reads it once after the app is
// loaded (Django's STATIC_URL, STATIC_ROOT and finders), for static/ to serve. Plain C++: no
// Python types leave embed/.
#include <string>
#include <vector>

namespace gantry {

// One directory the files of a prefix come from. `sub_prefix` places its files deeper in the URL
// space (Django's STATICFILES_DIRS = [("vendor", "/srv/vendor")]); "" for the prefix itself.
struct StaticSource {
    std::string dir;
    std::string sub_prefix;
};

struct DjangoStaticSettings {
    bool found = false;            // a Django app with settings configured
    bool debug = false;            // settings.DEBUG: dev mode, as runserver
    std::string static_url;        // settings.STATIC_URL as a path ("/static/"); "" if unset or absolute
    std::string static_root;       // settings.STATIC_ROOT; "" if unset
    std::vector<StaticSource> finder_sources;  // staticfiles finders' directories, in their order
    std::vector<std::string> notes;            // what could not be followed (a custom finder), for the log
};

}  // namespace gantry
