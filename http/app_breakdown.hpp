#pragma once
// With --timing full: where the time went inside the app (Django), as the app side measured it.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gantry {

struct AppBreakdown {
    // Each Django middleware's own time (the layers inside it excluded), outermost first.
    std::vector<std::pair<std::string, std::int64_t>> middleware_ns;
    std::string view;              // "shop.views.ping"; empty when no view ran
    std::int64_t view_ns = -1;
    std::int64_t db_queries = 0;
    std::int64_t db_ns = 0;
    std::int64_t db_repeated = 0;  // queries whose exact SQL ran before in the request: the N+1 signal
};

}  // namespace gantry
