"""Probe WSGI app for the end-to-end suite: each route exercises one part of PEP 3333.

Plain WSGI, standard library only, so it runs unchanged under gantry and gunicorn.
"""
import hashlib
import json
import os
import sys
import time
from urllib.parse import parse_qs

# Which process imported this module: with --preload the master does, otherwise each worker.
IMPORT_PID = os.getpid()

CHUNK = 64 * 1024


def _query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _respond(start_response, body, status="200 OK", ctype="text/plain; charset=utf-8", headers=()):
    if isinstance(body, str):
        body = body.encode("utf-8")
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))] + list(headers))
    return [body]


def _json(start_response, obj, status="200 OK"):
    return _respond(start_response, json.dumps(obj, sort_keys=True), status, "application/json")


def _read_all(environ):
    # wsgi.input is read until EOF, as PEP 3333 allows when the server bounds it (gantry and
    # gunicorn both do); read() with no argument is the common Django-style use.
    return environ["wsgi.input"].read()


def environ_view(environ, start_response):
    body = _read_all(environ)
    out = {}
    for key, value in environ.items():
        # str values as is; anything else (streams, tuples, bools...) as its type name, except the
        # few non-str values whose exact value matters.
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, (bool, tuple)):
            out[key] = list(value) if isinstance(value, tuple) else value
        else:
            out[key] = type(value).__name__
    out["_body"] = body.decode("latin-1")
    out["_body_sha256"] = hashlib.sha256(body).hexdigest()
    out["_body_len"] = len(body)
    # Capabilities the suite checks without being able to see the objects themselves.
    out["_input_has"] = [m for m in ("read", "readline", "readlines", "__iter__") if hasattr(environ["wsgi.input"], m)]
    out["_errors_has"] = [m for m in ("write", "writelines", "flush") if hasattr(environ["wsgi.errors"], m)]
    out["_file_wrapper_callable"] = callable(environ.get("wsgi.file_wrapper"))
    return _json(start_response, out)


def echo(environ, start_response):
    body = _read_all(environ)
    ctype = environ.get("CONTENT_TYPE") or "application/octet-stream"
    return _respond(start_response, body, ctype=ctype)


def sha256_view(environ, start_response):
    digest = hashlib.sha256()
    total = 0
    stream = environ["wsgi.input"]
    while True:
        piece = stream.read(CHUNK)
        if not piece:
            break
        digest.update(piece)
        total += len(piece)
    return _json(start_response, {"sha256": digest.hexdigest(), "length": total})


def readline_view(environ, start_response):
    """Body expected: several lines. Reads the first with readline(), a bounded one with
    readline(size), the next two with readlines(hint), and the rest by iteration."""
    stream = environ["wsgi.input"]
    first = stream.readline()
    bounded = stream.readline(3)
    rest_of_second = stream.readline()
    some = stream.readlines(1)
    iterated = [line for line in stream]
    out = {
        "first": first.decode("latin-1"),
        "bounded": bounded.decode("latin-1"),
        "rest_of_second": rest_of_second.decode("latin-1"),
        "some": [x.decode("latin-1") for x in some],
        "iterated": [x.decode("latin-1") for x in iterated],
    }
    return _json(start_response, out)


def stream_view(environ, start_response):
    q = _query(environ)
    n = min(int(q.get("n", "5")), 1000)
    delay = min(float(q.get("delay", "0.1")), 5.0)
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        for i in range(n):
            if i:
                time.sleep(delay)
            yield ("chunk %d %.6f\n" % (i, time.time())).encode()

    return gen()


def bigstream_view(environ, start_response):
    """`mb` MiB in 64 KiB chunks from a generator, as fast as the server takes them."""
    mb = min(int(_query(environ).get("mb", "64")), 512)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    chunk = b"x" * 65536

    def gen():
        for _ in range(mb * 16):
            yield chunk

    return gen()


def subprocess_term_view(environ, start_response):
    """Starts a child program and stops it with SIGTERM: it must die of that signal (a server that
    left signals blocked would pass the blocked mask on, and the child would ignore TERM)."""
    import subprocess
    child = subprocess.Popen(["sleep", "30"])
    time.sleep(0.1)
    child.terminate()
    try:
        code = child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        code = "ignored SIGTERM"
    body = str(code).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def write_view(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written-1;")
    write(b"written-2;")
    return [b"returned"]


def file_view(environ, start_response):
    # The suite passes a file it wrote; default to this module's own source.
    path = _query(environ).get("path") or os.path.abspath(__file__)
    size = os.path.getsize(path)
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](open(path, "rb"), 32 * 1024)


def pid_view(environ, start_response):
    q = _query(environ)
    if "sleep" in q:
        time.sleep(min(float(q["sleep"]), 10.0))
    return _json(start_response, {"pid": os.getpid(), "ppid": os.getppid(), "import_pid": IMPORT_PID})


def sleep_view(environ, start_response):
    s = min(float(_query(environ).get("s", "1")), 30.0)
    time.sleep(s)
    return _respond(start_response, "slept %s\n" % s)


_HOARD = []


def hog_view(environ, start_response):
    """Keeps `mb` megabytes alive (touched, so resident): a leaking app for --max-worker-memory."""
    mb = min(int(_query(environ).get("mb", "10")), 1024)
    _HOARD.append(bytearray(b"x" * (mb << 20)))
    return _json(start_response, {"pid": os.getpid(), "held_mb": sum(len(b) for b in _HOARD) >> 20})


def spin_in_python(deadline):
    x = 0
    while time.monotonic() < deadline:
        x += 1
    return x


def spin_view(environ, start_response):
    """Busy in Python (holding the GIL but for its periodic switches) for `s` seconds."""
    s = min(float(_query(environ).get("s", "1")), 60.0)
    spin_in_python(time.monotonic() + s)
    return _respond(start_response, "spun %s\n" % s)


def crash_view(environ, start_response):
    """Crashes the interpreter (a NULL read through ctypes): SIGSEGV, the whole process goes."""
    import ctypes
    ctypes.string_at(0)
    return _respond(start_response, "unreachable\n")


def boom(environ, start_response):
    raise RuntimeError("probe boom: deliberate failure")


def badheader(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Evil", "a\r\nX-Injected: yes")])
    return [b"should never be sent"]


class _CloseMarker:
    """Slow stream whose close() leaves a file behind, so the suite can see close() was called."""

    def __init__(self, path, n, delay):
        self.path, self.n, self.delay = path, n, delay

    def __iter__(self):
        for i in range(self.n):
            if i:
                time.sleep(self.delay)
            yield b"x" * 1024 + b"\n"

    def close(self):
        with open(self.path, "w") as f:
            f.write("closed %d\n" % os.getpid())


def close_marker(environ, start_response):
    q = _query(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return _CloseMarker(q["path"], min(int(q.get("n", "200")), 10000), float(q.get("delay", "0.05")))


def exc_info_view(environ, start_response):
    # Start a response, then replace it with an error one before any body is sent (PEP 3333).
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("replaced")
    except ValueError:
        body = b"replaced by exc_info"
        start_response("503 Service Unavailable",
                       [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))], sys.exc_info())
    return [body]


def errors_view(environ, start_response):
    errors = environ["wsgi.errors"]
    errors.write("probe-errors-line-%s\n" % _query(environ).get("tag", "x"))
    errors.writelines(["probe-errors-writelines\n"])
    errors.flush()
    return _respond(start_response, "logged\n")


def osenv_view(environ, start_response):
    key = _query(environ).get("k", "")
    return _json(start_response, {"key": key, "value": os.environ.get(key), "cwd": os.getcwd(),
                                  "sys_path": sys.path})


def padded_header(environ, start_response):
    # What Django's SimpleCookie.output(header="") gives: a value starting with a space; and tabs.
    return _respond(start_response, "padded\n", headers=[("Set-Cookie", " a=b; Path=/"), ("X-Padded", "\t v \t")])


def default(environ, start_response):
    return _respond(start_response, "probe %s %s\n" % (environ["REQUEST_METHOD"], environ["PATH_INFO"]))


ROUTES = {
    "/environ": environ_view,
    "/echo": echo,
    "/sha256": sha256_view,
    "/readline": readline_view,
    "/stream": stream_view,
    "/write": write_view,
    "/subprocess-term": subprocess_term_view,
    "/bigstream": bigstream_view,
    "/file": file_view,
    "/pid": pid_view,
    "/sleep": sleep_view,
    "/hog": hog_view,
    "/spin": spin_view,
    "/crash": crash_view,
    "/boom": boom,
    "/badheader": badheader,
    "/close-marker": close_marker,
    "/exc_info": exc_info_view,
    "/errors": errors_view,
    "/osenv": osenv_view,
    "/padded-header": padded_header,
}


def app(environ, start_response):
    return ROUTES.get(environ.get("PATH_INFO", ""), default)(environ, start_response)


application = app
