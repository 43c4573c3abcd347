"""Probe ASGI app for the WebSocket end-to-end tests (tests/e2e/test_websocket.py and the WebSocket
hostile corpus): each path exercises one part of ASGI's websocket scope. No framework, standard
library only, so it runs unchanged under gantry, uvicorn and daphne.

WebSocket paths:
  /echo               accept, send back every text and bytes message as it came
  /subprotocol        accept with the highest "chat.vN" the client offered (none if it offered
                      none), then send the choice as text ("" for none)
  /headers            accept with two extra response headers (x-ws-probe: yes, set-cookie: ws=1)
  /scope              accept, send the scope as JSON text (bytes as latin-1 strings)
  /close-before-accept   websocket.close instead of accept: the server answers 403
  /deny               the websocket.http.response extension: 401, a header, a body in two pieces
  /close-with?code=4001&reason=bye   accept, then the server closes with that code and reason
  /raise-before-accept, /raise-after-accept   the app raises (500 / close 1011)
  /disconnect-log?note=FILE   accept, echo, and write the websocket.disconnect it gets to FILE
                      as JSON {"code", "reason"} (also for /echo?note=FILE)
  /slow?gate=NAME     accept, receive nothing until HTTP /open?gate=NAME (the server must stop
                      reading the socket meanwhile), then take every message; answer a text one
                      with the number of bytes of the binary ones before it
  /flood?n=N&size=B&note=FILE   accept, send N binary messages of B bytes, writing the count sent
                      so far to FILE after each send returns (backpressure towards the app)
Any other WebSocket path is accepted and echoed. HTTP: /pid (the worker's pid as JSON),
/open?gate=NAME (opens the gate a /slow waits at); any other path answers "ws_probe GET /path" (a WebSocket handshake the server passes on as plain HTTP ends up
here). The lifespan puts the worker's pid in its state (scope["state"]["started_by"]).
"""
import asyncio
import json
import os
from urllib.parse import parse_qs

# Gates a /slow WebSocket waits at before it receives, opened by an HTTP request (/open?gate=NAME):
# a test holds the app back without a sleep on either side. Per worker process.
_gates = {}


def _gate(name):
    return _gates.setdefault(name, asyncio.Event())


def _query(scope):
    return {k: v[-1] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}


def _text(value):
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _scope_as_json(scope):
    out = {}
    for key, value in scope.items():
        if key == "headers":
            value = [[_text(k), _text(v)] for k, v in value]
        elif key == "state":
            value = dict(value)
        elif isinstance(value, (bytes, tuple)):
            value = _text(value) if isinstance(value, bytes) else list(value)
        out[key] = value
    out["types"] = {k: type(v).__name__ for k, v in scope.items()}
    out["header_types"] = sorted({type(x).__name__ for pair in scope["headers"] for x in pair})
    return json.dumps(out, sort_keys=True, default=repr)


def _note(query, text):
    if "note" in query:
        with open(query["note"], "w") as f:
            f.write(text)


async def _echo_until_disconnect(receive, send, query):
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            _note(query, json.dumps({"code": message.get("code", 1000), "reason": message.get("reason")}))
            return
        assert message["type"] == "websocket.receive", message
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


def _chosen_subprotocol(offered):
    """The highest chat.vN the client offered (chat.v10 above chat.v9), or None."""
    versions = [p for p in offered if p.startswith("chat.v") and p[6:].isdigit()]
    return max(versions, key=lambda p: int(p[6:]), default=None)


async def websocket(scope, receive, send):
    path, query = scope["path"], _query(scope)
    connect = await receive()
    assert connect["type"] == "websocket.connect", connect

    if path == "/close-before-accept":
        return await send({"type": "websocket.close"})
    if path == "/deny":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer realm=\"probe\"")]})
        await send({"type": "websocket.http.response.body", "body": b"denied: ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"no token\n"})
        return
    if path == "/raise-before-accept":
        raise RuntimeError("ws_probe: deliberate failure before accept")

    accept = {"type": "websocket.accept"}
    if path == "/subprotocol":
        chosen = _chosen_subprotocol(scope.get("subprotocols", []))
        if chosen:
            accept["subprotocol"] = chosen
        await send(accept)
        await send({"type": "websocket.send", "text": chosen or ""})
        return await _echo_until_disconnect(receive, send, query)
    if path == "/headers":
        accept["headers"] = [(b"x-ws-probe", b"yes"), (b"set-cookie", b"ws=1")]
    await send(accept)

    if path == "/scope":
        await send({"type": "websocket.send", "text": _scope_as_json(scope)})
        return await _echo_until_disconnect(receive, send, query)
    if path == "/close-with":
        return await send({"type": "websocket.close", "code": int(query.get("code", "1000")),
                           "reason": query.get("reason", "")})
    if path == "/raise-after-accept":
        raise RuntimeError("ws_probe: deliberate failure after accept")
    if path == "/slow":
        await _gate(query["gate"]).wait()
        received = 0
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                received += len(message["bytes"])
            else:
                await send({"type": "websocket.send", "text": str(received)})
    if path == "/flood":
        n, size = int(query.get("n", "64")), int(query.get("size", "1048576"))
        for i in range(n):
            await send({"type": "websocket.send", "bytes": bytes([65 + i % 26]) * size})
            _note(query, str(i + 1))
        return await _echo_until_disconnect(receive, send, {})
    return await _echo_until_disconnect(receive, send, query)


async def lifespan(scope, receive, send):
    message = await receive()
    assert message["type"] == "lifespan.startup"
    if "state" in scope:
        scope["state"]["started_by"] = os.getpid()
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    assert message["type"] == "lifespan.shutdown"
    await send({"type": "lifespan.shutdown.complete"})


async def http(scope, receive, send):
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/pid":
        body, ctype = json.dumps({"pid": os.getpid()}).encode(), b"application/json"
    elif scope["path"] == "/open":
        _gate(_query(scope)["gate"]).set()
        body, ctype = b"opened\n", b"text/plain"
    else:
        body, ctype = ("ws_probe %s %s\n" % (scope["method"], scope["path"])).encode(), b"text/plain"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    if scope["type"] == "websocket":
        return await websocket(scope, receive, send)
    return await http(scope, receive, send)
