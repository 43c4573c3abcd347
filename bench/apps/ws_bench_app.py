"""A bare ASGI app for the WebSocket benchmarks (bench/e2e/ws_compare.py, bench/ws_load.cpp); the
same module for every server.

    ws  /echo        sends every message back, text as text, bytes as bytes
    ws  /broadcast   joins this process's set of connections; a message from any of them is sent to
                     every one (the sender included), one `await send` after the other from the
                     sender's task, as a bare app without a channel layer would
    GET /stats       {"pid": ..., "broadcast_members": ...}: the script's readiness check
"""
import json
import os

# The send callables of this process's /broadcast connections (a broadcast is per process: with
# several workers each worker's connections form their own set).
members = set()


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "websocket":
        path = scope["path"]
        if path == "/echo":
            await echo(receive, send)
        elif path == "/broadcast":
            await broadcast(receive, send)
        else:
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
    elif kind == "http":
        await http(scope, receive, send)
    elif kind == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


async def echo(receive, send):
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return  # websocket.disconnect
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def broadcast(receive, send):
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    # After the accept: a broadcast must not reach a connection that is not open yet.
    members.add(send)
    try:
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            text = message.get("text")
            out = ({"type": "websocket.send", "text": text} if text is not None
                   else {"type": "websocket.send", "bytes": message.get("bytes") or b""})
            for member in list(members):
                try:
                    await member(out)
                except Exception:  # that connection is gone: its own task removes it too
                    members.discard(member)
    finally:
        members.discard(send)


async def http(scope, receive, send):
    if scope["path"] == "/stats":
        status, body = 200, json.dumps({"pid": os.getpid(), "broadcast_members": len(members)}).encode()
    else:
        status, body = 404, b"not found\n"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
