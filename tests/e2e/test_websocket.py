"""WebSocket (ASGI's websocket scope) against the real binary, with Debian's `websockets` 10.4
client (asyncio API) and raw sockets (tests/e2e/ws_raw.py) for what a client library will not do:
the handshake and its scope, messages both ways, close codes both ways, subprotocols and extra
headers, per-message deflate, the app denying or failing, pings a client never answers,
--ws-max-size, malformed frames, backpressure both ways, 5,000 connections on one worker, the
drain on TERM, --limit-concurrency, the access log and the metrics. The app is
tests/apps/ws_probe.py; more malformed handshakes and frames are in hostile/websocket.toml.

Where gantry is specified to differ from uvicorn 0.17 (websockets 10.4), which passes the rest:
the app is told the code the server closed with (uvicorn says 1006), the close reason reaches
websocket.disconnect, raw_path is bytes, an app raising after accept or a draining worker closes
with a code (1011, 1001) instead of dropping the connection, and the http.response extension,
--ws none, --limit-concurrency, the access log and the metrics are gantry's."""
import asyncio
import json
import os
import re
import resource
import signal
import socket

import pytest
import requests
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

from conftest import IO_TIMEOUT, ServerFactory, free_port, raw, rss_bytes, until
import ws_raw
from ws_raw import OP_BINARY, OP_TEXT, RawWebSocket, frame

MB = 1 << 20


def run(coro):
    """Runs one test's client coroutine to its end, bounded (a hang fails instead of waiting)."""
    return asyncio.run(asyncio.wait_for(coro, timeout=IO_TIMEOUT * 12))


def uri(server, path):
    return "ws://%s:%d%s" % (server.host, server.port, path)


def connect(server, path, **kw):
    """websockets.connect with no client pings (they would hide the server's) and no size cap."""
    kw.setdefault("ping_interval", None)
    kw.setdefault("max_size", None)
    kw.setdefault("open_timeout", IO_TIMEOUT)
    return websockets.connect(uri(server, path), **kw)


def read_note(path):
    """The JSON the probe wrote for a websocket.disconnect, once it is there."""
    assert until(lambda: path.exists() and path.read_text(), timeout=IO_TIMEOUT), "the app was not told"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    factory = ServerFactory(tmp_path_factory)
    yield factory("ws_probe:app", "--access-logfile", "-", workers=1)
    factory.teardown()


# ---- messages ----------------------------------------------------------------------------------

def test_echo_text_and_binary(ws):
    async def client():
        async with connect(ws, "/echo") as c:
            for message in ("hello", "héllo ✓ 😀", "", b"\x00\x01\xff", b""):
                await c.send(message)
                got = await c.recv()
                assert got == message and type(got) is type(message)
    run(client())


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_one_megabyte_messages_both_ways(ws, kind):
    data = os.urandom(MB)
    message = data.hex()[:MB] if kind == "text" else data

    async def client():
        async with connect(ws, "/echo") as c:
            for _ in range(3):
                await c.send(message)
                assert await c.recv() == message
    run(client())


def test_a_fragmented_message_reaches_the_app_whole(ws):
    async def client():
        async with connect(ws, "/echo") as c:
            await c.send(["frag", "ment", "ed ✓"])  # an iterable: one message in three frames
            assert await c.recv() == "fragmented ✓"
    run(client())


# ---- the handshake ------------------------------------------------------------------------------

@pytest.mark.parametrize("offered, chosen", [
    (["chat.v1", "chat.v2"], "chat.v2"),
    (["chat.v10", "other", "chat.v9"], "chat.v10"),
    (["other"], None),
    ([], None),
])
def test_the_app_chooses_the_subprotocol(ws, offered, chosen):
    async def client():
        async with connect(ws, "/subprotocol", subprotocols=offered or None) as c:
            assert c.subprotocol == chosen
            assert await c.recv() == (chosen or "")
    run(client())


def test_accept_with_extra_headers(ws):
    async def client():
        async with connect(ws, "/headers") as c:
            assert c.response_headers["x-ws-probe"] == "yes"
            assert c.response_headers["set-cookie"] == "ws=1"
            await c.send("still a websocket")
            assert await c.recv() == "still a websocket"
    run(client())


def test_the_websocket_scope(ws):
    async def client():
        async with connect(ws, "/sc%6Fpe?x=1&y=%C3%A9", subprotocols=["a", "b"],
                           extra_headers=[("X-Custom", "v1"), ("X-Custom", "v2")]) as c:
            return json.loads(await c.recv()), c.local_address
    scope, local = run(client())
    assert scope["type"] == "websocket"
    assert scope["asgi"]["version"] == "3.0"
    assert tuple(map(int, scope["asgi"]["spec_version"].split("."))) >= (2, 3)  # close reasons
    assert scope["http_version"] == "1.1" and scope["scheme"] == "ws"
    assert scope["path"] == "/scope" and scope["raw_path"] == "/sc%6Fpe"
    assert scope["query_string"] == "x=1&y=%C3%A9"
    assert scope["root_path"] == ""
    headers = scope["headers"]
    assert ["host", "%s:%d" % (ws.host, ws.port)] in headers
    assert [h for h in headers if h[0] == "x-custom"] == [["x-custom", "v1"], ["x-custom", "v2"]]
    assert ["sec-websocket-protocol", "a, b"] in headers
    assert all(k == k.lower() for k, _ in headers)
    assert scope["header_types"] == ["bytes"]
    assert scope["types"]["raw_path"] == "bytes" and scope["types"]["query_string"] == "bytes"
    assert scope["client"] == [local[0], local[1]]
    assert scope["server"] == [ws.host, ws.port]
    assert scope["subprotocols"] == ["a", "b"]
    assert scope["state"]["started_by"] == ws.get_json("/pid")["pid"]  # the lifespan's state
    assert "websocket.http.response" in scope["extensions"]
    assert "method" not in scope


def test_close_before_accept_is_403(ws):
    async def client():
        with pytest.raises(InvalidStatusCode) as e:
            async with connect(ws, "/close-before-accept"):
                pass
        return e.value.status_code
    assert run(client()) == 403


def test_the_http_response_extension_denies_with_the_apps_answer(ws):
    with raw(ws) as conn:
        conn.send(ws_raw.handshake_request("/deny")[0])
        r = conn.response()
    assert r.status == 401
    assert r.getheader("WWW-Authenticate") == 'Bearer realm="probe"'
    assert r.getheader("Content-Type") == "text/plain"
    assert r.body == b"denied: no token\n"  # both pieces
    assert r.getheader("Upgrade") is None


def test_a_handshake_to_a_wsgi_app_is_an_ordinary_request(start_server):
    s = start_server("probe:app", "--interface", "wsgi")
    with raw(s) as conn:
        conn.send(ws_raw.handshake_request("/chat")[0])
        r = conn.response()
    assert r.status == 200 and r.body.startswith(b"probe GET /chat")
    assert r.getheader("Upgrade") is None


@pytest.mark.parametrize("deflate", ["true", "false"])
def test_per_message_deflate_is_negotiated_unless_turned_off(start_server, deflate):
    s = start_server("ws_probe:app", "--ws-per-message-deflate", deflate, workers=1)

    async def client():
        async with connect(s, "/echo") as c:  # the client offers permessage-deflate
            for message in ("compressible " * 100_000, os.urandom(MB), "short"):
                await c.send(message)
                assert await c.recv() == message
            return c.response_headers.get("Sec-WebSocket-Extensions")
    extensions = run(client())
    if deflate == "true":
        assert extensions is not None and extensions.startswith("permessage-deflate"), extensions
    else:
        assert extensions is None


def test_ws_none_passes_the_handshake_on_as_an_ordinary_request(start_server):
    """--ws none: the server speaks no WebSocket, the app's HTTP side answers the request."""
    s = start_server("ws_probe:app", "--ws", "none", workers=1)
    with raw(s) as conn:
        conn.send(ws_raw.handshake_request("/echo")[0])
        r = conn.response()
    assert r.status == 200 and r.body == b"ws_probe GET /echo\n"
    assert r.getheader("Upgrade") is None


# ---- close codes ---------------------------------------------------------------------------------

def test_the_client_closes_with_4000_and_the_app_is_told(ws, tmp_path):
    note = tmp_path / "disconnect"

    async def client():
        c = await connect(ws, "/disconnect-log?note=%s" % note)
        await c.send("before closing")
        assert await c.recv() == "before closing"
        await c.close(code=4000, reason="client bye")
        return c.close_code
    assert run(client()) == 4000  # the server's close frame echoes the code
    assert read_note(note) == {"code": 4000, "reason": "client bye"}


def test_the_server_closes_with_the_apps_code_and_reason(ws):
    async def client():
        async with connect(ws, "/close-with?code=4001&reason=bye") as c:
            with pytest.raises(ConnectionClosed):
                await c.recv()
            return c.close_code, c.close_reason
    assert run(client()) == (4001, "bye")


def test_a_client_that_drops_the_connection_is_1006_to_the_app(ws, tmp_path):
    note = tmp_path / "disconnect"
    with RawWebSocket.connect(ws, "/disconnect-log?note=%s" % note) as c:
        c.send_text("hi")
        assert c.read_message() == (OP_TEXT, b"hi")
    assert read_note(note)["code"] == 1006


# ---- the app failing ------------------------------------------------------------------------------

def test_an_app_raising_before_accept_is_500_and_logged(ws):
    async def client():
        with pytest.raises(InvalidStatusCode) as e:
            async with connect(ws, "/raise-before-accept"):
                pass
        return e.value.status_code
    assert run(client()) == 500
    assert ws.wait_for_output(r"Traceback[\s\S]*RuntimeError: ws_probe: deliberate failure before accept"), ws.log()


def test_an_app_raising_after_accept_closes_1011_and_is_logged(ws):
    async def client():
        async with connect(ws, "/raise-after-accept") as c:
            with pytest.raises(ConnectionClosed):
                await c.recv()
            return c.close_code
    assert run(client()) == 1011
    assert ws.wait_for_output(r"Traceback[\s\S]*RuntimeError: ws_probe: deliberate failure after accept"), ws.log()


# ---- pings, sizes, malformed frames ---------------------------------------------------------------

def test_a_client_that_never_answers_pings_is_closed_1011(start_server, tmp_path):
    s = start_server("ws_probe:app", "--ws-ping-interval", "0.2", "--ws-ping-timeout", "0.2", workers=1)
    note = tmp_path / "disconnect"
    with RawWebSocket.connect(s, "/disconnect-log?note=%s" % note, timeout=IO_TIMEOUT) as c:
        frames, code, _ = c.read_until_close(answer_pings=False)
        assert ("ping" in [name for name, _ in frames]), frames
        assert code == 1011
        assert c.closed_by_peer()
    assert read_note(note)["code"] == 1011


def test_a_client_that_answers_pings_stays(start_server, tmp_path):
    """The control for the case above: the same short interval, a client (websockets) that
    answers, and several rounds of pings later (counted on the raw client) it is still open."""
    s = start_server("ws_probe:app", "--ws-ping-interval", "0.1", "--ws-ping-timeout", "0.1", workers=1)
    with RawWebSocket.connect(s, "/echo", timeout=IO_TIMEOUT) as c:
        pings = 0
        while pings < 5:
            _, op, payload = c.read_frame()
            assert op == ws_raw.OP_PING, (op, payload)
            c.send(frame(ws_raw.OP_PONG, payload))
            pings += 1
        c.send_text("still here")
        assert c.read_message() == (OP_TEXT, b"still here")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    factory = ServerFactory(tmp_path_factory)
    yield factory("ws_probe:app", "--ws-max-size", "65536", workers=1)
    factory.teardown()


def test_a_message_at_ws_max_size_passes_and_one_byte_more_is_1009(small):
    async def client():
        async with connect(small, "/echo") as c:
            await c.send(b"x" * 65536)
            assert await c.recv() == b"x" * 65536
            await c.send(b"x" * 65537)
            with pytest.raises(ConnectionClosed):
                await c.recv()
            return c.close_code
    assert run(client()) == 1009


def test_a_fragmented_message_over_ws_max_size_is_1009(small):
    with RawWebSocket.connect(small, "/echo") as c:
        c.send(frame(OP_BINARY, b"a" * 40000, fin=False))
        c.send(frame(ws_raw.OP_CONT, b"b" * 40000))
        frames, code, _ = c.read_until_close()
    assert frames == [] and code == 1009


MALFORMED = {
    # A client's frames must be masked (RFC 6455 5.1).
    "unmasked": (frame(OP_TEXT, b"hello", mask=None), 1002),
    # Opcodes 3-7 and 0xB-0xF are reserved (5.2).
    "bad-opcode": (frame(0x3, b"hello"), 1002),
    "bad-control-opcode": (frame(0xB, b""), 1002),
    # Control frames must not be fragmented (5.5).
    "fragmented-ping": (frame(ws_raw.OP_PING, b"p", fin=False), 1002),
    # ... nor longer than 125 bytes (5.5).
    "long-ping": (frame(ws_raw.OP_PING, b"p" * 126), 1002),
    # RSV1 without a negotiated extension (5.2).
    "rsv1-without-deflate": (frame(OP_TEXT, b"hello", rsv=4), 1002),
    # A continuation with no message begun (5.4).
    "orphan-continuation": (frame(ws_raw.OP_CONT, b"hello"), 1002),
    # A new message while one is still fragmented (5.4).
    "text-inside-fragmented": (frame(OP_TEXT, b"hel", fin=False) + frame(OP_TEXT, b"lo"), 1002),
    # A text message that is not UTF-8 (8.1).
    "bad-utf8": (frame(OP_TEXT, b"caf\xc3"), 1007),
    "bad-utf8-overlong": (frame(OP_TEXT, b"\xc0\xaf"), 1007),
    "bad-utf8-surrogate": (frame(OP_TEXT, b"\xed\xa0\x80"), 1007),
    "bad-utf8-across-fragments": (frame(OP_TEXT, b"ok \xe2\x82", fin=False) + frame(ws_raw.OP_CONT, b"(!"), 1007),
    # A close frame with a one-byte body, or a code no endpoint may send (5.5.1, 7.4.2).
    "close-one-byte": (frame(ws_raw.OP_CLOSE, b"\x03"), 1002),
    "close-code-1005": (frame(ws_raw.OP_CLOSE, ws_raw.close_payload(1005)), 1002),
    "close-code-999": (frame(ws_raw.OP_CLOSE, ws_raw.close_payload(999)), 1002),
}


@pytest.fixture(scope="module")
def bystander(ws):
    """An open WebSocket on the same worker that must keep echoing while others misbehave."""
    c = RawWebSocket.connect(ws, "/echo", timeout=IO_TIMEOUT)
    yield c
    c.close()


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_frame_gets_its_close_code_while_others_go_on(ws, bystander, case, tmp_path):
    data, expected = MALFORMED[case]
    note = tmp_path / "disconnect"
    bystander.send_text("before %s" % case)
    assert bystander.read_message() == (OP_TEXT, ("before %s" % case).encode())
    with RawWebSocket.connect(ws, "/disconnect-log?note=%s" % note) as c:
        c.send_text("valid first")
        assert c.read_message() == (OP_TEXT, b"valid first")
        c.send(data)
        bystander.send_text("during %s" % case)
        assert bystander.read_message() == (OP_TEXT, ("during %s" % case).encode())
        frames, code, _ = c.read_until_close()
        assert frames == [] and code == expected
        assert c.closed_by_peer()
    assert read_note(note)["code"] == expected
    bystander.send_text("after %s" % case)
    assert bystander.read_message() == (OP_TEXT, ("after %s" % case).encode())


def test_pings_and_a_fragmented_message_with_a_ping_inside_are_fine(ws):
    """The controls for the malformed cases: what the rules allow is answered, not refused."""
    with RawWebSocket.connect(ws, "/echo") as c:
        c.send(frame(ws_raw.OP_PING, b"p1"))
        assert c.read_frame() == (True, ws_raw.OP_PONG, b"p1")
        c.send(frame(OP_TEXT, b"hel", fin=False) + frame(ws_raw.OP_PING, b"p2") + frame(ws_raw.OP_CONT, b"lo"))
        assert c.read_frame() == (True, ws_raw.OP_PONG, b"p2")
        assert c.read_frame() == (True, OP_TEXT, b"hello")
        c.send(frame(OP_TEXT, "✓".encode()[:2], fin=False) + frame(ws_raw.OP_CONT, "✓".encode()[2:]))
        assert c.read_frame() == (True, OP_TEXT, "✓".encode())  # a character split across frames
        c.send(frame(ws_raw.OP_CLOSE, ws_raw.close_payload(1000, b"done")))
        frames, code, _ = c.read_until_close()
        assert frames == [] and code == 1000


# ---- backpressure ---------------------------------------------------------------------------------

def test_an_app_that_does_not_receive_stops_the_server_reading(ws):
    """/slow calls no receive() until its gate opens: the worker stops reading the socket (the
    client's send blocks) and its memory stays bounded; once the app receives, every byte the
    client sent reaches it."""
    pid = ws.get_json("/pid")["pid"]
    before = rss_bytes(pid)
    n, size = 256, 256 * 1024
    stream = frame(OP_BINARY, b"s" * size) * n  # 64 MiB of messages
    gate = "slow-%d" % os.getpid()
    with RawWebSocket.connect(ws, "/slow?gate=%s" % gate) as c:
        c.sock.settimeout(1.0)  # how a blocked send is told; never a measure of speed
        sent = 0
        with pytest.raises(socket.timeout):
            while sent < len(stream):
                sent += c.sock.send(stream[sent:sent + MB])
        assert sent < len(stream) // 2, sent  # the socket buffers filled, the worker read no further
        assert rss_bytes(pid) - before < 32 * MB, (before, rss_bytes(pid))
        assert ws.get("/open?gate=%s" % gate)[0] == 200
        c.sock.settimeout(IO_TIMEOUT * 4)
        c.sock.sendall(stream[sent:])
        c.send_text("how many bytes?")
        assert c.read_message() == (OP_TEXT, str(n * size).encode())


def _settled(read, quiet=1.0, timeout=IO_TIMEOUT * 4):
    """read()'s value once it has stayed the same for `quiet` seconds (a producer nothing holds
    back never settles before its end)."""
    import time
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return value
    raise AssertionError("still changing after %.0f s: %r" % (timeout, value))


def test_a_client_that_does_not_read_holds_the_apps_send(ws, tmp_path):
    """/flood sends 128 messages of 1 MiB to a client that reads nothing: the app's send() waits
    (it gets nowhere near 128) and the worker's memory stays bounded; once the client reads, all
    128 arrive in order."""
    n = 128
    note = tmp_path / "sent"
    sent = lambda: int(note.read_text() or 0) if note.exists() else 0  # noqa: E731
    pid = ws.get_json("/pid")["pid"]
    before = rss_bytes(pid)
    with RawWebSocket.connect(ws, "/flood?n=%d&size=%d&note=%s" % (n, MB, note), rcvbuf=1 << 16,
                              timeout=IO_TIMEOUT) as c:
        paused_at = _settled(sent)
        assert 1 <= paused_at < n // 4, paused_at
        assert rss_bytes(pid) - before < 64 * MB, (before, rss_bytes(pid))
        for i in range(n):
            assert c.read_message() == (OP_BINARY, bytes([65 + i % 26]) * MB), i
    assert until(lambda: sent() == n, timeout=IO_TIMEOUT), sent()  # the note follows the last send


# ---- many connections -----------------------------------------------------------------------------

def _raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.fail("RLIMIT_NOFILE hard limit %d is below the %d this test needs" % (hard, need))
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return soft


def test_five_thousand_websockets_on_one_worker(start_server):
    n, batch = 5000, 250
    old = _raise_nofile(n + 1000)
    try:
        # The server inherits the raised limit (its worker holds n sockets too); a WebSocket is
        # one of the worker's --worker-connections (default 1000).
        s = start_server("ws_probe:app", "--worker-connections", str(n + 100), workers=1)

        async def client():
            clients = []
            try:
                for start in range(0, n, batch):
                    clients += await asyncio.gather(*(connect(s, "/echo?i=%d" % i, close_timeout=IO_TIMEOUT)
                                                      for i in range(start, min(n, start + batch))))
                assert len(clients) == n
                sample = clients[::50]
                await asyncio.gather(*(c.send("ping %d" % i) for i, c in enumerate(sample)))
                got = await asyncio.gather(*(c.recv() for c in sample))
                assert got == ["ping %d" % i for i in range(len(sample))]
                assert all(c.open for c in clients)
            finally:
                for start in range(0, len(clients), batch):
                    await asyncio.gather(*(c.close() for c in clients[start:start + batch]))
        run(client())
        assert s.get("/pid")[0] == 200
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (old, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


# ---- the server's side: drain, limits, logs, metrics -----------------------------------------------

def test_a_draining_worker_closes_its_websockets_1001_and_tells_the_app(start_server, tmp_path):
    s = start_server("ws_probe:app", "--graceful-timeout", "1", workers=1)
    note = tmp_path / "disconnect"

    async def client():
        async with connect(s, "/disconnect-log?note=%s" % note, close_timeout=IO_TIMEOUT) as c:
            await c.send("before the drain")
            assert await c.recv() == "before the drain"
            s.send(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                await c.recv()
            return c.close_code
    assert run(client()) == 1001
    assert read_note(note)["code"] == 1001
    assert s.wait() == 0, s.log()


def test_websockets_count_toward_limit_concurrency(start_server):
    s = start_server("ws_probe:app", "--limit-concurrency", "2", workers=1)

    async def client():
        first = await connect(s, "/echo")
        second = await connect(s, "/echo")
        with pytest.raises(InvalidStatusCode) as refused:
            async with connect(s, "/echo"):
                pass
        assert refused.value.status_code == 503
        await first.send("the open ones work")
        assert await first.recv() == "the open ones work"
        await first.close()

        async def third():  # the server counts the first one out as it finishes: retry until then
            while True:
                try:
                    return await connect(s, "/echo")
                except InvalidStatusCode as e:
                    assert e.status_code == 503
                    await asyncio.sleep(0.05)
        c = await asyncio.wait_for(third(), IO_TIMEOUT)
        await c.send("a place came free")
        assert await c.recv() == "a place came free"
        await asyncio.gather(c.close(), second.close())
    run(client())


def test_one_access_log_line_per_websocket_session(ws):
    tag = "session-%d" % os.getpid()

    async def client():
        async with connect(ws, "/echo?tag=%s" % tag) as c:
            for i in range(3):
                await c.send("message %d" % i)
                await c.recv()
    run(client())
    line = r'(?m)^127\.0\.0\.1 - - \[[^\]]+\] "GET /echo\?tag=%s HTTP/1\.1" 101 .*$' % tag
    assert ws.wait_for_output(line, stream="stdout"), ws.log()
    # An HTTP request after the session: once its line is there, the session's would be too.
    ws.get("/after-%s" % tag)
    assert ws.wait_for_output(r'"GET /after-%s HTTP/1\.1" 200' % tag, stream="stdout"), ws.log()
    assert len(re.findall(r"tag=%s\b" % tag, ws.stdout())) == 1, ws.stdout()


def test_prometheus_counts_open_websockets(start_server):
    parser = pytest.importorskip("prometheus_client.parser")
    mport = free_port()
    s = start_server("ws_probe:app", "--metrics-bind", "127.0.0.1:%d" % mport, workers=1)

    def sample(name, labels=None):
        r = requests.get("http://127.0.0.1:%d/metrics" % mport, timeout=IO_TIMEOUT)
        values = [x.value for family in parser.text_string_to_metric_families(r.text)
                  for x in family.samples if x.name == name and (labels is None or x.labels == labels)]
        assert len(values) == 1, r.text
        return values[0]

    def open_websockets():
        return sample("gantry_websocket_connections")

    async def client():
        assert open_websockets() == 0
        clients = [await connect(s, "/echo") for _ in range(3)]
        assert until(lambda: open_websockets() == 3, timeout=IO_TIMEOUT), open_websockets()
        for c in clients:
            await c.send("12345")
            assert await c.recv() == "12345"
        await asyncio.gather(*(c.close() for c in clients))
        assert until(lambda: open_websockets() == 0, timeout=IO_TIMEOUT), open_websockets()
    run(client())
    # Three messages of 5 bytes each way.
    assert sample("gantry_websocket_messages_total", {"direction": "received"}) == 3
    assert sample("gantry_websocket_messages_total", {"direction": "sent"}) == 3
    assert sample("gantry_websocket_bytes_total", {"direction": "received"}) == 15
    assert sample("gantry_websocket_bytes_total", {"direction": "sent"}) == 15
