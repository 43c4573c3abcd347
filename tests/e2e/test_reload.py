"""--reload: a save restarts the workers while the master keeps the listening socket; code that
does not import is served a 500 page with its traceback until the next good save.

Every test works on a temporary copy (a small app written here, or the Django demo copied), and
waits by polling: a save is followed by requests until the new answer comes, within a bound."""
import os
import re
import shutil
import socket
import threading
import time

import pytest

from conftest import REPO, SANITIZE, START_TIMEOUT, until, worker_pids

DEMO = os.path.join(REPO, "examples", "django_demo")
RELOAD_BOUND = 10.0 if SANITIZE else 3.0  # issue 15: the new response within 3 s of the save (release)

WSGI_APP = '''
VERSION = {version!r}

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [VERSION.encode()]
'''

ASGI_APP = '''
VERSION = {version!r}

async def app(scope, receive, send):
    await send({{"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}})
    await send({{"type": "http.response.body", "body": VERSION.encode()}})
'''

# Imports slowly, on cue: it says it is importing, then waits for go.flag, so that a test can
# save while the worker is starting.
SLOW_APP = '''
import os, time
VERSION = {version!r}
open("importing.flag", "w").close()
deadline = time.monotonic() + 20
while not os.path.exists("go.flag") and time.monotonic() < deadline:
    time.sleep(0.02)

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [VERSION.encode()]
'''


def save(path, text):
    """As an editor that writes in place does (CLOSE_WRITE)."""
    with open(path, "w") as f:
        f.write(text)


def save_by_rename(path, text):
    """As vim, JetBrains or sed -i do: a new file renamed over the old one (MOVED_TO)."""
    aside = os.path.join(os.path.dirname(path), ".%s.tmp" % os.path.basename(path))
    with open(aside, "w") as f:
        f.write(text)
    os.rename(aside, path)


def body_of(server, path="/", headers=None):
    try:
        status, _, body = server.get(path, headers=headers, timeout=5)
        return status, body
    except OSError as e:
        return None, repr(e).encode()



def wait_for_the_old_workers_to_go(server, old):
    """A reload starts the new workers first, then drains the old ones: until those have exited
    (slow under the sanitizers), a request may still reach one of them."""
    assert until(lambda: not set(worker_pids(server.pid)) & set(old), timeout=START_TIMEOUT), \
        (old, worker_pids(server.pid), server.log())

def wait_for_body(server, expected, path="/", bound=RELOAD_BOUND):
    """Seconds from now until `path` answers 200 `expected` (fails past `bound`)."""
    start = time.monotonic()
    got = until(lambda: body_of(server, path) == (200, expected), timeout=bound)
    took = time.monotonic() - start
    assert got, "no %r within %.1f s of the save; last: %r\n%s" % (expected, bound, body_of(server, path), server.log())
    return took


def detections(server):
    return re.findall(r"Detected a change in (\S+): restarting the workers", server.stderr())


@pytest.fixture
def project(tmp_path):
    d = tmp_path / "project"
    d.mkdir()
    save(d / "app.py", WSGI_APP.format(version="v1"))
    return d


def start_reloading(start_server, project, *args, app="app:app"):
    return start_server(app, "--reload", "--chdir", str(project), *args)


def test_a_saved_edit_is_served_within_3_s(start_server, project):
    server = start_reloading(start_server, project)
    wait_for_body(server, b"v1", bound=START_TIMEOUT)
    master = server.pid
    times = []
    for n in range(2, 6):
        (save if n % 2 else save_by_rename)(project / "app.py", WSGI_APP.format(version="v%d" % n))
        times.append(wait_for_body(server, b"v%d" % n))
    print("save to new response (s):", " ".join("%.2f" % t for t in times))
    assert server.proc.poll() is None and server.pid == master, "the master itself never restarts"
    assert len(detections(server)) == 4, server.log()
    assert "Reloading on changes to *.py *.html *.mo in %s" % project in server.stderr()


def test_code_that_does_not_import_gets_the_traceback_page_until_fixed(start_server, project):
    server = start_reloading(start_server, project, "-w", "2")
    wait_for_body(server, b"v1", bound=START_TIMEOUT)
    old = worker_pids(server.pid)
    save(project / "app.py", WSGI_APP.format(version="v2") + "\ndef broken(:\n")

    def error_page():
        status, headers, body = server.get("/some/page?x=1", headers={"Accept": "text/html,*/*;q=0.8"})
        return status == 500 and (headers, body)

    got = until(error_page, timeout=RELOAD_BOUND)
    assert got, server.log()
    wait_for_the_old_workers_to_go(server, old)
    headers, body = got
    page = body.decode()
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert "<h1>SyntaxError: invalid syntax</h1>" in page, page
    assert "app.py&quot;, line 8" in page and "def broken(:" in page, page
    assert "GET /some/page was not served" in page
    # Every request, on every worker, until the next good save; plain text for a non-browser.
    for _ in range(6):
        status, headers, body = server.get("/")
        assert status == 500 and headers["content-type"].startswith("text/plain"), (status, body)
        assert body.startswith(b"SyntaxError: invalid syntax\n") and b"def broken(:" in body, body
    # The console has the traceback too, once per worker that tried.
    assert server.wait_for_output(r"Exception in worker process:\n(.*\n)*.*line 8\n\s*def broken\(:"), server.log()
    save(project / "app.py", WSGI_APP.format(version="v3"))
    wait_for_body(server, b"v3")
    assert server.proc.poll() is None


def test_an_app_that_does_not_import_at_start_is_served_the_page_and_recovers(start_server, project):
    save(project / "app.py", "import no_such_module_here\n" + WSGI_APP.format(version="v1"))
    server = start_reloading(start_server, project)
    status, body = body_of(server)
    assert status == 500 and b"ModuleNotFoundError: No module named 'no_such_module_here'" in body, body
    save(project / "app.py", WSGI_APP.format(version="v2"))
    wait_for_body(server, b"v2")


def test_without_reload_a_broken_import_still_stops_the_server(start_server, project):
    save(project / "app.py", "def broken(:\n")
    server = start_server("app:app", "--chdir", str(project), wait=False)
    assert server.wait(timeout=START_TIMEOUT) == 3, server.log()
    assert "Worker failed to boot." in server.stderr()


def test_a_save_while_the_workers_start_is_not_lost(start_server, project):
    save(project / "app.py", SLOW_APP.format(version="v1"))
    server = start_reloading(start_server, project)  # accepting: the master listens; the worker imports
    assert until(lambda: (project / "importing.flag").exists()), server.log()
    # The worker is running v1's code now; the save lands before it serves.
    save(project / "app.py", SLOW_APP.format(version="v2"))
    (project / "go.flag").touch()
    wait_for_body(server, b"v2", bound=START_TIMEOUT)
    assert detections(server) == [str(project / "app.py")], server.log()


def test_a_save_during_a_reload_is_not_lost(start_server, project):
    save(project / "app.py", SLOW_APP.format(version="v1"))
    (project / "go.flag").touch()
    server = start_reloading(start_server, project)
    wait_for_body(server, b"v1", bound=START_TIMEOUT)
    (project / "go.flag").unlink()
    (project / "importing.flag").unlink()
    save(project / "app.py", SLOW_APP.format(version="v2"))
    # The new generation is importing v2 (the old one still serves v1); v3 is saved meanwhile.
    assert until(lambda: (project / "importing.flag").exists(), timeout=RELOAD_BOUND), server.log()
    assert body_of(server) == (200, b"v1")
    save(project / "app.py", SLOW_APP.format(version="v3"))
    (project / "go.flag").touch()
    wait_for_body(server, b"v3", bound=START_TIMEOUT)
    assert len(detections(server)) == 2, server.log()


def test_the_listening_socket_never_refuses_during_reloads(start_server, project):
    server = start_reloading(start_server, project, "-w", "2")
    wait_for_body(server, b"v1", bound=START_TIMEOUT)
    stop = threading.Event()
    seen, failures = [], []

    def client():
        # A new connection per request, as a browser reloading a page: connect() throughout.
        while not stop.is_set():
            try:
                with socket.create_connection((server.host, server.port), timeout=5) as s:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    data = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    failures.append(data[:200])
                seen.append(body)
            except OSError as e:
                failures.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for n in range(2, 6):
            save(project / "app.py", WSGI_APP.format(version="v%d" % n))
            wait_for_body(server, b"v%d" % n)
            count = len(seen)
            assert until(lambda: len(seen) > count + 20), "the clients stalled"
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not failures, failures[:5]
    assert {b"v1", b"v2", b"v3", b"v4", b"v5"} <= set(seen)


def test_reload_include_and_exclude_are_honoured(start_server, project):
    save(project / "skip_me.py", "x = 1\n")
    save(project / "settings.cfg", "a = 1\n")
    save(project / "notes.txt", "a\n")
    server = start_reloading(start_server, project, "--reload-exclude", "skip_*.py", "--reload-include", "*.cfg",
                             "--reload-extra-file", str(project / "notes.txt"))
    wait_for_body(server, b"v1", bound=START_TIMEOUT)
    # Events are taken in order: a reload for skip_me.py would be detected before the next one.
    save(project / "skip_me.py", "x = 2\n")
    save(project / "settings.cfg", "a = 2\n")
    assert server.wait_for_output(r"Detected a change in \S+settings\.cfg"), server.log()
    save(project / "readme.md", "not watched\n")
    save(project / "notes.txt", "b\n")
    assert server.wait_for_output(r"Detected a change in \S+notes\.txt"), server.log()
    assert detections(server) == [str(project / "settings.cfg"), str(project / "notes.txt")], server.log()


def test_installed_packages_and_virtualenvs_are_not_watched(start_server, project):
    site = project / "venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    save(project / "venv" / "pyvenv.cfg", "home = /usr/bin\n")
    save(site / "dep.py", "x = 1\n")
    dist = project / "vendor" / "dist-packages"
    dist.mkdir(parents=True)
    save(dist / "other.py", "x = 1\n")
    server = start_reloading(start_server, project, "--reload-dir", str(project),
                             "--reload-dir", "/usr/lib/python3/dist-packages")
    wait_for_body(server, b"v1", bound=START_TIMEOUT)
    assert "--reload: not watching /usr/lib/python3/dist-packages" in server.stderr(), server.log()
    assert "(2 directories watched)" in server.stderr(), "the project and vendor/, nothing below\n" + server.log()
    save(site / "dep.py", "x = 2\n")
    save(dist / "other.py", "x = 2\n")
    save(project / "app.py", WSGI_APP.format(version="v2"))
    wait_for_body(server, b"v2")
    assert detections(server) == [str(project / "app.py")], server.log()


def test_asgi_reloads_and_shows_the_traceback_page(start_server, project):
    save(project / "app.py", ASGI_APP.format(version="a1"))
    server = start_reloading(start_server, project, "--lifespan", "off")
    wait_for_body(server, b"a1", bound=START_TIMEOUT)
    save_by_rename(project / "app.py", ASGI_APP.format(version="a2"))
    wait_for_body(server, b"a2")
    old = worker_pids(server.pid)
    save(project / "app.py", ASGI_APP.format(version="a3").replace("async def app", "async def app("))
    # Status and body from one response: until the old workers have had their TERM, the next
    # request may still reach one of them (the reload serves without a gap).
    got = until(lambda: (lambda r: r[0] == 500 and r)(body_of(server)), timeout=RELOAD_BOUND)
    assert got, server.log()
    status, body = got
    assert b"SyntaxError" in body and b"app.py" in body, body
    wait_for_the_old_workers_to_go(server, old)
    assert body_of(server)[0] == 500, "every request gets the page until the next good save"
    save(project / "app.py", ASGI_APP.format(version="a4"))
    wait_for_body(server, b"a4")


@pytest.fixture
def demo_copy(tmp_path):
    """The Django demo, copied without its database and collected files (/ping/ needs neither)."""
    copy = tmp_path / "django_demo"
    shutil.copytree(DEMO, copy, ignore=shutil.ignore_patterns("db.sqlite3", "staticfiles", "__pycache__", "*.pyc"))
    return copy


PING = 'def ping(request):\n    return HttpResponse("ok")\n'


@pytest.mark.parametrize("app", ["demo.wsgi:application", "demo.asgi:application"])
def test_the_django_demo_reloads_a_view_and_shows_a_broken_one(start_server, demo_copy, app):
    server = start_server(app, "--reload", "--chdir", str(demo_copy), env={"DJANGO_DEBUG": "0"})
    wait_for_body(server, b"ok", path="/ping/", bound=START_TIMEOUT)
    views = demo_copy / "shop" / "views.py"
    source = views.read_text()
    assert PING in source
    times = []
    for n in range(2, 5):
        save_by_rename(views, source.replace(PING, PING.replace('"ok"', '"ok-%d"' % n)))
        times.append(wait_for_body(server, b"ok-%d" % n, path="/ping/"))
    print("demo (%s) save to new response (s):" % app, " ".join("%.2f" % t for t in times))
    # A view that no longer imports: the URLconf is imported with the app under --reload, so
    # the page shows it at once, for every URL (not only the broken view's).
    old = worker_pids(server.pid)
    save(views, source.replace(PING, 'def ping(request)\n    return HttpResponse("ok")\n'))

    def error_page():
        status, _, body = server.get("/ping/", headers={"Accept": "text/html"})
        return status == 500 and body.decode()

    page = until(error_page, timeout=RELOAD_BOUND)
    assert page, server.log()
    wait_for_the_old_workers_to_go(server, old)
    assert "SyntaxError" in page and "shop/views.py" in page and "def ping(request)" in page, page
    status, _, body = server.get("/api/products/", headers={"Accept": "application/json"})
    assert status == 500 and b"SyntaxError" in body
    assert server.wait_for_output(r"(?s)Exception in worker process:.*shop/views\.py"), server.log()
    save(views, source)
    wait_for_body(server, b"ok", path="/ping/")
