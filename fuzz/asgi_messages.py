"""The ASGI app of asgi_message_fuzz: it plays a plan decoded from the fuzzer's bytes - sends of
messages of every type with keys missing, values of the wrong type (status, headers, body,
more_body, trailers, paths, files, offsets; for a websocket scope subprotocols, bytes and text,
close codes and reasons, the denial response), huge and non-latin-1 header bytes, messages out
of order, receives, exceptions, early returns - against gantry's receive/send. The C++ side checks
what reaches the response sink; nothing here asserts anything."""
import asyncio
import os
import tempfile

PLAN = [b""]  # the current input, set by the driver before each request

_DIR = tempfile.mkdtemp(prefix="gantry-asgi-fuzz-")
FILE_PATH = os.path.join(_DIR, "file.txt")
with open(FILE_PATH, "wb") as _f:
    _f.write(b"0123456789" * 100)
OPEN_FILE = open(FILE_PATH, "rb")
CLOSED_FILE = open(FILE_PATH, "rb")
CLOSED_FILE.close()


class BadBool:
    def __bool__(self):
        raise ValueError("no truth value")


class Pairs:
    """An iterable that raises part way."""
    def __iter__(self):
        yield (b"x-a", b"1")
        raise RuntimeError("headers iterator broke")


class DictSub(dict):
    pass


class Reader:
    def __init__(self, data):
        self.data, self.i = data, 0

    def more(self):
        return self.i < len(self.data)

    def byte(self):
        if self.i >= len(self.data):
            return 0
        b = self.data[self.i]
        self.i += 1
        return b

    def pick(self, options):
        return options[self.byte() % len(options)]

    def blob(self, limit=64):
        n = self.byte() % (limit + 1)
        out = self.data[self.i:self.i + n]
        self.i += n
        return out


MISSING = object()
HUGE = b"h" * 70000


def header_part(r):
    kind = r.byte() % 16
    if kind == 0:
        return b"x-fuzz"
    if kind == 1:
        return r.blob(16)  # any bytes: non-token, non-latin-1, CR/LF, NUL
    if kind == 2:
        return "x-str"
    if kind == 3:
        return r.byte()
    if kind == 4:
        return None
    if kind == 5:
        return bytearray(r.blob(8))
    if kind == 6:
        return memoryview(r.blob(8))
    if kind == 7:
        return HUGE
    if kind == 8:
        return b"a\r\nb: c"
    if kind == 9:
        return b"\xff\xfe\x80"
    if kind == 10:
        return "\u00e9\u4e2d".encode("utf-8")
    if kind == 11:
        return b""
    if kind == 12:
        return b" \t padded \t "
    if kind == 13:
        return b"content-length"
    if kind == 14:
        return str(r.byte()).encode()
    return b"transfer-encoding"


def headers(r):
    kind = r.byte() % 10
    if kind == 0:
        return MISSING
    if kind == 1:
        return None
    if kind == 2:
        return "not a list"
    if kind == 3:
        return 7
    if kind == 4:
        return Pairs()
    if kind == 5:
        return {b"x-dict": b"v"}
    if kind == 6:
        return [(b"a", b"b", b"c")]
    if kind == 7:
        return [b"ab"]
    out = []
    for _ in range(r.byte() % 6):
        pair = [header_part(r), header_part(r)]
        out.append(tuple(pair) if r.byte() & 1 else pair)
    return (x for x in out) if kind == 8 else out


def truth(r):
    return r.pick([MISSING, True, False, 1, 0, "x", None, BadBool(), 2 ** 70])


def number(r):
    return r.pick([MISSING, 0, 1, 5, 999, -1, 2 ** 63, 2 ** 70, "1", None, 1.5, True])


BODIES = [MISSING, b"", None, bytearray(b"ba"), memoryview(b"mv"), "str body", 5, None,
          b"B" * 300000, [b"list"], memoryview(b"abcdef")[::2], object()]


def body(r):
    kind = r.byte() % len(BODIES)
    return r.blob() if kind == 2 else BODIES[kind]


def message(r):
    kind = r.byte() % 8
    m = DictSub() if r.byte() % 16 == 0 else {}
    if kind == 0:
        m["type"] = "http.response.start"
        m["status"] = r.pick([200, 204, 304, 404, 500, 99, 100, 999, 1000, -1, 2 ** 70, "200", None, 200.0, True])
        for key, value in (("headers", headers(r)), ("trailers", truth(r))):
            if value is not MISSING:
                m[key] = value
    elif kind == 1:
        m["type"] = "http.response.body"
        for key, value in (("body", body(r)), ("more_body", truth(r))):
            if value is not MISSING:
                m[key] = value
    elif kind == 2:
        m["type"] = "http.response.trailers"
        for key, value in (("headers", headers(r)), ("more_trailers", truth(r))):
            if value is not MISSING:
                m[key] = value
    elif kind == 3:
        m["type"] = "http.response.pathsend"
        path = r.pick([MISSING, FILE_PATH, "/nonexistent/x", _DIR, 12, FILE_PATH.encode(), "a\x00b", None])
        if path is not MISSING:
            m["path"] = path
    elif kind == 4:
        m["type"] = "http.response.zerocopysend"
        for key, value in (("file", r.pick([MISSING, OPEN_FILE, OPEN_FILE.fileno(), CLOSED_FILE, None, "f", -1, 10 ** 6])),
                           ("offset", number(r)), ("count", number(r)), ("more_body", truth(r))):
            if value is not MISSING:
                m[key] = value
    elif kind == 5:
        m["type"] = r.pick(["http.request", "http.disconnect", "lifespan.startup.complete", "websocket.send",
                            "", "http.response.bodyX", r.blob(8).decode("latin-1")])
    elif kind == 6:
        return r.pick([None, [], "http.response.body", 5, ("type", "x"), b"{}"])
    else:
        m[r.pick(["type", b"type", 1, None])] = r.pick([5, None, b"http.response.start", ["x"]])
    return m


def ws_message(r):
    """A message for a websocket scope: the handshake's decisions, data, close and the denial
    response, with keys missing or of the wrong type, out of order as the plan has them."""
    kind = r.byte() % 7
    m = {}
    if kind == 0:
        m["type"] = "websocket.accept"
        for key, value in (("subprotocol", r.pick([MISSING, None, "chat", "a b", b"chat", 5, "", "x" * 300, "\u00e9"])),
                           ("headers", headers(r))):
            if value is not MISSING:
                m[key] = value
    elif kind == 1:
        m["type"] = "websocket.send"
        data = r.pick([MISSING, None, b"", "blob", bytearray(b"ba"), memoryview(b"mv"), "str", 5, HUGE])
        text = r.pick([MISSING, None, "", "t", "\ud800", b"b", 5, "\u00e9" * 1000, "blob"])
        for key, value in (("bytes", r.blob() if data == "blob" else data),
                           ("text", r.blob().decode("latin-1") if text == "blob" else text)):
            if value is not MISSING:
                m[key] = value
    elif kind == 2:
        m["type"] = "websocket.close"
        for key, value in (("code", r.pick([MISSING, None, 1000, 1005, 1011, 4000, 999, 5000, "1000", 2 ** 70, True, -1])),
                           ("reason", r.pick([MISSING, None, "", "bye", "r" * 124, "\u00e9" * 61, "\u00e9" * 62, 5, b"x", "\ud800"]))):
            if value is not MISSING:
                m[key] = value
    elif kind == 3:
        m["type"] = "websocket.http.response.start"
        m["status"] = r.pick([403, 200, 101, 199, 999, 1000, "403", None, 2 ** 70, 401.0])
        value = headers(r)
        if value is not MISSING:
            m["headers"] = value
    elif kind == 4:
        m["type"] = "websocket.http.response.body"
        for key, value in (("body", body(r)), ("more_body", truth(r))):
            if value is not MISSING:
                m[key] = value
    elif kind == 5:
        m["type"] = r.pick(["websocket.connect", "websocket.receive", "websocket.disconnect", "http.response.start",
                            "", "websocket.sendX", r.blob(8).decode("latin-1")])
    else:
        return message(r)  # an HTTP message, or no message at all
    return m


def decode(data, websocket=False):
    r = Reader(data)
    ops = []
    message_of = ws_message if websocket else message
    while r.more() and len(ops) < 64:
        op = r.byte() % 12
        if op < 5:
            ops.append(("send", message_of(r)))
        elif op == 10:
            ops.append(("send2", (message_of(r), message_of(r))))  # two sends at once, from two tasks
        elif op == 11:
            ops.append(("receive2", None))
        elif op == 5:
            ops.append(("receive", None))
        elif op == 6:
            ops.append(("sleep", None))
        elif op == 7:
            ops.append(("catch", None))
        elif op == 8:
            # Not KeyboardInterrupt/SystemExit: asyncio lets those out of the loop itself.
            ops.append(("raise", r.pick([ValueError("fuzz"), asyncio.CancelledError(), OSError("os")])))
        else:
            ops.append(("return", None))
    return ops


async def app(scope, receive, send):
    catch = False
    for op, arg in decode(PLAN[0], scope["type"] == "websocket"):
        try:
            if op == "send":
                await send(arg)
            elif op == "send2":
                await asyncio.gather(send(arg[0]), send(arg[1]))
            elif op == "receive":
                await receive()
            elif op == "receive2":
                await asyncio.gather(receive(), receive())
            elif op == "sleep":
                await asyncio.sleep(0)
            elif op == "catch":
                catch = not catch
            elif op == "raise":
                raise arg
            else:
                return
        except Exception:
            if not catch:
                raise
