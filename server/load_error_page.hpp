#pragma once
// --reload, when the app's code does not import: the 500 page every request gets until a save
// fixes it, as runserver shows a broken project. HTML with the traceback for a browser, plain
// text for a client that does not ask for HTML. Pure: a request and the traceback in, an answer out.
#include <string_view>

#include "http/request.hpp"
#include "server/native_endpoints.hpp"

namespace gantry {

// `traceback`: the Python traceback as the error log shows it (its last line names the error).
NativeAnswer load_error_page(const HttpRequest& request, std::string_view traceback);

}  // namespace gantry
