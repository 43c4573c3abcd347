"""ASGI 3.0 against the real binary: an async app is detected and served from the worker's event
loop (HTTP scope, request bodies, whole and streamed responses, errors, lifespan), Django's
get_asgi_application() included, with the native pipeline in front."""
import hashlib
import http.client
import json
import os
import re
import socket

import pytest
import requests

from conftest import APPS, IO_TIMEOUT, raw, rss_bytes, until, worker_pids

DEMO = os.path.abspath(os.path.join(APPS, os.pardir, os.pardir, "examples", "django_demo"))
GET = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def asgi(tmp_path_factory):
    from conftest import ServerFactory
    factory = ServerFactory(tmp_path_factory)
    log = tmp_path_factory.mktemp("asgi") / "lifespan.log"
    server = factory("asgi_probe:app", "--access-logfile", "-", env={"ASGI_PROBE_LOG": str(log)})
    server.lifespan_log = log
    yield server
    factory.teardown()


def test_an_async_app_is_detected_and_served(asgi):
    status, headers, body = asgi.get("/hello?x=1")
    assert status == 200 and body == b"probe GET /hello\n"


def test_the_http_scope(asgi):
    with raw(asgi) as conn:
        conn.send(b"GET /scope?q=%C3%A9&x HTTP/1.1\r\nHost: example.com\r\nX-Custom: v1\r\nX-Custom: v2\r\n\r\n")
        scope = json.loads(conn.response().body)
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1" and scope["method"] == "GET" and scope["scheme"] == "http"
    assert scope["path"] == "/scope" and scope["raw_path"] == "/scope"
    assert scope["query_string"] == "q=%C3%A9&x"
    assert scope["root_path"] == ""
    assert ["host", "example.com"] in scope["headers"]
    assert [h for h in scope["headers"] if h[0] == "x-custom"] == [["x-custom", "v1"], ["x-custom", "v2"]]
    assert scope["header_types"] == ["bytes"]
    assert scope["client"][0] == "127.0.0.1" and isinstance(scope["client"][1], int)
    assert scope["server"] == ["127.0.0.1", asgi.port]
    assert scope["state"]["started_by"] > 0  # the lifespan's state, copied into the request's scope
    assert scope["types"]["raw_path"] == "bytes" and scope["types"]["query_string"] == "bytes"
    assert scope["types"]["extensions"] == "dict"
    assert set(scope["extensions"]) == {"http.response.pathsend", "http.response.zerocopysend", "http.response.trailers"}


def test_a_percent_encoded_path_is_decoded_and_raw_path_kept(asgi):
    with raw(asgi) as conn:
        conn.send(b"GET /sc%6Fpe HTTP/1.1\r\nHost: x\r\n\r\n")
        scope = json.loads(conn.response().body)
    assert scope["path"] == "/scope" and scope["raw_path"] == "/sc%6Fpe"


@pytest.mark.parametrize("size", [0, 10, 300_000, 3_000_000])
def test_request_bodies_reach_the_app(asgi, size):
    data = os.urandom(size)
    r = requests.post(asgi.url + "/echo", data=data, timeout=IO_TIMEOUT)
    assert r.status_code == 200 and r.content == data
    # A small body arrives with the head, in one http.request; a larger one as it comes off the
    # socket, in pieces of at most 64 KiB.
    messages = int(r.headers["x-messages"])
    assert messages == 1 if size <= 10 else messages >= -(-size // 65536)


def test_chunked_request_body(asgi):
    with raw(asgi) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        r = conn.response()
    assert r.status == 200 and r.body == b"abcde"


MB = 1 << 20


def _hashed(server, data, path="/sha256"):
    r = requests.post(server.url + path, data=data, timeout=30)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return r.json()


def test_a_10_mb_upload_reaches_the_app_piece_by_piece(asgi):
    data = os.urandom(10 * MB)
    got = _hashed(asgi, data)
    assert got["size"] == len(data) and got["sha256"] == hashlib.sha256(data).hexdigest()
    # As it arrived: many http.request messages, more_body True on all but the last.
    assert len(got["more_body"]) > 1
    assert all(got["more_body"][:-1]) and got["more_body"][-1] is False


def test_a_10_mb_chunked_upload_reaches_the_app_piece_by_piece(asgi):
    data = os.urandom(10 * MB)
    pieces = (data[i:i + 100_000] for i in range(0, len(data), 100_000))  # a generator: chunked
    got = _hashed(asgi, pieces)
    assert got["size"] == len(data) and got["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(got["more_body"]) > 1 and all(got["more_body"][:-1]) and got["more_body"][-1] is False


def test_a_slow_app_holds_the_upload_back(asgi):
    """An app that does not call receive() yet: the worker stops reading the body (its memory
    stays flat, the client's send blocks), then takes all of it once the app reads."""
    size = 64 * MB
    data = os.urandom(size)
    pid = asgi.get_json("/pid")["pid"]
    before = rss_bytes(pid)
    sock = asgi.connect(timeout=IO_TIMEOUT)
    try:
        sock.sendall(b"POST /sha256?gate=slow HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        sock.settimeout(1.0)  # how a blocked send is told; never a measure of speed
        sent = 0
        with pytest.raises(socket.timeout):
            while sent < size:
                sent += sock.send(data[sent:sent + MB])
        assert sent < size // 2, sent  # the socket buffers filled, the worker read no further
        # Bounded by the queue to the app (256 KiB) and the read buffer, not by what was sent.
        assert rss_bytes(pid) - before < 16 * MB, (before, rss_bytes(pid))
        assert asgi.get("/open?gate=slow")[0] == 200
        sock.settimeout(30)
        sock.sendall(data[sent:])
        r = http.client.HTTPResponse(sock)
        r.begin()
        got = json.loads(r.read())
    finally:
        sock.close()
    assert got["size"] == size and got["sha256"] == hashlib.sha256(data).hexdigest()


def test_an_unread_body_is_dropped_and_the_connection_goes_on(asgi):
    body = os.urandom(2 * MB)  # far more than the queue to the app holds
    with raw(asgi) as conn:
        conn.send(b"POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        first = conn.response()
        conn.send(GET % b"/hello")
        second = conn.response()
    assert first.status == 200 and first.body == b"unread\n" and first.getheader("Connection") != "close"
    assert second.status == 200 and second.body == b"probe GET /hello\n"


def test_a_huge_unread_body_closes_the_connection_after_the_answer(asgi):
    with raw(asgi) as conn:
        conn.send(b"POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (100 * MB) + b"x" * 65536)
        r = conn.response()
        assert r.status == 200 and r.body == b"unread\n" and r.getheader("Connection") == "close"
        assert conn.is_closed_by_peer(IO_TIMEOUT)


def test_a_chunked_unread_body_past_the_bound_ends_the_connection(asgi):
    """A chunked body's length is unknown when the answer goes out: the rest is dropped up to
    4 MiB, and past that the connection closes after the answer instead of serving another."""
    chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
    with raw(asgi) as conn:
        conn.send(b"POST /unread HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)
        r = conn.response()
        assert r.status == 200 and r.body == b"unread\n"
        try:
            for _ in range(160):  # 10 MiB more, never ended
                conn.send(chunk)
        except OSError:
            pass  # the server stopped reading and closed
        assert conn.is_closed_by_peer(IO_TIMEOUT)


def test_100_continue_is_sent_when_the_app_asks_for_the_body(asgi):
    body = os.urandom(300_000)
    with raw(asgi) as conn:
        conn.send(b"POST /sha256 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert conn.file.readline() == b"HTTP/1.1 100 Continue\r\n" and conn.file.readline() == b"\r\n"
        conn.send(body)
        r = conn.response()
        assert r.status == 200 and json.loads(r.body)["sha256"] == hashlib.sha256(body).hexdigest()
        conn.send(GET % b"/hello")  # the body was read whole: the connection goes on
        assert conn.response().status == 200


def test_no_100_continue_for_an_app_that_answers_without_the_body(asgi):
    with raw(asgi) as conn:
        conn.send(b"POST /unread HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 300000\r\n\r\n")
        r = conn.response()
        # The final answer at once, and a close: the client may never send the body it announced.
        assert r.status == 200 and r.body == b"unread\n" and r.getheader("Connection") == "close"
        assert conn.is_closed_by_peer(IO_TIMEOUT)


def test_a_client_leaving_mid_body_is_http_disconnect(asgi, tmp_path):
    note, started = tmp_path / "note", tmp_path / "started"
    sock = asgi.connect(timeout=IO_TIMEOUT)
    sock.sendall(b"POST /sha256?note=%s&started=%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                 % (str(note).encode(), str(started).encode(), 10 * MB) + b"x" * 100_000)
    until(started.exists, timeout=IO_TIMEOUT)  # the app has a piece and waits for more
    sock.close()
    until(note.exists, timeout=IO_TIMEOUT)
    assert note.read_text() == "http.disconnect after 100000 bytes"
    assert asgi.get("/hello")[0] == 200


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    from conftest import ServerFactory
    factory = ServerFactory(tmp_path_factory)
    yield factory("asgi_probe:app", "--limit-request-body", str(MB))
    factory.teardown()


def test_a_body_over_the_limit_is_413(limited):
    r = requests.post(limited.url + "/sha256", data=os.urandom(2 * MB), timeout=IO_TIMEOUT)
    assert r.status_code == 413  # from its Content-Length, before the app is called


def test_a_chunked_body_over_the_limit_is_413_and_the_app_is_told(limited, tmp_path):
    note, started = tmp_path / "note", tmp_path / "started"
    with raw(limited) as conn:
        conn.send(b"POST /sha256?note=%s&started=%s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  % (str(note).encode(), str(started).encode()) + b"10000\r\n" + b"x" * 65536 + b"\r\n")
        until(started.exists, timeout=IO_TIMEOUT)  # the app reads the body as it comes
        try:
            for _ in range(32):  # 2 MiB more: past the limit
                conn.send(b"10000\r\n" + b"x" * 65536 + b"\r\n")
        except OSError:
            pass  # the server answered and stopped reading
        r = conn.response()
    assert r.status == 413
    until(note.exists, timeout=IO_TIMEOUT)
    assert note.read_text().startswith("http.disconnect after ")
    assert limited.get("/hello")[0] == 200


def test_a_malformed_chunk_mid_body_is_400_and_the_app_is_told(asgi, tmp_path):
    note, started = tmp_path / "note", tmp_path / "started"
    with raw(asgi) as conn:
        conn.send(b"POST /sha256?note=%s&started=%s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                  % (str(note).encode(), str(started).encode()))
        until(started.exists, timeout=IO_TIMEOUT)
        conn.send(b"zz\r\nnot a chunk\r\n")
        r = conn.response()
        assert r.status == 400 and conn.is_closed_by_peer(IO_TIMEOUT)
    until(note.exists, timeout=IO_TIMEOUT)
    assert note.read_text() == "http.disconnect after 5 bytes"


def test_a_streamed_response_is_chunked_and_incremental(asgi):
    with raw(asgi) as conn:
        conn.send(GET % b"/stream?n=4&delay=0.05")
        r = conn.response()
        assert r.getheader("Transfer-Encoding") == "chunked"
        assert r.body == b"".join(b"chunk %d\n" % i for i in range(4))


def test_a_large_response_with_backpressure(asgi):
    r = requests.get(asgi.url + "/big?size=20000000", stream=True, timeout=IO_TIMEOUT)
    total = sum(len(piece) for piece in r.iter_content(1 << 16))
    assert r.status_code == 200 and total == 20_000_000


def _settled(read, quiet=1.0, timeout=IO_TIMEOUT * 4):
    """read()'s value once it has stayed the same for `quiet` seconds: a producer that nothing
    holds back never settles before its end. (To see that something stops, some time must pass.)"""
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


def test_a_client_that_stops_reading_pauses_the_app_and_bounds_memory(start_server, tmp_path):
    """128 MB in 1 MB sends to a client that reads only the head: the app's send() waits (it has
    sent far fewer than 128 chunks) and the worker's memory stays bounded; once the client
    reads, all 128 MB arrive."""
    n, size = 128, 1 << 20
    note = tmp_path / "sent"
    s = start_server("asgi_probe:app", workers=1)
    worker = until(lambda: worker_pids(s.pid), timeout=IO_TIMEOUT)[0]
    assert s.get("/hello")[0] == 200  # the worker's steady state before the big response
    base = rss_bytes(worker)
    sent = lambda: int(note.read_text() or 0) if note.exists() else 0  # noqa: E731
    with socket.create_connection(("127.0.0.1", s.port), timeout=IO_TIMEOUT) as c:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        c.sendall(GET % b"/chunks?n=%d&size=%d&note=%s" % (n, size, str(note).encode()))
        got = c.recv(1 << 16)
        assert got.startswith(b"HTTP/1.1 200")
        paused_at = _settled(sent)
        assert 1 <= paused_at < n // 4, paused_at
        growth = rss_bytes(worker) - base
        assert growth < 64 << 20, "the worker grew by %d MB for a client that does not read" % (growth >> 20)
        head_end = got.index(b"\r\n\r\n") + 4
        total = len(got) - head_end
        while total < n * size:
            piece = c.recv(1 << 20)
            assert piece, "closed after %d bytes" % total
            total += len(piece)
    assert total == n * size
    assert until(lambda: sent() == n, timeout=IO_TIMEOUT)


def test_sends_from_two_tasks_at_once_both_go_on(asgi):
    # Each waits for room in the buffer; neither may be forgotten (the app would hang).
    r = requests.get(asgi.url + "/gather-sends?rounds=4", timeout=IO_TIMEOUT)
    assert r.status_code == 200 and len(r.content) == 8 << 20
    assert r.content.count(b"a") == r.content.count(b"b") == 4 << 20


def test_keep_alive_and_pipelining(asgi):
    with raw(asgi) as conn:
        conn.send(GET % b"/a" + GET % b"/b" + GET % b"/c")
        bodies = [conn.response().body for _ in range(3)]
    assert bodies == [b"probe GET /a\n", b"probe GET /b\n", b"probe GET /c\n"]


def test_receive_after_the_response_is_http_disconnect(asgi, tmp_path):
    note = tmp_path / "note"
    assert asgi.get("/after-response?note=%s" % note)[0] == 200
    until(lambda: note.exists() and note.read_text() == "http.disconnect", timeout=IO_TIMEOUT)


def test_an_exception_before_the_response_is_a_500_with_its_traceback(asgi):
    status, _, body = asgi.get("/boom")
    assert status == 500
    until(lambda: "ValueError: boom before the response" in asgi.stderr(), timeout=IO_TIMEOUT)
    assert "Traceback" in asgi.stderr()
    assert asgi.get("/hello")[0] == 200  # the worker goes on


def test_an_exception_after_the_start_closes_the_connection(asgi):
    with raw(asgi) as conn:
        conn.send(GET % b"/boom-after-start")
        data = conn.read_until_close()
    assert data.startswith(b"HTTP/1.1 200") and b"partial" in data
    assert not data.endswith(b"0\r\n\r\n")  # no last chunk: the client knows it was cut
    until(lambda: "boom after the response started" in asgi.stderr(), timeout=IO_TIMEOUT)


@pytest.mark.parametrize("path", ["/no-response", "/twice-start"])
def test_protocol_misuse_is_a_500(asgi, path):
    assert asgi.get(path)[0] == 500


@pytest.mark.parametrize("case,reason", [
    ("status-str", "needs an int 'status' of 3 digits, got '200'"),
    ("status-huge", "OverflowError"),
    ("header-nul", "invalid header value"),
    ("header-name-str", "a header name must be bytes, not str"),
    ("header-not-pair", "each header must be a [name, value] pair"),
    ("not-a-dict", "an ASGI message must be a dict, not NoneType"),
    ("no-type", "an ASGI message needs a 'type' str"),
    ("body-str", "'body' must be bytes, not str"),
    ("body-first", "Expected ASGI message 'http.response.start', but got 'http.response.body'"),
])
def test_an_invalid_message_is_a_500_with_the_reason_in_the_log(asgi, case, reason):
    assert asgi.get("/bad?case=" + case)[0] == 500
    def logged():  # the error line for this request, with the traceback under it
        blocks = re.split(r"(?=\[\d{4}-\d\d-\d\d [^]]*\] \[\d+\] \[)", asgi.stderr())
        return [b for b in blocks if "Error handling request GET /bad?case=%s\n" % case in b]
    block = until(logged, timeout=IO_TIMEOUT)
    assert block and reason in block[0], asgi.log()
    assert asgi.get("/hello")[0] == 200  # the worker goes on


def test_app_header_values_are_trimmed(asgi):
    with raw(asgi) as conn:
        conn.send(GET % b"/padded-header")
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.sock.recv(65536)
    assert b"\r\nx-padded: v\r\n" in head


def test_the_access_log_has_asgi_requests(asgi):
    asgi.get("/logged-path")
    until(lambda: "/logged-path" in asgi.stdout(), timeout=IO_TIMEOUT)


def test_lifespan_startup_then_shutdown_on_term(start_server, tmp_path):
    log = tmp_path / "lifespan.log"
    s = start_server("asgi_probe:app", workers=2, env={"ASGI_PROBE_LOG": str(log)})
    assert s.get("/hello")[0] == 200
    until(lambda: log.read_text().count("startup") == 2, timeout=IO_TIMEOUT)  # the second worker may still boot
    s.stop()
    assert log.read_text().count("shutdown") == 2


def test_lifespan_startup_failure_stops_the_server(start_server):
    s = start_server("asgi_probe:app", env={"ASGI_PROBE_LIFESPAN": "fail"}, wait=False)
    s.wait(timeout=30)
    assert s.proc.returncode != 0
    assert "the database is not there" in s.stderr()


def test_an_app_without_lifespan_support_is_served(start_server):
    s = start_server("asgi_probe:app", env={"ASGI_PROBE_LIFESPAN": "raise"})
    assert s.get("/hello")[0] == 200
    # The worker's log is asynchronous: the line may reach the file after the first answer.
    assert s.wait_for_output(r"ASGI 'lifespan' protocol appears unsupported"), s.log()


def test_lifespan_on_makes_its_failure_fatal(start_server):
    s = start_server("asgi_probe:app", "--lifespan", "on", env={"ASGI_PROBE_LIFESPAN": "raise"}, wait=False)
    s.wait(timeout=30)
    assert s.proc.returncode != 0
    assert "this app has no lifespan support" in s.stderr()


def test_lifespan_off(start_server, tmp_path):
    log = tmp_path / "lifespan.log"
    s = start_server("asgi_probe:app", "--lifespan", "off", env={"ASGI_PROBE_LOG": str(log)})
    assert s.get("/hello")[0] == 200
    assert not log.exists()


def test_interface_asgi_with_an_app_that_imports_nothing(start_server):
    # threading.main_thread() is the thread that first imports threading; were that the loop's
    # thread, uvloop would set its signal wake-up there and the worker's loop would fail.
    s = start_server("asgi_bare:app", "--interface", "asgi")
    assert s.get("/")[:3:2] == (200, b"bare\n")


def test_interface_wsgi_forces_wsgi(start_server):
    # A WSGI app named explicitly still works; an ASGI app forced to WSGI answers 500 (it is called
    # as WSGI and returns a coroutine, not an iterable).
    s = start_server("asgi_probe:app", "--interface", "wsgi")
    assert s.get("/hello")[0] == 500


def test_the_native_pipeline_sits_in_front(start_server):
    s = start_server("asgi_probe:app", "--middleware", "timing,compress")
    r = requests.get(s.url + "/page", headers={"Accept-Encoding": "gzip"}, timeout=IO_TIMEOUT)
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    assert b"gantry gantry" in r.content  # requests decodes it


def test_django_asgi_application(start_server):
    s = start_server("demo.asgi:application", "--chdir", DEMO)
    status, headers, body = s.get("/ping/")
    assert status == 200 and body == b"ok"
    r = requests.get(s.url + "/api/products/", timeout=IO_TIMEOUT)
    assert r.status_code == 200 and "products" in r.json()
    assert s.get("/boom/")[0] == 500


def test_a_uvicorn_command_line_changes_one_word(start_server, tmp_path):
    from conftest import free_port
    port = free_port()
    sock = tmp_path / "u.sock"
    s = start_server("asgi_probe:app", "--host", "127.0.0.1", "--port", str(port), "--uds", str(sock),
                     "--timeout-keep-alive", "5", "--lifespan", "on", "--loop", "asyncio", bind=False, port=port)
    assert s.get("/hello")[0] == 200
    import socket as socket_module
    with socket_module.socket(socket_module.AF_UNIX) as u:
        u.settimeout(IO_TIMEOUT)
        u.connect(str(sock))
        u.sendall(GET % b"/hello")
        assert u.recv(65536).startswith(b"HTTP/1.1 200")


def test_limit_concurrency_answers_503_above_it(start_server, tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    s = start_server("asgi_probe:app", "--limit-concurrency", "2", workers=1)
    notes = [tmp_path / ("in-app-%d" % i) for i in range(2)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        slow = [pool.submit(s.get, "/sleep?s=4&note=%s" % n, None, 30) for n in notes]
        until(lambda: all(n.exists() for n in notes), timeout=IO_TIMEOUT)  # both in the app
        others = [pool.submit(s.get, "/hello", None, 30).result() for _ in range(3)]
        assert [r[0] for r in others] == [503, 503, 503]
        assert others[0][1]["retry-after"] == "1"
        assert [f.result()[0] for f in slow] == [200, 200]
    assert s.get("/hello")[0] == 200


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "file.txt"
    path.write_bytes(b"".join(b"line %06d of a file sent with sendfile\n" % i for i in range(40000)))  # 1.6 MB
    return path


def test_pathsend_sends_the_file(asgi, text_file):
    r = requests.get(asgi.url + "/pathsend", params={"path": str(text_file)}, timeout=IO_TIMEOUT)
    assert r.status_code == 200 and r.content == text_file.read_bytes()
    assert r.headers["content-length"] == str(text_file.stat().st_size)


def test_pathsend_of_a_missing_file_is_a_500(asgi, tmp_path):
    status, _, _ = asgi.get("/pathsend?path=%s" % (tmp_path / "nope"))
    assert status == 500
    until(lambda: "No such file or directory" in asgi.stderr(), timeout=IO_TIMEOUT)


@pytest.mark.parametrize("parts", [1, 3])
def test_zerocopysend_sends_the_file_in_parts(asgi, text_file, parts):
    r = requests.get(asgi.url + "/zerocopy", params={"path": str(text_file), "parts": parts}, timeout=IO_TIMEOUT)
    assert r.status_code == 200 and r.content == text_file.read_bytes()
    if parts == 1:
        assert r.headers["content-length"] == str(text_file.stat().st_size)
    else:
        assert r.headers["transfer-encoding"] == "chunked"


def test_pathsend_goes_through_compression(start_server, text_file):
    s = start_server("asgi_probe:app", "--middleware", "timing,compress")
    r = requests.get(s.url + "/pathsend", params={"path": str(text_file)}, headers={"Accept-Encoding": "gzip"},
                     timeout=IO_TIMEOUT)
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.content == text_file.read_bytes()  # requests decodes it


@pytest.mark.parametrize("how", ["close", "half-close"])
def test_a_client_leaving_while_the_app_waits_in_receive_is_http_disconnect(asgi, tmp_path, how):
    note = tmp_path / "note"
    sock = asgi.connect(timeout=IO_TIMEOUT)
    sock.sendall(b"GET /wait-disconnect?note=%s HTTP/1.1\r\nHost: x\r\n\r\n" % str(note).encode())
    if how == "close":
        sock.close()
    else:
        sock.shutdown(socket.SHUT_WR)  # still reading: it gets the answer the app sends then
    until(lambda: note.exists() and note.read_text() == "http.disconnect", timeout=IO_TIMEOUT)
    if how == "half-close":
        data = b""
        while True:
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
        sock.close()
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"after http.disconnect\n")
    assert asgi.get("/hello")[0] == 200


def _raw_exchange(server, request):
    with raw(server) as conn:
        conn.send(request)
        return conn.read_until_close()


@pytest.mark.parametrize("parts", [1, 3])
def test_trailers_go_after_the_last_chunk_when_the_client_asks(asgi, parts):
    data = _raw_exchange(asgi, b"GET /trailers?parts=%d HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n" % parts)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
    assert body.endswith(b"\r\n0\r\nx-checksum: abc123\r\nx-count: %d\r\n\r\n" % parts), body[-80:]
    assert b"part %d\n" % (parts - 1) in body


def test_trailers_are_dropped_for_a_client_that_did_not_ask(asgi):
    data = _raw_exchange(asgi, b"GET /trailers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert data.endswith(b"\r\n0\r\n\r\n") and b"abc123" not in data
