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

from conftest import IO_TIMEOUT, ServerFactory

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
