"""The hostile-input corpus (hostile/corpus.toml) against the real binary: each malformed or
hostile request goes out as raw bytes on its own connection and must get its expected answer (a
status, several for pipelined requests, or a close without one) and nothing more - a request
smuggled behind a refused one is never answered. Throughout, a second client on a keep-alive
connection of its own is served by the same worker (its pid unchanged), before the hostile bytes
are sent, while their connection is still open, and after.

gantry runs it twice: against the WSGI probe and against the ASGI one (tests/apps/asgi_probe.py, the
same answers from an async app; a case's `asgi_body` is where ASGI's own rules make them differ).

GANTRY_BIN=gunicorn checks the corpus against gunicorn 20.1: a case's `gunicorn` value is what it
answers where gantry differs on purpose (see the notes in the corpus)."""
import http.client
import io
import json
import os
import re
import socket
import tomllib

import pytest

from conftest import IO_TIMEOUT, ServerFactory, raw
import ws_raw

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile", "corpus.toml")
IS_GUNICORN = os.path.basename(os.environ.get("GANTRY_BIN", "gantry").split()[0]).startswith("gunicorn")
_REPEAT = re.compile(r"\{\{(\d+)\*((?:(?!\{\{|\}\}).)*)\}\}", re.S)


def expand(text):
    """'{{N*text}}' -> text repeated N times, innermost first (they nest)."""
    while True:
        expanded = _REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), text)
        if expanded == text:
            return text
        text = expanded


def load_cases(path=CORPUS):
    with open(path, "rb") as f:
        cases = tomllib.load(f)["case"]
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names in %s" % path
    for c in cases:
        c["raw"] = expand(c["request"]).encode("latin-1")
        for key in ("body", "gunicorn_body", "asgi_body"):
            if key in c:
                c[key] = expand(c[key]).encode("latin-1")
    return cases


CASES = load_cases()


class _Stream(io.BytesIO):
    def close(self):  # http.client closes its file after each response; several share this one
        pass


class _Sock:
    def __init__(self, stream):
        self._stream = stream

    def makefile(self, *a, **kw):
        return self._stream


def parse_responses(data):
    """The responses in a byte stream, in order (interim 1xx ones skipped, as clients do)."""
    stream = _Stream(data)
    responses = []
    while stream.tell() < len(data):
        r = http.client.HTTPResponse(_Sock(stream))
        r.begin()
        r.body = r.read()
        responses.append(r)
    return responses


def exchange(server, data):
    """Sends `data` on a new connection, half-closes, and returns everything the server sent
    until it closed (a reset after the answer keeps what arrived)."""
    sock = server.connect(timeout=IO_TIMEOUT)
    received = []
    try:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before taking all of it (an over-long line)
        yield
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received.append(chunk)
    finally:
        sock.close()
    yield b"".join(received)


def worker_pid(conn):
    conn.request("GET", "/pid")
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, (r.status, body)
    return json.loads(body)["pid"]


# gantry runs the corpus against the WSGI probe and against the ASGI probe (the same answers from
# an async app): the parser and the limits are shared, and neither app side may turn a refusal
# into a crash or an answer. gunicorn has only the WSGI one.
INTERFACES = ["wsgi"] if IS_GUNICORN else ["wsgi", "asgi"]


@pytest.fixture(scope="module", params=INTERFACES)
def hostile_server(tmp_path_factory, request):
    factory = ServerFactory(tmp_path_factory)
    if IS_GUNICORN:
        # gthread for keep-alive and a second client served while a hostile one is connected.
        args = ["-k", "gthread", "--threads", "4"]
    else:
        args = ["--limit-request-body", "65536"]
    app = "asgi_probe:app" if request.param == "asgi" else "probe:app"
    server = factory(app, *args, workers=1)
    server.interface = request.param
    conn = server.http()
    server.first_pid = worker_pid(conn)
    conn.close()
    yield server
    factory.teardown()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_hostile_request(hostile_server, case):
    expected = case.get("gunicorn", case["expect"]) if IS_GUNICORN else case["expect"]
    if expected == "skip":
        pytest.skip("not comparable with gunicorn: %s" % case.get("note", "a gantry-only limit"))
    server = hostile_server
    side = server.http()
    try:
        assert worker_pid(side) == server.first_pid
        talk = exchange(server, case["raw"])
        next(talk)  # sent, not yet read: the other client is served meanwhile
        assert worker_pid(side) == server.first_pid
        data = next(talk)
        try:
            responses = parse_responses(data)
        except (http.client.HTTPException, ValueError) as e:
            pytest.fail("unparsable answer (%s): %r" % (e, data[:300]))
        statuses = [r.status for r in responses]
        if expected == "close":
            assert statuses == [], data[:300]
        elif isinstance(expected, list):
            assert statuses == expected, data[:300]
        else:
            assert statuses == [expected], data[:300]
        body = case.get("gunicorn_body", case.get("body")) if IS_GUNICORN else case.get("body")
        if server.interface == "asgi":
            body = case.get("asgi_body", body)
        if body is not None and not (IS_GUNICORN and "gunicorn" in case):
            assert responses[0].body == body
        # The worker that answered is still the one serving: same pid, same connection.
        assert worker_pid(side) == server.first_pid
    finally:
        side.close()
    status, _, body = server.get("/hello")
    assert status == 200 and body.startswith(b"probe GET /hello"), (status, body)


@pytest.mark.skipif(IS_GUNICORN, reason="gantry's log line")
def test_refusals_are_logged_at_debug_level_only(start_server):
    """A refused request leaves a line in the error log with --log-level debug, none by default
    (a flood of bad requests must not fill the log)."""
    quiet = start_server("probe:app")
    loud = start_server("probe:app", "--log-level", "debug")
    for s in (quiet, loud):
        with s.connect() as sock:
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 400 ")
    assert loud.wait_for_output(r"refused a request from 127\.0\.0\.1: 400 Bad Request"), loud.log()
    quiet.assert_serving()
    assert "refused" not in quiet.stderr(), quiet.log()


def test_corpus_is_large_and_covers_each_kind():
    """At least 100 cases, and every kind of hostile input the corpus exists for."""
    assert len(CASES) >= 100
    names = " ".join(c["name"] for c in CASES)
    for kind in ("cl-te", "te-cl", "te-duplicate", "te-vertical-tab", "cl-duplicate", "fold-", "nul-in",
                 "bare-lf", "method-", "version-", "asterisk-", "absolute-form", "chunk-extension-huge",
                 "chunk-trailer", "chunk-size-hex-overflow", "percent-", "long-request-line",
                 "long-header-name", "long-header-value", "many-headers", "host-missing", "expect-"):
        assert kind in names, kind


# ---- the WebSocket corpus (hostile/websocket.toml) against tests/apps/ws_probe.py ---------------

WS_CORPUS = os.path.join(os.path.dirname(CORPUS), "websocket.toml")


def load_ws_cases(path=WS_CORPUS):
    with open(path, "rb") as f:
        cases = tomllib.load(f)["case"]
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names in %s" % path
    for c in cases:
        for key in ("frames", "then", "body"):
            if key in c:
                c[key] = expand(c[key]).encode("latin-1")
        assert (c["expect"] == 101) == ("close" in c), c["name"]  # a 101 ends in a close frame
    return cases


WS_CASES = load_ws_cases()


def ws_request(case):
    key = ws_raw.handshake_request()[1].decode()
    return expand(case["request"].replace("{{key}}", key)).encode("latin-1")


@pytest.fixture(scope="module")
def ws_hostile_server(tmp_path_factory):
    factory = ServerFactory(tmp_path_factory)
    try:
        server = factory("ws_probe:app", workers=1)
        conn = server.http()
        server.first_pid = worker_pid(conn)
        conn.close()
        server.bystander = ws_raw.RawWebSocket.connect(server, "/echo", timeout=IO_TIMEOUT)
        yield server
        server.bystander.close()
    finally:
        factory.teardown()  # also when the setup failed: no server outlives the module


def _bystander_echoes(server, text):
    server.bystander.send_text(text)
    assert server.bystander.read_message() == (ws_raw.OP_TEXT, text.encode())


def _frames_exchange(server, case):
    """Handshake (101), the case's frames, its replies, its `then` frames, then every frame up to
    the server's close and the end of the connection: (replies as "kind:payload", close code)."""
    with ws_raw.RawWebSocket(server.connect(timeout=IO_TIMEOUT)) as c:
        c.send(ws_request(case) + (case["frames"] if case.get("early") else b""))
        head = c.read_head()
        assert head.startswith(b"HTTP/1.1 101 "), head
        if not case.get("early"):
            c.send(case["frames"])
        replies, code = [], None
        while len(replies) < len(case.get("replies", [])) and code is None:
            _, op, payload = c.read_frame()
            if op == ws_raw.OP_CLOSE:
                code = ws_raw.close_code(payload)[0]
            else:
                replies.append((ws_raw.OP_NAMES.get(op, op), payload))
        if code is None:
            c.send(case.get("then", b""))
            _bystander_echoes(server, "during %s" % case["name"])
            more, code, _ = c.read_until_close()
            replies += more
        assert c.closed_by_peer(), "still open after the close frame"
    return ["%s:%s" % (kind, payload.decode("latin-1")) for kind, payload in replies], code


def _refused_exchange(server, case):
    """The handshake and the one answer to it (the connection may go on: a plain HTTP answer)."""
    with raw(server) as conn:
        conn.send(ws_request(case) + (case["frames"] if case.get("early") else b""))
        _bystander_echoes(server, "during %s" % case["name"])
        return conn.response()


@pytest.mark.skipif(IS_GUNICORN, reason="gunicorn has no WebSocket")
@pytest.mark.parametrize("case", WS_CASES, ids=[c["name"] for c in WS_CASES])
def test_hostile_websocket(ws_hostile_server, case):
    server = ws_hostile_server
    _bystander_echoes(server, "before %s" % case["name"])
    if case["expect"] == 101:
        replies, code = _frames_exchange(server, case)
        assert code == case["close"], (code, replies)
        assert replies == case.get("replies", replies)
    else:
        r = _refused_exchange(server, case)
        assert r.status == case["expect"], (r.status, r.getheaders(), r.body[:300])
        assert r.getheader("Upgrade") is None and r.getheader("Sec-WebSocket-Accept") is None
        if "header" in case:
            name, _, value = case["header"].partition(": ")
            assert r.getheader(name) == value, r.getheaders()
        if "body" in case:
            assert r.body == case["body"]
    _bystander_echoes(server, "after %s" % case["name"])
    side = server.http()
    try:
        assert worker_pid(side) == server.first_pid  # the same worker throughout
    finally:
        side.close()


def test_websocket_corpus_covers_each_kind():
    names = " ".join(c["name"] for c in WS_CASES)
    for kind in ("ws-control-", "ws-version-", "ws-key-missing", "ws-key-not-16-bytes", "ws-upgrade-",
                 "ws-frame-unmasked", "ws-frame-reserved-opcode", "ws-frame-fragmented-close",
                 "ws-frame-bad-utf8", "ws-frame-length-huge", "ws-frames-in-the-handshakes-packet"):
        assert kind in names, kind
