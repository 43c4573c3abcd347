#pragma once
// The HTTP side of a WebSocket's opening handshake (RFC 6455 section 4.2.1): whether a request
// asks to become a WebSocket, and the HTTP answer a malformed one gets before any app sees it.
// Pure: no Asio, no Beast (the accepted handshake is Beast's, in websocket_session.cpp).
#include <optional>

#include "http/request.hpp"
#include "server/native_endpoints.hpp"

namespace gantry {

// A GET with `Upgrade: websocket` and `upgrade` among the Connection tokens: the client wants a
// WebSocket (whether its handshake is valid is refuse_websocket_handshake's question).
bool asks_for_websocket(const HttpRequest& request);

// The answer a request that asks_for_websocket() gets instead of the app when its handshake is
// malformed: 400 for an HTTP/1.0 request, no Host, a missing Sec-WebSocket-Version, or a missing or invalid
// Sec-WebSocket-Key (24 characters of base64 for 16 bytes); 426 with `Sec-WebSocket-Version: 13`
// for any version but 13.
// Nullopt: the handshake may go to the app.
std::optional<NativeAnswer> refuse_websocket_handshake(const HttpRequest& request);

}  // namespace gantry
