"""The WSGI app the embed tests drive: one behaviour per path."""
import io
import json
import os
import sys
import tempfile

# close() calls and other facts the tests read back through /facts.
FACTS = []
KEPT = []


class Closing:
    """An iterable with close(), recording that close() ran."""

    def __init__(self, name, chunks, fail_at=None):
        self.name = name
        self.chunks = chunks
        self.fail_at = fail_at
        self.produced = 0

    def __iter__(self):
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise ValueError(f"{self.name} failed at chunk {i}")
            self.produced += 1
            yield chunk

    def close(self):
        FACTS.append(f"closed {self.name} after {self.produced}")


class TrackedFile(io.FileIO):
    def close(self):
        if not self.closed:
            FACTS.append("closed file")
        super().close()


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def environ_view(environ, start_response):
    out = {}
    for key, value in environ.items():
        if isinstance(value, (str, bool, int)) or value is None:
            out[key] = value
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = type(value).__name__
    out["os.environ.GANTRY_TEST_FROM_ENV"] = os.environ.get("GANTRY_TEST_FROM_ENV")
    out["wsgi.file_wrapper.is_class"] = isinstance(environ["wsgi.file_wrapper"], type)
    return _json(start_response, out)


def body_view(environ, start_response):
    stream = environ["wsgi.input"]
    how = environ["PATH_INFO"].rsplit("/", 1)[1]
    if how == "read":
        pieces = [stream.read().decode("latin-1")]
    elif how == "read-sized":
        pieces = []
        while True:
            chunk = stream.read(4)
            if not chunk:
                break
            pieces.append(chunk.decode("latin-1"))
    elif how == "readline":
        pieces = []
        while True:
            line = stream.readline()
            if not line:
                break
            pieces.append(line.decode("latin-1"))
    elif how == "readlines":
        pieces = [line.decode("latin-1") for line in stream.readlines()]
    elif how == "iter":
        pieces = [line.decode("latin-1") for line in stream]
    else:
        raise ValueError(how)
    return _json(start_response, {"pieces": pieces, "type": type(stream).__name__,
                                  "content_length": environ.get("CONTENT_LENGTH")})


def application(environ, start_response):
    path = environ["PATH_INFO"]

    if path.startswith("/django/"):
        import djangoapp
        return djangoapp.application(environ, start_response)
    if path.startswith("/environ"):
        return environ_view(environ, start_response)
    if path.startswith("/body/"):
        return body_view(environ, start_response)
    if path == "/facts":
        facts = list(FACTS)
        FACTS.clear()
        return _json(start_response, facts)

    if path == "/list":
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Multi", "a"), ("X-Multi", "b")])
        return [b"hello ", b"world"]
    if path == "/empty":
        start_response("204 No Content", [])
        return Closing("empty", [])
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"first ")
        write(b"second ")
        return Closing("write", [b"third"])
    if path == "/gen":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing("gen", [b"one", b"", b"two", b"three"])
    if path == "/gen-lazy-start":
        def lazy():
            start_response("200 OK", [("Content-Type", "text/plain")])
            yield b"lazy"
        return lazy()
    if path == "/content-length":
        start_response("200 OK", [("Content-Length", "9")])
        return Closing("content-length", [b"abc", b"def", b"ghi"])
    if path == "/gen-raise":
        start_response("200 OK", [])
        return Closing("gen-raise", [b"ok", b"never"], fail_at=1)
    if path == "/gen-raise-first":
        start_response("200 OK", [])
        return Closing("gen-raise-first", [b"never"], fail_at=0)
    if path == "/long":
        start_response("200 OK", [])
        return Closing("long", [b"x" * 10] * 100)
    if path == "/str-chunk":
        start_response("200 OK", [])
        return Closing("str-chunk", ["not bytes"])
    if path == "/raise":
        return 1 / 0
    if path == "/no-start-response":
        return [b"body"]
    if path == "/start-twice":
        start_response("200 OK", [])
        start_response("200 OK", [])
        return [b""]
    if path == "/bad-header-name":
        start_response("200 OK", [("Bad Name", "x")])
        return [b""]
    if path == "/bad-header-value":
        start_response("200 OK", [("X-Injected", "a\r\nSet-Cookie: evil=1")])
        return [b""]
    if path == "/bad-header-nonlatin1":
        start_response("200 OK", [("X-Snow", "\u2603")])
        return [b""]
    if path == "/bad-header-type":
        start_response("200 OK", [("X-Bytes", b"x")])
        return [b""]
    if path == "/bad-status":
        start_response("OK", [])
        return [b""]
    if path == "/keep-start-response":
        KEPT[:] = [start_response, start_response("200 OK", [])]
        return [b"kept"]
    if path == "/use-kept-start-response":
        KEPT[0]("200 OK", [])
        return [b"unreachable"]
    if path == "/use-kept-write":
        start_response("200 OK", [])
        KEPT[1](b"late")
        return [b"unreachable"]
    if path == "/tuple-headers":
        start_response("200 OK", (["X-List-Pair", "1"], ("X-Tuple-Pair", "2")))
        return (b"tu", b"ple")
    if path == "/htab-header":
        start_response("200 OK", [("X-Tab", "a\tb")])
        return [b""]
    if path == "/exc-info-before":
        start_response("200 OK", [("X-First", "1")])
        try:
            raise KeyError("boom")
        except KeyError:
            start_response("500 Internal Error", [("X-Second", "2")], sys.exc_info())
        return [b"replaced"]
    if path == "/exc-info-after":
        write = start_response("200 OK", [])
        write(b"sent")
        try:
            raise KeyError("too-late")
        except KeyError:
            start_response("500 Internal Error", [], sys.exc_info())
        return [b"unreachable"]
    if path == "/errors":
        errors = environ["wsgi.errors"]
        errors.write("first line\nsecond ")
        errors.writelines(["line\n", "tail"])
        errors.flush()
        return _json(start_response, "ok")
    if path in ("/file", "/file-cl"):
        fd, name = tempfile.mkstemp()
        os.write(fd, b"0123456789abcdef")
        os.close(fd)
        f = TrackedFile(name, "rb")
        os.unlink(name)
        f.seek(3)
        headers = [("Content-Type", "application/octet-stream")]
        if path == "/file-cl":
            headers.append(("Content-Length", "5"))
        start_response("200 OK", headers)
        wrapper = environ["wsgi.file_wrapper"](f, 4)
        return wrapper
    if path == "/bytesio-wrapper":
        import io
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"in memory data"), 4)
    start_response("404 Not Found", [])
    return [b"no route " + path.encode("latin-1")]
