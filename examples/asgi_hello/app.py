"""A bare ASGI app: what uvicorn's and gantry's own cost is measured with (bench/e2e/asgi_compare.py).

    gantry --chdir examples/asgi_hello app:app
    uvicorn --app-dir examples/asgi_hello app:app
"""
import json

HELLO = b"Hello, world!\n"


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/json":
        body = json.dumps({"path": scope["path"], "method": scope["method"],
                           "headers": len(scope["headers"])}).encode()
        ctype = b"application/json"
    else:
        body, ctype = HELLO, b"text/plain"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
