#pragma once
// Where a Django app keeps its static files, as embed/ reads them once after the app is loaded
// (plain C++: no Python types leave embed/).
#include <string>
#include <vector>

#include "static/static_index.hpp"

namespace gantry {

struct DjangoStaticSettings {
    bool found = false;            // a Django app with settings configured
    bool debug = false;            // settings.DEBUG: dev mode, as runserver
    std::string static_url;        // settings.STATIC_URL as a path ("/static/"); "" if unset or absolute
    std::string static_root;       // settings.STATIC_ROOT; "" if unset
    std::vector<StaticSource> finder_sources;  // staticfiles finders' directories, in their order
    std::vector<std::string> notes;            // what could not be followed (a custom finder), for the log
};

}  // namespace gantry
