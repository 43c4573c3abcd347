#include "server/websocket_handshake.hpp"

#include <string_view>

#include "http/text.hpp"
#include "server/response_framing.hpp"

namespace gantry {

namespace {

bool is_base64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// 16 bytes in base64: 22 characters, then "==" (the last one holds 2 bits: A, Q, g or w).
bool is_valid_key(std::string_view key) {
    if (key.size() != 24 || key.substr(22) != "==") return false;
    for (std::size_t i = 0; i < 22; ++i)
        if (!is_base64_char(key[i])) return false;
    char last = key[21];
    return last == 'A' || last == 'Q' || last == 'g' || last == 'w';
}

NativeAnswer refusal(int status, std::string body) {
    NativeAnswer answer;
    answer.head.status = status;
    answer.head.reason = reason_phrase(status);
    answer.head.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
    answer.body = std::move(body);
    return answer;
}

}  // namespace

bool asks_for_websocket(const HttpRequest& request) {
    if (request.method != "GET") return false;
    bool upgrade = false, connection = false;
    for (const auto& h : request.headers) {
        if (iequals(h.name, "Upgrade"))
            upgrade = upgrade || list_contains(h.value, "websocket");
        else if (iequals(h.name, "Connection"))
            connection = connection || list_contains(h.value, "upgrade");
    }
    return upgrade && connection;
}

std::optional<NativeAnswer> refuse_websocket_handshake(const HttpRequest& request) {
    if (request.version < 11) return refusal(400, "400 Bad Request: a WebSocket handshake needs HTTP/1.1\n");
    if (!request.find_header("Host")) return refusal(400, "400 Bad Request: no Host\n");
    const HttpHeader* version = nullptr;
    const HttpHeader* key = nullptr;
    int keys = 0;
    for (const auto& h : request.headers) {
        if (iequals(h.name, "Sec-WebSocket-Version")) {
            version = &h;
        } else if (iequals(h.name, "Sec-WebSocket-Key")) {
            key = &h;
            ++keys;
        }
    }
    if (!version) return refusal(400, "400 Bad Request: no Sec-WebSocket-Version\n");
    if (version->value != "13") {
        NativeAnswer answer = refusal(426, "426 Upgrade Required: this server speaks WebSocket version 13\n");
        answer.head.headers.push_back({"Sec-WebSocket-Version", "13"});
        return answer;
    }
    if (!key || keys > 1 || !is_valid_key(key->value))
        return refusal(400, "400 Bad Request: missing or invalid Sec-WebSocket-Key\n");
    return std::nullopt;
}

}  // namespace gantry
