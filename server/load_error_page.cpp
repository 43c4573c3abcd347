#include "server/load_error_page.hpp"

#include <string>

namespace gantry {

namespace {

// The error's own line, "SyntaxError: invalid syntax": the traceback's last non-blank line.
std::string_view summary_of(std::string_view traceback) {
    std::size_t end = traceback.find_last_not_of(" \t\r\n");
    if (end == std::string_view::npos) return "The application could not be loaded";
    std::size_t start = traceback.rfind('\n', end);
    start = start == std::string_view::npos ? 0 : start + 1;
    return traceback.substr(start, end + 1 - start);
}

void append_escaped(std::string& out, std::string_view text) {
    for (char c : text) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        default: out += c;
        }
    }
}

bool accepts_html(const HttpRequest& request) {
    const HttpHeader* accept = request.find_header("Accept");
    return accept && (accept->value.find("text/html") != std::string::npos ||
                      accept->value.find("application/xhtml+xml") != std::string::npos);
}

constexpr std::string_view kStyle =
    "body{margin:0;font:14px/1.5 system-ui,sans-serif;color:#222}"
    "header{background:#ffc;border-bottom:1px solid #ddd;padding:16px 24px}"
    "h1{margin:0 0 8px;font-size:20px;font-weight:600}"
    "header p{margin:0;color:#555}main{padding:8px 24px}h2{font-size:16px;margin:16px 0 8px}"
    "pre{background:#f6f6f6;border:1px solid #e4e4e4;padding:12px;overflow:auto;font:13px/1.4 ui-monospace,monospace}";

}  // namespace

NativeAnswer load_error_page(const HttpRequest& request, std::string_view traceback) {
    std::string_view summary = summary_of(traceback);
    std::string path = request.target.substr(0, request.target.find('?'));
    NativeAnswer answer;
    answer.head.status = 500;
    answer.head.reason = "Internal Server Error";
    answer.head.headers.push_back({"Cache-Control", "no-store"});
    if (!accepts_html(request)) {
        answer.head.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
        answer.body.append(summary).append("\n\nThe application could not be loaded (gantry --reload); ")
            .append("fix the code and save: the workers restart by themselves.\n\n")
            .append(traceback);
        if (answer.body.back() != '\n') answer.body += '\n';
        return answer;
    }
    answer.head.headers.push_back({"Content-Type", "text/html; charset=utf-8"});
    std::string& b = answer.body;
    b += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\"><title>";
    append_escaped(b, summary);
    b += "</title><style>";
    b += kStyle;
    b += "</style></head><body><header><h1>";
    append_escaped(b, summary);
    b += "</h1><p>The application could not be loaded, so ";
    append_escaped(b, request.method + " " + path);
    b += " was not served. Fix the code and save: gantry --reload restarts the workers by itself, and "
         "this page stays until the code imports again.</p></header><main><h2>Traceback</h2><pre>";
    append_escaped(b, traceback);
    b += "</pre></main></body></html>\n";
    return answer;
}

}  // namespace gantry
