"""The Django demo (examples/django_demo) served by the binary, exercised like a browser would.

Skipped while the demo is absent. GANTRY_E2E_DJANGO_DEMO may point at another copy of the demo
(used to validate these tests before the demo landed on this branch)."""
import hashlib
from concurrent.futures import ThreadPoolExecutor
import html.parser
import os
import re
import subprocess
import time
import uuid

import pytest
import requests

from conftest import REPO, START_TIMEOUT, ServerFactory

DEMO = os.environ.get("GANTRY_E2E_DJANGO_DEMO") or os.path.join(REPO, "examples", "django_demo")

pytestmark = pytest.mark.skipif(not os.path.isfile(os.path.join(DEMO, "demo", "wsgi.py")),
                                reason="examples/django_demo not present yet")


@pytest.fixture(scope="session")
def demo_ready():
    """migrate + seed + collectstatic, once per session."""
    setup = os.path.join(DEMO, "setup.sh")
    if os.path.exists(setup):
        out = subprocess.run(["sh", setup], capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, "setup.sh failed:\n%s\n%s" % (out.stdout, out.stderr)
    return DEMO


@pytest.fixture(scope="module")
def django_server(demo_ready, tmp_path_factory):
    factory = ServerFactory(tmp_path_factory)
    # Debug off (the default) so /boom/ is a plain 500 page, as in production.
    env = {"DJANGO_DEBUG": "0"}
    yield factory("demo.wsgi:application", "--chdir", demo_ready, "--threads", "2", env=env)
    factory.teardown()


def test_ping(django_server):
    r = requests.get(django_server.url + "/ping/", timeout=START_TIMEOUT)
    assert r.status_code == 200
    assert r.text == "ok"


def test_index_renders_html(django_server):
    r = requests.get(django_server.url + "/", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert re.search(r"(?i)<html", r.text) and "</html>" in r.text
    assert "/static/" in r.text          # base template links the collected static files


class _FormParser(html.parser.HTMLParser):
    """Collects the csrf token and the category <option> values of the product form."""

    def __init__(self):
        super().__init__()
        self.csrf, self.categories, self._in_category = None, [], False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name") == "csrfmiddlewaretoken":
            self.csrf = a.get("value")
        elif tag == "select" and a.get("name") == "category":
            self._in_category = True
        elif tag == "option" and self._in_category and a.get("value"):
            self.categories.append(a["value"])

    def handle_endtag(self, tag):
        if tag == "select":
            self._in_category = False


def test_form_post_with_csrf_creates_object(django_server):
    url = django_server.url + "/products/new/"
    with requests.Session() as s:
        page = s.get(url, timeout=10)
        assert page.status_code == 200
        form = _FormParser()
        form.feed(page.text)
        assert form.csrf and "csrftoken" in s.cookies, page.text[:500]
        assert form.categories
        name = "e2e product %s" % uuid.uuid4().hex[:8]
        data = {"csrfmiddlewaretoken": form.csrf, "name": name, "category": form.categories[0],
                "price": "12.50", "description": "made by the e2e suite"}
        r = s.post(url, data=data, headers={"Referer": url}, allow_redirects=False, timeout=10)
        assert r.status_code in (302, 303), (r.status_code, r.text[:500])
        detail = s.get(django_server.url + r.headers["Location"] if r.headers["Location"].startswith("/")
                       else r.headers["Location"], timeout=10)
        assert detail.status_code == 200 and name in detail.text
        names = [p["name"] for p in s.get(django_server.url + "/api/products/", timeout=10).json()["products"]]
        assert name in names


def test_form_post_without_csrf_is_rejected(django_server):
    r = requests.post(django_server.url + "/products/new/", data={"name": "no csrf"}, timeout=10)
    assert r.status_code == 403


def test_json_api(django_server):
    r = requests.get(django_server.url + "/api/products/", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    data = r.json()
    assert data["count"] == len(data["products"]) > 0
    first = data["products"][0]
    one = requests.get(django_server.url + "/api/products/%d/" % first["id"], timeout=10).json()
    assert one["name"] == first["name"]


def test_upload_sha256(django_server):
    payload = os.urandom(3 * 1024 * 1024 + 5)   # above Django's in-memory limit: goes to a temp file
    r = requests.post(django_server.url + "/upload/", files={"file": ("e2e.bin", payload)}, timeout=30)
    assert r.status_code == 200, r.text[:500]
    got = r.json()
    assert got["sha256"] == hashlib.sha256(payload).hexdigest()
    assert got["size"] == len(payload)
    assert got["name"] == "e2e.bin"


def test_stream_streams(django_server):
    n = 100    # the view sleeps 10 ms between lines: about 1 s in all
    t0 = time.monotonic()
    with requests.get(django_server.url + "/stream/?n=%d" % n, stream=True, timeout=10) as r:
        assert r.status_code == 200
        assert r.headers.get("Transfer-Encoding") == "chunked"
        chunks = r.iter_content(chunk_size=None)
        first = next(chunks)
        t_first = time.monotonic() - t0
        body = first + b"".join(chunks)
        t_all = time.monotonic() - t0
    lines = body.decode().splitlines()
    assert len(lines) == n and lines[0].startswith("line 1 of %d" % n)
    assert t_all > 0.8
    assert t_first < t_all / 2, (t_first, t_all)


def test_boom_is_500_with_traceback_then_recovers(django_server):
    r = requests.get(django_server.url + "/boom/", timeout=10)
    assert r.status_code == 500
    assert django_server.wait_for_output(r"boom: deliberate failure from the demo"), django_server.log()
    assert "Traceback" in django_server.stderr()
    after = requests.get(django_server.url + "/ping/", timeout=10)
    assert after.status_code == 200 and after.text == "ok"


def test_timing_full_reports_django_middleware_view_and_the_n_plus_one(demo_ready, start_server, tmp_path):
    """--timing full: each Django middleware (settings untouched), the view and the database,
    with a view doing N+1 queries reported as such, in Server-Timing and the JSON log."""
    import json

    log = tmp_path / "access.jsonl"
    server = start_server("demo.wsgi:application", "--chdir", demo_ready, "--timing", "full", "--server-timing",
                          "--access-log-json", str(log), env={"DJANGO_DEBUG": "0"})
    n = requests.get(server.url + "/api/products/", timeout=START_TIMEOUT).json()["count"]
    assert n >= 3
    r = requests.get(server.url + "/api/categories-naive/", timeout=START_TIMEOUT)
    assert r.status_code == 200 and r.json()["count"] == n
    timing = r.headers["Server-Timing"]
    assert 'view;dur=' in timing and 'desc="shop.views.categories_naive"' in timing
    assert 'db;dur=' in timing and ('desc="%d queries, %d repeated"' % (n + 1, n - 1)) in timing
    for cls in ("SecurityMiddleware", "SessionMiddleware", "CommonMiddleware", "CsrfViewMiddleware",
                "AuthenticationMiddleware", "MessageMiddleware", "XFrameOptionsMiddleware"):
        assert "dj-%s;dur=" % cls in timing

    deadline = time.monotonic() + 10
    record = None
    while time.monotonic() < deadline and record is None:
        if log.exists():
            for line in log.read_text().splitlines():
                rec = json.loads(line)
                if rec["path"] == "/api/categories-naive/":
                    record = rec
        time.sleep(0.05)
    assert record is not None
    django = record["django"]
    assert django["db"]["queries"] == n + 1 and django["db"]["repeated"] == n - 1
    assert django["view"] == "shop.views.categories_naive"
    names = [m["name"] for m in django["middleware"]]
    assert names[0] == "django.middleware.security.SecurityMiddleware" and len(names) == 7
    inside = sum(m["us"] for m in django["middleware"]) + django["view_us"]
    assert inside <= record["stages"]["app_us"] + 1.0


def test_demo_timing_outputs_allow_list_json_and_metrics_over_two_workers(demo_ready, start_server, tmp_path):
    """The demo under two workers with every timing output on: Server-Timing for loopback only,
    JSON records whose stages add up to no more than the total, and /metrics whose counters grow
    with the load of both workers."""
    import json
    import socket

    from conftest import free_port
    from prometheus_client.parser import text_string_to_metric_families

    log = tmp_path / "access.jsonl"
    mport = free_port("127.0.0.1")
    server = start_server("demo.wsgi:application", "--chdir", demo_ready, "-w", "2", "--server-timing",
                          "--timing-allow-ips", "127.0.0.1", "--access-log-json", str(log),
                          "--metrics-bind", "127.0.0.1:%d" % mport, env={"DJANGO_DEBUG": "0"})

    def requests_2xx():
        text = requests.get("http://127.0.0.1:%d/metrics" % mport, timeout=START_TIMEOUT).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "gantry_requests_total" and s.labels.get("status") == "2xx":
                    return s.value
        raise AssertionError("no gantry_requests_total")

    assert requests_2xx() == 0
    r = requests.get(server.url + "/ping/", timeout=START_TIMEOUT)
    assert "app;dur=" in r.headers["Server-Timing"]
    # From 127.0.0.2: outside the allow list, no header.
    with socket.create_connection(("127.0.0.1", server.port), timeout=START_TIMEOUT, source_address=("127.0.0.2", 0)) as c:
        c.sendall(b"GET /ping/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        raw = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            raw += chunk
    assert raw.startswith(b"HTTP/1.1 200") and b"Server-Timing" not in raw

    # New connections, several at a time, in rounds until both workers have served some: which
    # worker accepts is the kernel's choice, and a fast worker can take every connection.
    def ping(_):
        return requests.get(server.url + "/ping/", timeout=START_TIMEOUT, headers={"Connection": "close"}).status_code

    def read_records():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    n = 0
    records = []
    for _ in range(20):
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(ping, range(40))) == {200}
        n += 40
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(records) < n + 2:
            records = read_records()
            time.sleep(0.05)
        if len({rec["pid"] for rec in records}) == 2:
            break
    assert requests_2xx() == n + 2
    assert len(records) == n + 2
    assert len({rec["pid"] for rec in records}) == 2, "both workers served and logged"
    for rec in records:
        assert sum(rec["stages"].values()) <= rec["total_us"] + 1.0, rec
