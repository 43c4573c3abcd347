"""HTTP/1.1 connection behaviour and WSGI response paths, with raw sockets and real clients."""
import hashlib
import json
import os
import socket
import time

import requests

from conftest import IO_TIMEOUT, raw

GET = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"


def test_keep_alive_reuses_connection(server):
    with raw(server) as c:
        ports = []
        for i in range(4):
            c.send(GET % b"/environ?i=%d" % i)
            r = c.response()
            assert r.status == 200
            assert (r.getheader("Connection") or "").lower() != "close"
            env = json.loads(r.body)
            assert env["QUERY_STRING"] == "i=%d" % i
            ports.append(env["REMOTE_PORT"])
        # One server-side connection served all four: same peer port every time.
        assert len(set(ports)) == 1 and ports[0] == str(c.sock.getsockname()[1])


def test_pipelining_three_requests_in_one_send(server):
    with raw(server) as c:
        c.send(b"".join(GET % p for p in (b"/first", b"/second", b"/third")))
        bodies = [c.response().body for _ in range(3)]
    assert bodies == [b"probe GET /first\n", b"probe GET /second\n", b"probe GET /third\n"]


def test_pipelined_post_bodies_kept_apart(server):
    reqs = b"".join(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b)
                    for b in (b"alpha", b"bravo-bravo", b""))
    with raw(server) as c:
        c.send(reqs)
        bodies = [c.response().body for _ in range(3)]
    assert bodies == [b"alpha", b"bravo-bravo", b""]


def test_http10_closes_after_response(server):
    with raw(server) as c:
        c.send(b"GET /hello HTTP/1.0\r\n\r\n")
        data = c.read_until_close()
    assert data.startswith(b"HTTP/1."), data[:100]
    assert b" 200 " in data.split(b"\r\n", 1)[0]
    assert data.endswith(b"probe GET /hello\n")


def test_http10_keep_alive_when_asked(server):
    with raw(server) as c:
        c.send(b"GET /one HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
        r1 = c.response()
        assert r1.status == 200 and r1.body == b"probe GET /one\n"
        c.send(b"GET /two HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
        r2 = c.response()
        assert r2.status == 200 and r2.body == b"probe GET /two\n"


def test_connection_close_honoured(server):
    with raw(server) as c:
        c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = c.response()
        assert r.status == 200
        assert (r.getheader("Connection") or "").lower() == "close"
        assert c.is_closed_by_peer(timeout=2.0)


def test_head_has_get_headers_and_no_body(server):
    status, headers, body = server.get("/file")
    assert status == 200 and len(body) > 1000
    with raw(server) as c:
        c.send(b"HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n")
        h = c.response(method="HEAD")
        # Then a GET on the same connection: a leaked HEAD body would be read as its status line.
        c.send(GET % b"/after-head")
        g = c.response()
    assert h.status == 200
    assert h.getheader("Content-Length") == headers["content-length"] == str(len(body))
    assert h.body == b""
    assert g.status == 200 and g.body == b"probe GET /after-head\n"


def test_expect_100_continue(server):
    body = b"x" * 5000
    with raw(server) as c:
        c.send(b"POST /sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(body))
        # The client must not send the body before the interim response.
        interim = c.file.readline()
        assert interim.rstrip(b"\r\n") == b"HTTP/1.1 100 Continue", interim
        assert c.file.readline() == b"\r\n"
        c.send(body)
        r = c.response()
    assert r.status == 200
    assert json.loads(r.body) == {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)}


def test_chunked_upload_10mb_sha256(server):
    piece = os.urandom(64 * 1024)
    digest = hashlib.sha256()
    pieces = []
    for i in range(160):   # 10 MiB in 64 KiB chunks; varied so a reordering would be caught
        p = bytes([i]) + piece[1:]
        pieces.append(p)
        digest.update(p)
    # A generator body makes requests send Transfer-Encoding: chunked.
    r = requests.post(server.url + "/sha256", data=iter(pieces), timeout=30)
    assert r.status_code == 200
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.json() == {"sha256": digest.hexdigest(), "length": 160 * 64 * 1024}


def test_chunked_upload_raw_with_trailer_and_extension(server):
    with raw(server) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n")
        r = c.response()
        # The trailer must be consumed: the next request on the connection parses cleanly.
        c.send(GET % b"/next")
        n = c.response()
    assert r.status == 200 and r.body == b"hello world"
    assert n.status == 200 and n.body == b"probe GET /next\n"


def test_readline_readlines_iteration(server):
    body = b"first line\nsecond line\nthird\nfourth\nfifth\nlast-no-newline"
    r = requests.post(server.url + "/readline", data=body, timeout=IO_TIMEOUT)
    assert r.status_code == 200
    got = r.json()
    assert got["first"] == "first line\n"
    assert got["bounded"] == "sec"
    assert got["rest_of_second"] == "ond line\n"
    assert got["some"][0] == "third\n"
    rest = got["some"][1:] + got["iterated"]
    assert rest == ["fourth\n", "fifth\n", "last-no-newline"]


def test_streaming_is_incremental_and_chunked(server):
    n, delay = 5, 0.4
    conn = server.http(timeout=10)
    try:
        t0 = time.monotonic()
        conn.request("GET", "/stream?n=%d&delay=%s" % (n, delay))
        r = conn.getresponse()
        assert r.status == 200
        assert r.getheader("Transfer-Encoding") == "chunked"
        assert r.getheader("Content-Length") is None
        first = r.read1(65536)
        t_first = time.monotonic() - t0
        rest = r.read()
        t_all = time.monotonic() - t0
    finally:
        conn.close()
    lines = (first + rest).decode().splitlines()
    assert [l.split()[1] for l in lines] == [str(i) for i in range(n)]
    assert first.startswith(b"chunk 0 ")
    # The first chunk is produced at once, the last after (n-1)*delay = 1.6 s.
    assert t_first < 0.8, t_first
    assert t_all >= (n - 1) * delay * 0.9, t_all


def test_write_callable(server):
    status, _, body = server.get("/write")
    assert status == 200
    assert body == b"written-1;written-2;returned"


def test_file_wrapper_body_equals_file(server, tmp_path):
    path = tmp_path / "blob.bin"
    data = os.urandom(300 * 1024 + 17)
    path.write_bytes(data)
    r = requests.get(server.url + "/file", params={"path": str(path)}, timeout=IO_TIMEOUT)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(len(data))
    assert r.content == data


def test_exc_info_replaces_unsent_response(server):
    status, _, body = server.get("/exc_info")
    assert status == 503
    assert body == b"replaced by exc_info"


def test_wsgi_errors_reach_error_log(server):
    status, _, _ = server.get("/errors?tag=e2e-errors-42")
    assert status == 200
    assert server.wait_for_output(r"probe-errors-line-e2e-errors-42"), server.log()
    assert server.wait_for_output(r"probe-errors-writelines"), server.log()


def test_close_called_when_client_disconnects(server, tmp_path):
    marker = tmp_path / "closed.txt"
    with raw(server) as c:
        c.send(b"GET /close-marker?path=%s&n=400&delay=0.02 HTTP/1.1\r\nHost: x\r\n\r\n" % str(marker).encode())
        assert c.file.readline().startswith(b"HTTP/1.1 200")
        c.file.read1(1024)
        assert not marker.exists()
        # Go away mid-stream; RST rather than FIN so the server's next write fails at once.
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    # 400 chunks x 20 ms = 8 s: a marker within 5 s means close() ran on the disconnect, not at the end.
    assert marker.exists(), server.log()
    assert marker.read_text().startswith("closed")
    server.assert_serving()


def test_keep_alive_after_post_body(server):
    # wsgi.input stops at Content-Length: the app's read() returns, the connection carries on.
    with raw(server) as c:
        for body in (b"first-body", b"", b"third" * 1000):
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            r = c.response()
            assert r.status == 200 and r.body == body


def test_unread_request_body_is_discarded(server):
    # The app ignores the body; the server must skip it, not parse it as the next request.
    with raw(server) as c:
        body = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        c.send(b"POST /ignored HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        r = c.response()
        assert r.status == 200 and r.body == b"probe POST /ignored\n"
        c.send(GET % b"/after")
        r2 = c.response()
        assert r2.status == 200 and r2.body == b"probe GET /after\n"


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def test_streaming_response_is_never_collected_whole(server):
    """A 128 MiB generator response to a client that stops reading: the worker waits on its
    bounded buffer instead of queueing the whole body in memory; the body then arrives intact."""
    pid = requests.get(server.url + "/pid", timeout=IO_TIMEOUT).json()["pid"]
    before = _rss_kib(pid)
    sock = socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(b"GET /bigstream?mb=128 HTTP/1.1\r\nHost: t\r\n\r\n")
    got = sock.recv(65536)
    time.sleep(1.5)  # the client reads nothing: the app must be held back by the buffer
    during = _rss_kib(pid)
    assert during - before < 48 * 1024, "worker grew by %d KiB while the client was not reading" % (during - before)
    total = 0
    head, _, rest = got.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    # Count payload bytes by decoding the chunked framing until the last chunk.
    buf = rest
    while True:
        while b"\r\n" not in buf:
            buf += sock.recv(1 << 20)
        size_line, _, buf = buf.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        while len(buf) < size + 2:
            more = sock.recv(1 << 20)
            assert more, "connection closed after %d bytes" % total
            buf += more
        total += size
        buf = buf[size + 2:]
        if size == 0:
            break
    sock.close()
    assert total == 128 * 1024 * 1024


def test_app_subprocess_can_be_stopped_with_sigterm(server):
    """Programs the app starts inherit no blocked signal mask from the server."""
    r = requests.get(server.url + "/subprocess-term", timeout=IO_TIMEOUT + 10)
    assert r.status_code == 200
    assert r.text == "-15"


def test_head_of_a_failing_app_is_500_without_body_and_keeps_the_connection(server):
    conn = raw(server)
    conn.send(b"HEAD /boom HTTP/1.1\r\nHost: t\r\n\r\nGET /pid HTTP/1.1\r\nHost: t\r\n\r\n")
    first = conn.response(method="HEAD")
    assert first.status == 500
    assert first.body == b""
    second = conn.response()
    assert second.status == 200
    assert b'"pid"' in second.body
    conn.close()


def test_chunked_trailers_do_not_reach_the_environ(server):
    conn = raw(server)
    conn.send(b"POST /environ HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"3\r\nabc\r\n0\r\nX-Smuggled: yes\r\n\r\n")
    r = conn.response()
    assert r.status == 200
    environ = json.loads(r.body)
    assert "HTTP_X_SMUGGLED" not in environ.get("environ", environ)
    conn.close()


def test_client_reset_during_sendfile_does_not_kill_the_worker(server, tmp_path):
    """A peer that resets mid-file makes sendfile(2) fail with EPIPE/ECONNRESET; SIGPIPE must be
    ignored, so the same worker goes on serving."""
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(32 * 1024 * 1024))
    pid = requests.get(server.url + "/pid", timeout=IO_TIMEOUT).json()["pid"]
    for _ in range(3):
        sock = socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /file?path=" + str(path).encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        sock.recv(1024)
        # RST instead of FIN: the server's next write fails at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
        time.sleep(0.2)
    assert requests.get(server.url + "/pid", timeout=IO_TIMEOUT).json()["pid"] == pid


def test_app_header_values_are_trimmed(server):
    """Spaces and tabs around an app's header value are not sent (gunicorn strips them too):
    Django's SimpleCookie.output(header="") starts with a space."""
    with raw(server) as conn:
        conn.send(GET % b"/padded-header")
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.sock.recv(65536)
    assert b"\r\nSet-Cookie: a=b; Path=/\r\n" in head
    assert b"\r\nX-Padded: v\r\n" in head
