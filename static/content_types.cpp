#include "static/content_types.hpp"

#include <array>
#include <cctype>

namespace gantry {

namespace {

struct TypeEntry {
    std::string_view extension;  // lower case, without the dot
    std::string_view type;
    bool text;          // gets "; charset=utf-8"
    bool compressible;  // worth precompressing
};

// Sorted by nothing: ~70 entries, looked up once per file at index time, never per request.
constexpr TypeEntry kTypes[] = {
    // text and code
    {"html", "text/html", true, true},
    {"htm", "text/html", true, true},
    {"css", "text/css", true, true},
    {"js", "text/javascript", true, true},
    {"mjs", "text/javascript", true, true},
    {"cjs", "text/javascript", true, true},
    {"txt", "text/plain", true, true},
    {"md", "text/markdown", true, true},
    {"csv", "text/csv", true, true},
    {"xml", "application/xml", true, true},
    {"xsl", "application/xml", true, true},
    {"json", "application/json", true, true},
    {"map", "application/json", true, true},
    {"jsonld", "application/ld+json", true, true},
    {"webmanifest", "application/manifest+json", true, true},
    {"rss", "application/rss+xml", true, true},
    {"atom", "application/atom+xml", true, true},
    {"ics", "text/calendar", true, true},
    {"vtt", "text/vtt", true, true},
    {"yaml", "application/yaml", true, true},
    {"yml", "application/yaml", true, true},
    {"wasm", "application/wasm", false, true},
    // images
    {"svg", "image/svg+xml", true, true},
    {"svgz", "image/svg+xml", false, false},
    {"png", "image/png", false, false},
    {"jpg", "image/jpeg", false, false},
    {"jpeg", "image/jpeg", false, false},
    {"gif", "image/gif", false, false},
    {"webp", "image/webp", false, false},
    {"avif", "image/avif", false, false},
    {"ico", "image/x-icon", false, true},
    {"bmp", "image/bmp", false, true},
    {"tif", "image/tiff", false, false},
    {"tiff", "image/tiff", false, false},
    {"apng", "image/apng", false, false},
    {"jxl", "image/jxl", false, false},
    // fonts
    {"woff", "font/woff", false, false},
    {"woff2", "font/woff2", false, false},
    {"ttf", "font/ttf", false, true},
    {"otf", "font/otf", false, true},
    {"eot", "application/vnd.ms-fontobject", false, true},
    // audio, video
    {"mp3", "audio/mpeg", false, false},
    {"ogg", "audio/ogg", false, false},
    {"oga", "audio/ogg", false, false},
    {"opus", "audio/ogg", false, false},
    {"wav", "audio/wav", false, false},
    {"flac", "audio/flac", false, false},
    {"m4a", "audio/mp4", false, false},
    {"aac", "audio/aac", false, false},
    {"mp4", "video/mp4", false, false},
    {"m4v", "video/mp4", false, false},
    {"webm", "video/webm", false, false},
    {"ogv", "video/ogg", false, false},
    {"mov", "video/quicktime", false, false},
    // documents and archives
    {"pdf", "application/pdf", false, false},
    {"zip", "application/zip", false, false},
    {"gz", "application/gzip", false, false},
    {"tgz", "application/gzip", false, false},
    {"br", "application/x-brotli", false, false},
    {"zst", "application/zstd", false, false},
    {"bz2", "application/x-bzip2", false, false},
    {"xz", "application/x-xz", false, false},
    {"7z", "application/x-7z-compressed", false, false},
    {"tar", "application/x-tar", false, true},
    {"rtf", "application/rtf", false, true},
    {"doc", "application/msword", false, true},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", false, false},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", false, false},
    {"epub", "application/epub+zip", false, false},
    {"swf", "application/x-shockwave-flash", false, false},
    {"wgsl", "text/wgsl", true, true},
    {"glb", "model/gltf-binary", false, true},
};

}  // namespace

ContentType content_type_for(std::string_view file_name) {
    auto slash = file_name.rfind('/');
    if (slash != std::string_view::npos) file_name.remove_prefix(slash + 1);
    auto dot = file_name.rfind('.');
    if (dot == std::string_view::npos || dot + 1 == file_name.size())
        return {"application/octet-stream", false};
    std::string ext(file_name.substr(dot + 1));
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const auto& t : kTypes) {
        if (t.extension != ext) continue;
        std::string value(t.type);
        if (t.text) value += "; charset=utf-8";
        return {std::move(value), t.compressible};
    }
    return {"application/octet-stream", false};
}

}  // namespace gantry
