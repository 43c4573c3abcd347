#pragma once
// The Content-Type of a static file from its name: a table of modern web types (nginx's mime.types
// and whitenoise's additions, with the 2022 RFC 9239 `text/javascript`), `; charset=utf-8` on
// text types, and which types are worth compressing.
#include <string>
#include <string_view>

namespace gantry {

struct ContentType {
    std::string value;        // "text/css; charset=utf-8"; "application/octet-stream" when unknown
    bool compressible = false; // text-like: worth a .gz/.br/.zst variant
};

// From the file name's last extension, case-insensitive ("app.JS" -> text/javascript).
ContentType content_type_for(std::string_view file_name);

}  // namespace gantry
