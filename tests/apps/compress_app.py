"""WSGI app for the compression tests: bodies whose size, type and headers the query string sets.

Plain WSGI, standard library only. Every body is deterministic (the test rebuilds it to compare
with what it decompressed): page(n) is n bytes of HTML-like text.
"""
import os
import time
from urllib.parse import parse_qs


def page(n):
    row = "<tr><td class=\"name\">Product %d</td><td class=\"price\">%d.99</td></tr>\n"
    out, i = [], 0
    size = 0
    while size < n:
        line = row % (i, i * 7 % 97)
        out.append(line)
        size += len(line)
        i += 1
    return "".join(out).encode()[:n]


def noise(n):
    """Incompressible bytes, the same every time."""
    out = bytearray()
    x = 2463534242
    while len(out) < n:
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out += x.to_bytes(4, "little")
    return bytes(out[:n])


def _query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _headers(q, ctype, length=None):
    headers = [("Content-Type", q.get("type", ctype))]
    if length is not None and q.get("length", "1") == "1":
        headers.append(("Content-Length", str(length)))
    # Extra headers: ?h=Name:value&h2=Name:value
    for key in ("h", "h2", "h3"):
        if key in q:
            name, _, value = q[key].partition(":")
            headers.append((name, value))
    return headers


def html_view(environ, start_response):
    q = _query(environ)
    body = noise(int(q.get("size", "40000"))) if q.get("noise") else page(int(q.get("size", "40000")))
    start_response(q.get("status", "200 OK"), _headers(q, "text/html; charset=utf-8", len(body)))
    return [body]


def stream_view(environ, start_response):
    """n chunks of `size` bytes, `delay` seconds apart; ?length=N sets a Content-Length."""
    q = _query(environ)
    n, size, delay = int(q.get("n", "5")), int(q.get("size", "300")), float(q.get("delay", "0"))
    headers = _headers(q, "text/html; charset=utf-8")
    if "length" in q:
        headers.append(("Content-Length", q["length"]))
    start_response("200 OK", headers)

    def gen():
        for i in range(n):
            if i and delay:
                time.sleep(delay)
            yield (b"<!-- chunk %d -->" % i) + page(size)

    return gen()


def sse_view(environ, start_response):
    q = _query(environ)
    n, delay = int(q.get("n", "4")), float(q.get("delay", "0.3"))
    start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])

    def gen():
        for i in range(n):
            if i:
                time.sleep(delay)
            yield b"event: tick\ndata: {\"i\": %d}\n\n" % i

    return gen()


def file_view(environ, start_response):
    q = _query(environ)
    path = q["path"]
    size = os.path.getsize(path)
    start_response("200 OK", _headers(q, "text/plain; charset=utf-8", size))
    return environ["wsgi.file_wrapper"](open(path, "rb"), 32 * 1024)


def app(environ, start_response):
    routes = {"/html": html_view, "/stream": stream_view, "/sse": sse_view, "/file": file_view}
    view = routes.get(environ.get("PATH_INFO", ""))
    if view is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"not found\n"]
    return view(environ, start_response)


application = app
