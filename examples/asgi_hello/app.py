"""A bare ASGI app: what uvicorn's and gantry's own cost is measured with (bench/e2e/asgi_compare.py).

    gantry --chdir examples/asgi_hello app:app
    uvicorn --app-dir examples/asgi_hello app:app

Routes: / (a hello), /json, /file (a 1 MiB file: with http.response.pathsend where the server
offers it, else read and sent in 64 KiB body chunks, as an app does on uvicorn), /sleep (awaits
10 ms, then a hello: an app waiting on I/O).
"""
import asyncio
import json
import os

HELLO = b"Hello, world!\n"
FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "one-mib.bin")
CHUNK = 64 * 1024


def _ensure_file():
    if not os.path.exists(FILE) or os.path.getsize(FILE) != 1 << 20:
        tmp = FILE + ".%d" % os.getpid()
        with open(tmp, "wb") as f:
            f.write(bytes(range(256)) * 4096)
        os.replace(tmp, FILE)


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _ensure_file()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _file(scope, send):
    _ensure_file()  # daphne runs no lifespan
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % (1 << 20))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if "http.response.pathsend" in scope.get("extensions", {}):
        await send({"type": "http.response.pathsend", "path": FILE})
        return
    with open(FILE, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            last = len(chunk) < CHUNK
            await send({"type": "http.response.body", "body": chunk, "more_body": not last})
            if last:
                return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    path = scope["path"]
    if path == "/file":
        return await _file(scope, send)
    if path == "/sleep":
        await asyncio.sleep(0.01)
    if path == "/json":
        body = json.dumps({"path": scope["path"], "method": scope["method"],
                           "headers": len(scope["headers"])}).encode()
        ctype = b"application/json"
    else:
        body, ctype = HELLO, b"text/plain"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
