"""Malformed and oversized requests, slow clients and failing apps: each gets its status (or the
connection is closed), and the worker keeps serving other clients afterwards."""
import http.client
import select
import time

import requests

from conftest import IO_TIMEOUT, raw, status_of


def answer_to(server, data, method="GET"):
    """Send raw bytes on a fresh connection; the status the server answers with, or None if it
    closed without answering."""
    with raw(server) as c:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            return c.response(method=method).status
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return None


def assert_rejected(server, data, status):
    assert answer_to(server, data) == status
    # A bad client must not take the worker down with it.
    server.assert_serving()


def test_malformed_request_line(server):
    assert_rejected(server, b"THIS IS NOT HTTP\r\n\r\n", 400)


def test_request_line_with_bad_version(server):
    assert_rejected(server, b"GET / HTTP/9.x\r\nHost: x\r\n\r\n", 400)


def test_header_without_colon(server):
    assert_rejected(server, b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", 400)


def test_space_before_colon(server):
    # RFC 9112 5.1: whitespace between field name and colon must be rejected with 400.
    assert_rejected(server, b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad : value\r\n\r\n", 400)


def test_content_length_with_transfer_encoding(server):
    # Request smuggling vector: both framings at once is a 400, not a guess.
    assert_rejected(server, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400)


def test_invalid_chunk_size(server):
    assert_rejected(server, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"zz\r\nhello\r\n0\r\n\r\n", 400)


def test_non_numeric_content_length(server):
    assert_rejected(server, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\nhello", 400)


def test_conflicting_content_lengths(server):
    assert_rejected(server, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n"
                            b"hello12", 400)


def test_request_line_over_limit_is_414(server):
    assert_rejected(server, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)


def test_request_line_at_limit_is_fine(server):
    # Default --limit-request-line is 4094: a line just under it is served normally.
    path = b"/" + b"b" * 4000
    status = answer_to(server, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200


def test_custom_limit_request_line(start_server):
    s = start_server("probe:app", "--limit-request-line", "200")
    assert answer_to(s, b"GET /" + b"c" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n") == 414
    assert answer_to(s, b"GET /" + b"c" * 100 + b" HTTP/1.1\r\nHost: x\r\n\r\n") == 200


def test_too_many_header_fields_is_431(server):
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(110))
    assert_rejected(server, b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n", 431)


def test_header_field_over_size_is_431(server):
    assert_rejected(server, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431)


def test_body_over_limit_is_413(start_server):
    s = start_server("probe:app", "--limit-request-body", "1000")
    ok = answer_to(s, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"k" * 1000)
    assert ok == 200
    assert answer_to(s, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n" + b"k" * 1001) == 413
    s.assert_serving()


def test_chunked_body_over_limit_is_413(start_server):
    s = start_server("probe:app", "--limit-request-body", "1000")
    chunks = b"".join(b"200\r\n" + b"q" * 0x200 + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
    status = answer_to(s, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    assert status == 413
    s.assert_serving()


def test_slow_headers_get_408_and_close(start_server):
    s = start_server("probe:app", "--header-timeout", "1")
    with raw(s, timeout=5) as c:
        c.send(b"GET /hello HTTP/1.1\r\n")
        t0 = time.monotonic()
        # Trickle a header one byte per 0.3 s: each byte arrives in time, the whole header never
        # does. Stop as soon as the server answers, so no unread byte turns its close into a reset.
        for byte in b"X-Slow: " + b"z" * 20:
            if time.monotonic() - t0 > 4:
                break
            try:
                c.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            readable, _, _ = select.select([c.sock], [], [], 0.3)
            if readable:
                break
        r = c.response()
        elapsed = time.monotonic() - t0
        assert r.status == 408
        assert c.is_closed_by_peer(timeout=2.0)
    assert elapsed < 4, elapsed
    s.assert_serving()


def test_idle_keep_alive_connection_closed(start_server):
    s = start_server("probe:app", "--keep-alive", "1")
    with raw(s) as c:
        c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.response().status == 200
        t0 = time.monotonic()
        assert not c.is_closed_by_peer(timeout=0.5), "closed long before --keep-alive 1 expired"
        assert c.is_closed_by_peer(timeout=3.0), "idle connection still open 3.5 s after --keep-alive 1"
        assert time.monotonic() - t0 < 3.6


def test_app_exception_is_500_with_traceback(server):
    before = len(server.stderr())
    status, _, body = server.get("/boom")
    assert status == 500
    assert b"probe boom" not in body   # no traceback leaked to the client by default
    assert server.wait_for_output(r"RuntimeError: probe boom: deliberate failure"), server.log()
    assert "Traceback" in server.stderr()[before:]
    server.assert_serving()


def test_app_invalid_header_is_500_and_never_sent(server):
    before = len(server.stderr())
    with raw(server) as c:
        c.send(b"GET /badheader HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = c.read_until_close()
    assert data.startswith(b"HTTP/1.1 500"), data[:200]
    assert b"X-Injected" not in data and b"X-Evil" not in data
    assert b"should never be sent" not in data
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and "header" not in server.stderr()[before:].lower():
        time.sleep(0.05)
    assert "header" in server.stderr()[before:].lower(), server.log()
    server.assert_serving()


def test_endless_chunk_extension_is_refused(server):
    """Beast does not bound a chunk-size line: one that never ends must get 400, not a busy loop."""
    conn = raw(server)
    conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1;")
    try:
        for _ in range(64):
            conn.send(b"a" * 65536)
    except OSError:
        pass  # the server answered and closed while we were still sending
    data = conn.read_until_close()
    assert status_of(data) == 400
    conn.close()
    assert requests.get(server.url + "/pid", timeout=IO_TIMEOUT).status_code == 200
