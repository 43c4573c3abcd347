"""The Django demo under ASGI (`--interface asgi demo.asgi:application`, Django 3.2's ASGIHandler)
end to end: async views on the event loop, sync views in Django's thread, StreamingHttpResponse,
uploads, sessions and CSRF through a requests.Session, request_finished (and the database
connection it closes) for a client that leaves mid-response, and --timing full inside Django's
async middleware chain."""
import hashlib
import json
import os
import re
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import APPS, IO_TIMEOUT, START_TIMEOUT, ServerFactory, until

DEMO = os.environ.get("GANTRY_E2E_DJANGO_DEMO") or os.path.abspath(
    os.path.join(APPS, os.pardir, os.pardir, "examples", "django_demo"))
ASGI = ("demo.asgi:application", "--interface", "asgi", "--chdir")
MIDDLEWARE = ("SecurityMiddleware", "SessionMiddleware", "CommonMiddleware", "CsrfViewMiddleware",
              "AuthenticationMiddleware", "MessageMiddleware", "XFrameOptionsMiddleware")


@pytest.fixture(scope="module")
def demo_ready():
    if not os.path.isdir(DEMO):
        pytest.skip("no Django demo at %s" % DEMO)
    out = subprocess.run(["sh", os.path.join(DEMO, "setup.sh")], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, "setup.sh failed:\n%s\n%s" % (out.stdout, out.stderr)
    return DEMO


@pytest.fixture(scope="module")
def dj(demo_ready, tmp_path_factory):
    factory = ServerFactory(tmp_path_factory)
    yield factory(*ASGI, demo_ready, workers=1, env={"DJANGO_DEBUG": "0"})
    factory.teardown()


def test_sync_views_run_under_asgi(dj):
    r = requests.get(dj.url + "/api/products/", timeout=IO_TIMEOUT)
    assert r.status_code == 200 and r.json()["count"] >= 3
    page = requests.get(dj.url + "/", timeout=IO_TIMEOUT)
    assert page.status_code == 200 and "</html>" in page.text
    assert requests.get(dj.url + "/no-such-page/", timeout=IO_TIMEOUT).status_code == 404
    assert requests.get(dj.url + "/boom/", timeout=IO_TIMEOUT).status_code == 500
    assert dj.wait_for_output(r"boom: deliberate failure from the demo")


def test_async_views_on_the_loop(dj):
    r = requests.get(dj.url + "/async/ping/", timeout=IO_TIMEOUT)
    assert r.status_code == 200 and r.json() == {"async": True, "method": "GET"}
    # The ORM through sync_to_async, from an async view: the same rows the sync API lists.
    names = requests.get(dj.url + "/async/products/", timeout=IO_TIMEOUT).json()
    listed = requests.get(dj.url + "/api/products/", timeout=IO_TIMEOUT).json()
    assert names["count"] == listed["count"]
    assert sorted(names["names"]) == sorted(p["name"] for p in listed["products"])


def test_async_and_sync_views_interleave(dj):
    def get(path):
        r = requests.get(dj.url + path, timeout=START_TIMEOUT)
        return r.status_code, r.json()

    paths = ["/async/products/", "/api/products/", "/async/ping/", "/api/categories-naive/"] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(get, paths))
    assert {status for status, _ in results} == {200}
    counts = {path: body.get("count") for path, (_, body) in zip(paths, results)}
    assert counts["/async/products/"] == counts["/api/products/"] == counts["/api/categories-naive/"]


def test_streaming_http_response_arrives_in_pieces(dj):
    """Django 3.2 streams a sync iterator under ASGI (its ASGIHandler iterates it on the loop):
    each line is a chunk of its own, sent as it is made."""
    with requests.get(dj.url + "/stream/?n=5", stream=True, timeout=IO_TIMEOUT) as r:
        assert r.status_code == 200 and r.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in r.headers
        pieces = [piece for piece in r.iter_content(chunk_size=None) if piece]
    lines = b"".join(pieces).decode().splitlines()
    assert [line.split(" t=")[0] for line in lines] == ["line %d of 5" % i for i in range(1, 6)]
    assert len(pieces) >= 2  # not one buffered body


@pytest.mark.parametrize("size", [1000, 3 * 1024 * 1024 + 17])  # in memory; over Django's 2.5 MB: a temp file
def test_a_form_upload_with_a_file(dj, size):
    data = os.urandom(size)
    r = requests.post(dj.url + "/upload/", files={"file": ("blob.bin", data, "application/octet-stream")},
                      timeout=START_TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "blob.bin", "size": size, "sha256": hashlib.sha256(data).hexdigest(),
                        "content_type": "application/octet-stream"}


def test_a_session_lives_across_requests(dj):
    with requests.Session() as s:
        assert [s.get(dj.url + "/visits/", timeout=IO_TIMEOUT).json()["visits"] for _ in range(3)] == [1, 2, 3]
        assert "sessionid" in s.cookies
    with requests.Session() as other:  # another client: another session
        assert other.get(dj.url + "/visits/", timeout=IO_TIMEOUT).json()["visits"] == 1


def test_a_csrf_protected_form_post(dj):
    with requests.Session() as s:
        form = s.get(dj.url + "/products/new/", timeout=IO_TIMEOUT)
        assert form.status_code == 200 and "csrftoken" in s.cookies
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        category = re.search(r'<option value="(\d+)"', form.text).group(1)
        name = "ASGI product %d" % os.getpid() + os.urandom(4).hex()
        fields = {"name": name, "category": category, "price": "12.50", "description": "made over ASGI"}
        # Without the token (the cookie alone): Django refuses it.
        refused = s.post(dj.url + "/products/new/", data=fields, allow_redirects=False, timeout=IO_TIMEOUT)
        assert refused.status_code == 403
        created = s.post(dj.url + "/products/new/", data=dict(fields, csrfmiddlewaretoken=token),
                         headers={"Referer": dj.url + "/products/new/"}, allow_redirects=False, timeout=IO_TIMEOUT)
        assert created.status_code == 302, created.text
        page = s.get(dj.url + created.headers["Location"], timeout=IO_TIMEOUT)
        assert page.status_code == 200 and name in page.text


def _lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_request_finished_fires_when_the_client_leaves_mid_response(demo_ready, start_server, tmp_path):
    """A sync view reads the database and streams 256 MB; the client reads the first bytes and
    closes. Django's ASGIHandler must still close the response: request_finished fires (and
    with it close_old_connections, so the view's database connection is closed), and the
    generator is closed where it stopped, long before its end."""
    log = tmp_path / "finished.log"
    s = start_server(*ASGI, demo_ready, workers=1, env={"DJANGO_DEBUG": "0", "DEMO_FINISHED_LOG": str(log)})
    with socket.create_connection(("127.0.0.1", s.port), timeout=IO_TIMEOUT) as c:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.sendall(b"GET /stream-db/ HTTP/1.1\r\nHost: x\r\n\r\n")
        first = c.recv(4096)
        assert first.startswith(b"HTTP/1.1 200")
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset at close
    assert until(lambda: any(line.startswith("finished") for line in _lines(log)), timeout=IO_TIMEOUT), s.log()
    lines = _lines(log)
    stream = [line for line in lines if line.startswith("stream-db")]
    assert len(stream) == 1, lines
    yielded, of = map(int, re.search(r"yielded=(\d+) of=(\d+)", stream[0]).groups())
    assert yielded < of // 4, lines  # closed where the client left, not run to its end
    assert lines[-1] == "finished db_open=False", lines
    assert lines.index(stream[0]) < lines.index("finished db_open=False")  # closed, then the signal
    # The worker goes on, and an ordinary request finishes as well.
    assert requests.get(s.url + "/ping/", timeout=IO_TIMEOUT).text == "ok"
    assert until(lambda: _lines(log).count("finished db_open=False") == 2, timeout=IO_TIMEOUT), _lines(log)
    assert "Traceback" not in s.stderr()


def test_request_finished_fires_for_a_stream_read_to_its_end(demo_ready, start_server, tmp_path):
    log = tmp_path / "finished.log"
    s = start_server(*ASGI, demo_ready, workers=1, env={"DJANGO_DEBUG": "0", "DEMO_FINISHED_LOG": str(log)})
    r = requests.get(s.url + "/stream-db/?mb=2", timeout=START_TIMEOUT)
    assert r.status_code == 200 and len(r.content) == 2 * 1024 * 1024
    assert until(lambda: "finished db_open=False" in _lines(log), timeout=IO_TIMEOUT), _lines(log)
    assert _lines(log)[0] == "stream-db yielded=32 of=32 products=%d" % requests.get(
        s.url + "/api/products/", timeout=IO_TIMEOUT).json()["count"]


def _record(log, path):
    for line in _lines(log):
        rec = json.loads(line)
        if rec["path"] == path:
            return rec
    return None


def test_timing_full_inside_djangos_async_chain(demo_ready, start_server, tmp_path):
    """--timing full under ASGI: the same report as for WSGI (each Django middleware, the view, the
    queries), for a sync view run in Django's thread and for an async view."""
    log = tmp_path / "access.jsonl"
    s = start_server(*ASGI, demo_ready, "--timing", "full", "--server-timing", "--access-log-json", str(log),
                     workers=1, env={"DJANGO_DEBUG": "0"})
    n = requests.get(s.url + "/api/products/", timeout=START_TIMEOUT).json()["count"]
    r = requests.get(s.url + "/api/categories-naive/", timeout=START_TIMEOUT)
    assert r.status_code == 200 and r.json()["count"] == n
    timing = r.headers["Server-Timing"]
    assert 'view;dur=' in timing and 'desc="shop.views.categories_naive"' in timing
    assert 'db;dur=' in timing and ('desc="%d queries, %d repeated"' % (n + 1, n - 1)) in timing
    for cls in MIDDLEWARE:
        assert "dj-%s;dur=" % cls in timing

    a = requests.get(s.url + "/async/products/", timeout=START_TIMEOUT)
    assert a.status_code == 200
    assert 'desc="shop.views.async_products"' in a.headers["Server-Timing"]
    assert 'db;dur=' in a.headers["Server-Timing"] and 'desc="1 query"' in a.headers["Server-Timing"]

    record = until(lambda: _record(log, "/api/categories-naive/"), timeout=IO_TIMEOUT)
    assert record is not None
    django = record["django"]
    assert django["db"]["queries"] == n + 1 and django["db"]["repeated"] == n - 1
    assert django["view"] == "shop.views.categories_naive"
    names = [m["name"] for m in django["middleware"]]
    assert names[0] == "django.middleware.security.SecurityMiddleware" and len(names) == 7, names
    inside = sum(m["us"] for m in django["middleware"]) + django["view_us"]
    assert inside <= record["stages"]["app_us"] + 1.0


def test_timing_full_keeps_interleaved_requests_apart(demo_ready, start_server):
    """Many requests at once on one loop: each gets its own queries, not a neighbour's."""
    s = start_server(*ASGI, demo_ready, "--timing", "full", "--server-timing", workers=1, env={"DJANGO_DEBUG": "0"})
    n = requests.get(s.url + "/api/products/", timeout=START_TIMEOUT).json()["count"]
    expected = {"/api/categories-naive/": ("shop.views.categories_naive", n + 1),
                "/async/products/": ("shop.views.async_products", 1),
                "/async/ping/": ("shop.views.async_ping", 0),
                "/ping/": ("shop.views.ping", 0)}

    def timing(path):
        r = requests.get(s.url + path, timeout=START_TIMEOUT)
        assert r.status_code == 200
        return path, r.headers["Server-Timing"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(timing, list(expected) * 10))
    for path, header in results:
        view, queries = expected[path]
        assert 'desc="%s"' % view in header, (path, header)
        assert re.search(r'db;dur=[0-9.]+;desc="%d quer' % queries, header), (path, header)
