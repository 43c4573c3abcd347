"""Probe ASGI app for the end-to-end suite: each route exercises one part of ASGI 3.0 (HTTP and
lifespan). Standard library only, so it runs unchanged under gantry and uvicorn.

ASGI_PROBE_LIFESPAN=fail makes startup fail; =raise makes the lifespan raise (as an app without
lifespan support does); ASGI_PROBE_LOG=path appends "startup"/"shutdown" lines there (and "slept" for /sleep?logged=1),
each with the pid.
"""
import asyncio
import hashlib
import json
import os
import time
from urllib.parse import parse_qs

# Gates a request's app waits on before it reads its body (/sha256?gate=NAME), opened by another
# request (/open?gate=NAME): a test holds an upload back without a sleep on either side.
_gates = {}


class ClientGone(Exception):
    """receive() said http.disconnect before the body was whole."""


def _gate(name):
    return _gates.setdefault(name, asyncio.Event())


def _log(line):
    path = os.environ.get("ASGI_PROBE_LOG")
    if path:
        with open(path, "a") as f:
            f.write("%s %d\n" % (line, os.getpid()))


async def _read_body(receive):
    chunks, messages = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        assert message["type"] == "http.request", message
        messages += 1
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), messages


async def _respond(send, body, status=200, ctype=b"text/plain; charset=utf-8", headers=()):
    if isinstance(body, str):
        body = body.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())] + list(headers)})
    await send({"type": "http.response.body", "body": body})


def _touch(query, key="note", text=""):
    """Writes `text` to the file named by query[key], if given: a mark the test waits for."""
    if key in query:
        with open(query[key], "w") as f:
            f.write(text)


async def hang_route(send, query):
    """Awaits for `s` seconds (60), after sending the head and a first chunk with `started=1`;
    --timeout cancels it. The `done` file says the coroutine's finally ran."""
    if query.get("started"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"first part\n", "more_body": True})
    _touch(query)
    try:
        await asyncio.sleep(float(query.get("s", "60")))
    finally:
        _touch(query, "done", "finally ran")
    await _respond(send, "woke up\n")


def spin_in_python(deadline):
    x = 0
    while time.monotonic() < deadline:
        x += 1
    return x


async def block_route(send, query):
    """Blocks the event loop for `s` seconds: time.sleep, or a pure-Python busy loop with
    `how=spin` (synchronous code inside async def, the mistake --loop-block-warn points at)."""
    _touch(query)
    seconds = float(query.get("s", "0.5"))
    if query.get("how") == "spin":
        spin_in_python(time.monotonic() + seconds)
    else:
        time.sleep(seconds)
    await _respond(send, "blocked %s\n" % seconds)


_HOARD = []


async def lifespan(scope, receive, send):
    mode = os.environ.get("ASGI_PROBE_LIFESPAN", "")
    if mode == "raise":
        raise RuntimeError("this app has no lifespan support")
    message = await receive()
    assert message["type"] == "lifespan.startup"
    if mode == "fail":
        await send({"type": "lifespan.startup.failed", "message": "the database is not there"})
        return
    scope["state"]["started_by"] = os.getpid()
    _log("startup")
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    assert message["type"] == "lifespan.shutdown"
    _log("shutdown")
    await send({"type": "lifespan.shutdown.complete"})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    assert scope["type"] == "http"
    try:
        return await http(scope, receive, send)
    except ClientGone:
        return  # as an app does: nobody is left to answer


async def http(scope, receive, send):
    path = scope["path"]
    query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}

    if path == "/scope":
        body, _ = await _read_body(receive)
        out = {k: v for k, v in scope.items() if k not in ("headers", "raw_path", "query_string", "state")}
        out["headers"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
        out["raw_path"] = scope["raw_path"].decode("latin-1")
        out["query_string"] = scope["query_string"].decode("latin-1")
        out["state"] = dict(scope.get("state", {}))
        out["types"] = {k: type(v).__name__ for k, v in scope.items()}
        out["header_types"] = sorted({type(x).__name__ for pair in scope["headers"] for x in pair})
        return await _respond(send, json.dumps(out, sort_keys=True), ctype=b"application/json")
    if path == "/echo":
        body, messages = await _read_body(receive)
        ctype = dict(scope["headers"]).get(b"content-type", b"application/octet-stream")
        return await _respond(send, body, ctype=ctype, headers=[(b"x-messages", str(messages).encode())])
    if path == "/stream":
        await _read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for i in range(int(query.get("n", "5"))):
            await send({"type": "http.response.body", "body": b"chunk %d\n" % i, "more_body": True})
            await asyncio.sleep(float(query.get("delay", "0")))
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if path == "/big":
        # Backpressure: each send waits while the connection's buffer is full.
        size, piece = int(query.get("size", "1048576")), b"x" * 65536
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream"), (b"content-length", str(size).encode())]})
        sent = 0
        while sent < size:
            n = min(len(piece), size - sent)
            sent += n
            await send({"type": "http.response.body", "body": piece[:n], "more_body": sent < size})
        return
    if path == "/chunks":
        # n pieces of `size` bytes with more_body; the count sent so far is kept in `note` after
        # each send returns, so a test sees where backpressure holds the app.
        n, size = int(query.get("n", "128")), int(query.get("size", "1048576"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream"),
                                (b"content-length", str(n * size).encode())]})
        for i in range(n):
            await send({"type": "http.response.body", "body": bytes([65 + i % 26]) * size, "more_body": i < n - 1})
            with open(query["note"], "w") as f:
                f.write(str(i + 1))
        return
    if path == "/gather-sends":
        # Two sends at once (from two tasks), both waiting while the buffer is full.
        size, rounds = 1 << 20, int(query.get("rounds", "4"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(2 * rounds * size).encode())]})
        for i in range(rounds):
            await asyncio.gather(send({"type": "http.response.body", "body": b"a" * size, "more_body": True}),
                                 send({"type": "http.response.body", "body": b"b" * size, "more_body": True}))
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/after-response":
        # receive() after the response: http.disconnect (spec), noted in a file the test reads.
        await _respond(send, "done\n")
        message = await receive()
        with open(query["note"], "w") as f:
            f.write(message["type"])
        return
    if path == "/trailers":
        # The http.response.trailers extension: announced in the start, sent after the body.
        parts = int(query.get("parts", "2"))
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"text/plain"), (b"trailer", b"x-checksum, x-count")]})
        for i in range(parts):
            await send({"type": "http.response.body", "body": b"part %d\n" % i, "more_body": i < parts - 1})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")], "more_trailers": True})
        await send({"type": "http.response.trailers", "headers": [(b"x-count", str(parts).encode())]})
        return
    if path == "/wait-disconnect":
        # A long poll: the body is read, then the app waits for more; a client that leaves ends it.
        await _read_body(receive)
        message = await receive()
        with open(query["note"], "w") as f:
            f.write(message["type"])
        return await _respond(send, "after %s\n" % message["type"])
    if path == "/boom":
        raise ValueError("boom before the response")
    if path == "/boom-after-start":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom after the response started")
    if path == "/bad":
        # One invalid message (test_asgi's invalid-message cases), sent as the response's first.
        start = {"type": "http.response.start", "status": 200, "headers": []}
        bad = {
            "status-str": dict(start, status="200"),
            "status-huge": dict(start, status=2 ** 70),
            "header-nul": dict(start, headers=[(b"x-bad", b"\xff\x00")]),
            "header-name-str": dict(start, headers=[("x-str", b"v")]),
            "header-not-pair": dict(start, headers=[(b"a", b"b", b"c")]),
            "not-a-dict": None,
            "no-type": {"status": 200},
        }
        case = query["case"]
        if case in bad:
            await send(bad[case])
        elif case == "body-str":
            await send(start)
            await send({"type": "http.response.body", "body": "text"})
        elif case == "body-first":
            await send({"type": "http.response.body", "body": b"x"})
        return
    if path == "/no-response":
        return
    if path == "/twice-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        return
    if path == "/padded-header":
        return await _respond(send, "padded\n", headers=[(b"x-padded", b"  v \t")])
    if path == "/status":
        return await _respond(send, "status\n", status=int(query.get("code", "200")))
    if path == "/page":
        return await _respond(send, "<p>%s</p>\n" % ("gantry " * 400), ctype=b"text/html; charset=utf-8")
    if path == "/pathsend":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.pathsend", "path": query["path"]})
        return
    if path == "/zerocopy":
        # The file in `parts` zerocopysend messages; the app's own file position is left alone.
        parts = int(query.get("parts", "1"))
        with open(query["path"], "rb") as f:
            size = os.fstat(f.fileno()).st_size
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            step = -(-size // parts)
            for i in range(parts):
                await send({"type": "http.response.zerocopysend", "file": f, "offset": i * step,
                            "count": min(step, size - i * step), "more_body": i < parts - 1})
            assert f.tell() == 0
        return
    if path == "/sleep":
        _touch(query)  # says the request has reached the app
        await asyncio.sleep(float(query.get("s", "1")))
        if "logged" in query:
            _log("slept")
        return await _respond(send, "slept\n")
    if path == "/hang":
        return await hang_route(send, query)
    if path == "/block":
        return await block_route(send, query)
    if path == "/hog":
        # Keeps `mb` megabytes alive (touched, so resident): a leaking app for --max-worker-memory.
        _HOARD.append(bytearray(b"x" * (min(int(query.get("mb", "10")), 1024) << 20)))
        return await _respond(send, json.dumps({"pid": os.getpid()}), ctype=b"application/json")
    if path == "/sha256":
        # The body hashed piece by piece as receive() gives it, each message's more_body noted;
        # with gate=NAME nothing is read until /open?gate=NAME (backpressure: the upload stalls).
        if "gate" in query:
            await _gate(query["gate"]).wait()
        digest, size, more = hashlib.sha256(), 0, []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                if "note" in query:
                    with open(query["note"], "w") as f:
                        f.write("%s after %d bytes" % (message["type"], size))
                return
            if not more and "started" in query:  # says the first piece has reached the app
                open(query["started"], "w").close()
            digest.update(message["body"])
            size += len(message["body"])
            more.append(message.get("more_body", False))
            if not more[-1]:
                break
        return await _respond(send, json.dumps({"sha256": digest.hexdigest(), "size": size, "more_body": more}),
                              ctype=b"application/json")
    if path == "/open":
        _gate(query["gate"]).set()
        return await _respond(send, "opened\n")
    if path == "/unread":
        # Answers without reading the body: the server drops the rest of it.
        return await _respond(send, "unread\n")
    if path == "/pid":
        return await _respond(send, json.dumps({"pid": os.getpid()}), ctype=b"application/json")
    body, _ = await _read_body(receive)
    # What the WSGI probe answers, so the hostile corpus runs unchanged against both.
    return await _respond(send, "probe %s %s\n" % (scope["method"], path))
