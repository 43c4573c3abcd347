"""Static files served natively (the "static" middleware): headers, variants, conditionals, ranges,
traversal attempts, Django's STATIC_ROOT and finders, inotify, `gantry compress-static`.

Real clients throughout: requests, http.client, raw sockets (traversal attempts are sent as raw
bytes so no client library normalises them), curl for the big file."""
import gzip
import hashlib
import os
import random
import shutil
import subprocess
import time

import brotli
import pytest
import requests
import zstandard

from conftest import IO_TIMEOUT, REPO, START_TIMEOUT, ServerFactory, gantry_bin, raw, status_of

SECRET = b"TOPSECRET-must-never-be-served"
DEMO = os.path.join(REPO, "examples", "django_demo")


def css_text(n):
    rnd = random.Random(3)
    out = []
    while sum(map(len, out)) < n:
        out.append(".c%d > a:hover { color: #%06x; margin: %dpx auto; }\n" % (rnd.randrange(500), rnd.randrange(1 << 24), rnd.randrange(40)))
    return "".join(out)[:n].encode()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A static root with every case the tests need, and a secret beside it (outside the root)."""
    base = tmp_path_factory.mktemp("static")
    root = base / "root"
    (root / "css").mkdir(parents=True)
    (root / "sub").mkdir()
    (root / ".git").mkdir()
    (base / "secret.txt").write_bytes(SECRET)
    (base / "outside").mkdir()
    (base / "outside" / "secret.txt").write_bytes(SECRET)
    (root / ".env").write_bytes(SECRET)
    (root / ".git" / "config").write_bytes(SECRET)
    (root / "css" / ".hidden.css").write_bytes(SECRET)
    (root / "css" / "site.css").write_bytes(css_text(20000))
    (root / "app.0123456789ab.js").write_bytes(b"console.log('hashed');\n")
    (root / "sub" / "index.html").write_bytes(b"<p>not a listing</p>")
    (root / "big.bin").write_bytes(random.Random(5).randbytes(1 << 20))  # > memory_file_max: sendfile
    (root / "empty.txt").write_bytes(b"")
    for name in ("m.mjs", "m.wasm", "p.webp", "p.avif", "f.woff2", "i.svg", "app.js.map", "d.json", "a.js"):
        (root / name).write_bytes(b"x" * 10)
    os.symlink(base / "outside" / "secret.txt", root / "leak.txt")
    os.symlink(base / "outside", root / "leakdir")
    os.symlink(root / "css" / "site.css", root / "alias.css")
    out = subprocess.run(gantry_bin() + ["compress-static", str(root)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return root


@pytest.fixture(scope="module")
def static_server(files, tmp_path_factory):
    factory = ServerFactory(tmp_path_factory)
    yield factory("probe:app", "--static", "/static/=%s" % files)
    factory.teardown()


def get(server, path, headers=None, method="GET"):
    c = server.http()
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


# ---- 1. what is served, 2. headers -------------------------------------------------------------

def test_serves_a_file_with_whitenoise_headers(static_server, files):
    r = requests.get(static_server.url + "/static/css/site.css", headers={"Accept-Encoding": "identity"}, timeout=IO_TIMEOUT)
    assert r.status_code == 200
    assert r.content == (files / "css" / "site.css").read_bytes()
    h = r.headers
    assert h["Content-Type"] == "text/css; charset=utf-8"
    assert h["Content-Length"] == str(len(r.content))
    st = os.stat(files / "css" / "site.css")
    assert h["ETag"] == '"%x-%x"' % (int(st.st_mtime), st.st_size)
    assert h["Last-Modified"] == time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(st.st_mtime))
    assert h["Cache-Control"] == "max-age=60, public"
    assert h["Vary"] == "Accept-Encoding"
    assert h["Access-Control-Allow-Origin"] == "*"
    assert h["Accept-Ranges"] == "bytes"
    assert "Content-Encoding" not in h


@pytest.mark.parametrize("name,ctype", [
    ("a.js", "text/javascript; charset=utf-8"), ("m.mjs", "text/javascript; charset=utf-8"),
    ("m.wasm", "application/wasm"), ("p.webp", "image/webp"), ("p.avif", "image/avif"),
    ("f.woff2", "font/woff2"), ("i.svg", "image/svg+xml; charset=utf-8"),
    ("app.js.map", "application/json; charset=utf-8"), ("d.json", "application/json; charset=utf-8"),
    ("empty.txt", "text/plain; charset=utf-8"),
])
def test_content_types(static_server, name, ctype):
    status, h, body = get(static_server, "/static/" + name)
    assert status == 200 and h["content-type"] == ctype
    assert "vary" not in h  # no precompressed variant of these small files
    assert int(h["content-length"]) == len(body)


def test_hashed_names_are_immutable(static_server):
    status, h, _ = get(static_server, "/static/app.0123456789ab.js")
    assert status == 200
    assert h["cache-control"] == "max-age=31536000, public, immutable"


def test_max_age_is_configurable(files, start_server, tmp_path):
    conf = tmp_path / "gantry.toml"
    conf.write_text('static = ["/assets/=%s"]\n[[middleware]]\nname = "timing"\n[[middleware]]\nname = "static"\nmax_age = 300\ncors = false\n' % files)
    server = start_server("probe:app", "-c", str(conf))
    status, h, _ = get(server, "/assets/css/site.css")
    assert status == 200
    assert h["cache-control"] == "max-age=300, public"
    assert "access-control-allow-origin" not in h


def test_other_paths_still_reach_the_app(static_server):
    status, _, body = get(static_server, "/hello")
    assert status == 200 and body.startswith(b"probe GET /hello")
    status, _, body = get(static_server, "/staticfoo")
    assert status == 200 and body.startswith(b"probe GET /staticfoo")


def test_without_mounts_static_passes_everything_on(start_server):
    server = start_server("probe:app")  # default chain timing,static, nothing to serve
    status, _, body = get(server, "/static/css/site.css")
    assert status == 200 and body.startswith(b"probe GET /static/css/site.css")


def test_static_flag_needs_the_middleware(files, start_server):
    server = start_server("probe:app", "--middleware", "timing", "--static", "/s/=%s" % files, wait=False)
    assert server.wait(timeout=START_TIMEOUT) == 2
    assert "needs the 'static' middleware" in server.stderr()
    server = start_server("probe:app", "--static", "/s/=/nonexistent/gantry", wait=False)
    assert server.wait(timeout=START_TIMEOUT) == 2
    assert "is not a directory" in server.stderr()


# ---- 4. precompressed variants ----------------------------------------------------------------

@pytest.mark.parametrize("accept,encoding", [
    ("gzip, deflate, br", "br"), ("gzip, deflate, br, zstd", "br"), ("zstd", "zstd"), ("gzip", "gzip"),
    ("br;q=0.4, gzip;q=0.5", "gzip"), ("br;q=0, *", "zstd"), ("identity;q=0, *", "br"),
    ("*;q=0, identity", None), ("deflate", None), ("", None), ("gzip;q=0", None), ("x-gzip", "gzip"),
    ("gzip;q=0.5, identity", None), ("br;q=nonsense", None),
])
def test_variant_chosen_by_accept_encoding(static_server, files, accept, encoding):
    status, h, body = get(static_server, "/static/css/site.css", {"Accept-Encoding": accept} if accept else {})
    assert status == 200
    assert h.get("content-encoding") == encoding
    assert h["vary"] == "Accept-Encoding"
    assert int(h["content-length"]) == len(body)
    original = (files / "css" / "site.css").read_bytes()
    decoded = {None: lambda b: b, "gzip": gzip.decompress, "br": brotli.decompress,
               "zstd": lambda b: zstandard.ZstdDecompressor().decompress(b)}[encoding](body)
    assert decoded == original
    if encoding:
        suffix = {"gzip": ".gz", "br": ".br", "zstd": ".zst"}[encoding]
        st = os.stat(str(files / "css" / "site.css") + suffix)
        assert h["etag"] == '"%x-%x"' % (int(st.st_mtime), st.st_size)  # each variant its own ETag


def test_compress_static_subcommand(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "app.js").write_bytes(css_text(30000))
    (tmp_path / "photo.png").write_bytes(css_text(30000))              # incompressible type
    (tmp_path / "noise.css").write_bytes(random.Random(1).randbytes(30000))  # gains < 5%
    out = subprocess.run(gantry_bin() + ["compress-static", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "3 files: 3 variants written, 1 skipped (incompressible type), 3 skipped (under 5% saved)" in out.stdout
    original = (tmp_path / "a" / "app.js").read_bytes()
    assert gzip.decompress((tmp_path / "a" / "app.js.gz").read_bytes()) == original
    assert brotli.decompress((tmp_path / "a" / "app.js.br").read_bytes()) == original
    assert zstandard.ZstdDecompressor().decompress((tmp_path / "a" / "app.js.zst").read_bytes()) == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "noise.css", "photo.png"]
    bad = subprocess.run(gantry_bin() + ["compress-static", str(tmp_path / "nope")], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a directory" in bad.stderr


# ---- 3. conditional and partial ---------------------------------------------------------------

def test_if_none_match(static_server):
    _, h, _ = get(static_server, "/static/css/site.css")
    etag = h["etag"]
    for inm in (etag, "W/" + etag, '"nope", %s' % etag, "*"):
        status, h304, body = get(static_server, "/static/css/site.css", {"If-None-Match": inm})
        assert status == 304, inm
        assert body == b""
        assert h304["etag"] == etag and h304["cache-control"] == "max-age=60, public"
        assert h304["vary"] == "Accept-Encoding"
    assert get(static_server, "/static/css/site.css", {"If-None-Match": '"nope"'})[0] == 200
    # If-None-Match wins over a matching If-Modified-Since.
    assert get(static_server, "/static/css/site.css",
               {"If-None-Match": '"nope"', "If-Modified-Since": h["last-modified"]})[0] == 200


def test_if_modified_since(static_server):
    _, h, _ = get(static_server, "/static/css/site.css")
    assert get(static_server, "/static/css/site.css", {"If-Modified-Since": h["last-modified"]})[0] == 304
    assert get(static_server, "/static/css/site.css", {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:01 GMT"})[0] == 200
    assert get(static_server, "/static/css/site.css", {"If-Modified-Since": "not a date"})[0] == 200


@pytest.mark.parametrize("path", ["/static/css/site.css", "/static/big.bin"])  # memory, then sendfile
def test_ranges(static_server, files, path):
    data = (files / path[len("/static/"):]).read_bytes()
    n = len(data)
    status, h, body = get(static_server, path, {"Range": "bytes=10-109"})
    assert status == 206 and body == data[10:110]
    assert h["content-range"] == "bytes 10-109/%d" % n and h["content-length"] == "100"
    status, h, body = get(static_server, path, {"Range": "bytes=-50"})
    assert status == 206 and body == data[-50:]
    status, h, body = get(static_server, path, {"Range": "bytes=%d-" % (n - 7)})
    assert status == 206 and body == data[-7:]
    status, h, body = get(static_server, path, {"Range": "bytes=%d-" % n})
    assert status == 416 and h["content-range"] == "bytes */%d" % n and body == b""
    status, h, body = get(static_server, path, {"Range": "bytes=0-0,5-9"})  # several: the whole file
    assert status == 200 and body == data
    status, h, body = get(static_server, path, {"Range": "bytes=9-1"})  # invalid: ignored
    assert status == 200 and body == data
    _, h0, _ = get(static_server, path)
    assert get(static_server, path, {"Range": "bytes=0-9", "If-Range": h0["etag"]})[:1] == (206,)
    status, _, body = get(static_server, path, {"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert status == 200 and body == data
    assert get(static_server, path, {"Range": "bytes=0-9", "If-Range": h0["last-modified"]})[0] == 206


def test_range_of_a_precompressed_variant(static_server, files):
    gz = (files / "css" / "site.css.gz").read_bytes()
    status, h, body = get(static_server, "/static/css/site.css", {"Accept-Encoding": "gzip", "Range": "bytes=0-19"})
    assert status == 206 and h["content-encoding"] == "gzip" and body == gz[:20]
    assert h["content-range"] == "bytes 0-19/%d" % len(gz)


def test_head(static_server, files):
    for path in ("/static/css/site.css", "/static/big.bin"):
        with raw(static_server) as c:
            c.send(b"HEAD %s HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n" % path.encode())
            r = c.response("HEAD")
            assert r.status == 200  # Range is for GET only
            assert int(r.getheader("Content-Length")) == os.path.getsize(files / path[len("/static/"):])
            assert r.body == b""
            # The connection is still usable: the next answer starts right there.
            c.send(b"GET /static/empty.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            r2 = c.response()
            assert r2.status == 200 and r2.body == b""


def test_big_file_by_curl_and_keep_alive(static_server, files):
    want = hashlib.sha256((files / "big.bin").read_bytes()).hexdigest()
    out = subprocess.run(["curl", "-sS", "--fail", static_server.url + "/static/big.bin",
                          static_server.url + "/static/big.bin"], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    half = len(out.stdout) // 2
    assert hashlib.sha256(out.stdout[:half]).hexdigest() == want
    assert hashlib.sha256(out.stdout[half:]).hexdigest() == want
    with requests.Session() as s:  # several on one connection, memory and sendfile mixed
        for path in ("/static/big.bin", "/static/css/site.css", "/static/big.bin"):
            r = s.get(static_server.url + path, timeout=IO_TIMEOUT)  # requests decodes br/gzip itself
            assert r.status_code == 200 and r.content == (files / path[len("/static/"):]).read_bytes()


def test_absolute_form_target(static_server):
    with raw(static_server) as c:
        c.send(b"GET http://example.com/static/a.js HTTP/1.1\r\nHost: example.com\r\n\r\n")
        r = c.response()
        assert r.status == 200 and r.body == b"x" * 10
        c.send(b"GET http://example.com/static/../secret.txt HTTP/1.1\r\nHost: example.com\r\n\r\n")
        assert c.response().status == 404


def test_pipelined_static_requests(static_server, files):
    with raw(static_server) as c:
        c.send(b"GET /static/a.js HTTP/1.1\r\nHost: x\r\n\r\n" * 3 + b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
               + b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(3):
            assert c.response().body == b"x" * 10
        assert c.response().body == (files / "big.bin").read_bytes()
        assert c.response().body.startswith(b"probe GET /hello")


# ---- 5. safety ----------------------------------------------------------------------------------

TRAVERSALS = [
    b"../../../../etc/passwd", b"..%2f..%2f..%2fetc%2fpasswd", b"%2e%2e/%2e%2e/secret.txt",
    b"%2e%2e%2f%2e%2e%2fetc%2fpasswd", b"%2E%2E/secret.txt", b".%2e/secret.txt", b"%2e./secret.txt",
    b"%252e%252e/secret.txt", b"..%5c..%5csecret.txt", b"%5c%5c..%5csecret.txt", b"css/../../secret.txt",
    b"css/%2e%2e/%2e%2e/secret.txt", b"%c0%ae%c0%ae/secret.txt", b"%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afsecret.txt",
    b"%e0%80%ae%e0%80%ae/secret.txt", b"..%c0%afsecret.txt", b"%c1%9c..%c1%9csecret.txt",
    b"..%ef%bc%8f..%ef%bc%8fsecret.txt", b"..%00/secret.txt", b"site.css%00.png", b"%00", b"css%2fsite.css",
    b"%2fetc%2fpasswd", b"/etc/passwd", b"//etc/passwd", b".env", b".git/config", b"css/.hidden.css",
    b"%2eenv", b"%2egit/config", b"leak.txt", b"leakdir/secret.txt", b"secret.txt", b"css/", b"css", b"",
    b"sub/", b"sub", b".", b"..", b"./css/site.css", b"css/./site.css", b"css//site.css",
    b"....//....//secret.txt", b"..;/secret.txt", b"css/site.css/..", b"css/site.css%2f..",
    b"%u002e%u002e/secret.txt", b"%", b"%zz", b"%2", b"css/site.css%", b"%ff%fe", b"a%0d%0aX-Injected:%201",
    b"..%255c..%255csecret.txt", b"%2e%2e%5csecret.txt",
    b"..\\..\\secret.txt", b"css\\site.css", b"\xc0\xae\xc0\xae/secret.txt", b"\xff.css",
]
# Bytes the HTTP grammar forbids in a request-target: the parser may refuse them (400) before
# the static middleware sees them; either way nothing is served.
RAW_INVALID = [b"..\x00/secret.txt", b"a\x01b", b"css/site.css\x7f"]


@pytest.mark.parametrize("attempt", TRAVERSALS, ids=lambda b: b.decode("latin-1"))
def test_traversal_attempts_are_404(static_server, attempt):
    with raw(static_server) as c:
        c.send(b"GET /static/" + attempt + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = c.read_until_close()
    assert status_of(data) == 404, data[:300]
    assert SECRET not in data and b"root:" not in data and b"not a listing" not in data


@pytest.mark.parametrize("attempt", RAW_INVALID, ids=lambda b: repr(b))
def test_raw_invalid_bytes_are_refused(static_server, attempt):
    with raw(static_server) as c:
        c.send(b"GET /static/" + attempt + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = c.read_until_close()
    assert status_of(data) in (400, 404), data[:300]
    assert SECRET not in data


def test_traversal_list_is_long_enough_and_the_worker_survives(static_server):
    assert len(TRAVERSALS) + len(RAW_INVALID) >= 30
    static_server.assert_serving()
    assert get(static_server, "/static/alias.css")[0] == 200  # a symlink that stays inside is served


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_other_methods_are_405(static_server, method):
    status, h, _ = get(static_server, "/static/css/site.css", method=method)
    assert status == 405
    assert h["allow"] == "GET, HEAD"


def test_a_file_that_vanishes_is_404(files, start_server, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(files, root, symlinks=True)
    server = start_server("probe:app", "--static", "/static/=%s" % root)
    assert get(server, "/static/big.bin")[0] == 200
    os.unlink(root / "big.bin")
    assert get(server, "/static/big.bin")[0] == 404
    (root / "big.bin").write_bytes(b"now another size")  # indexed size no longer true: not served
    assert get(server, "/static/big.bin")[0] == 404
    server.assert_serving()


# ---- 1. Django: STATIC_ROOT, DEBUG finders, inotify ---------------------------------------------

demo_present = pytest.mark.skipif(not os.path.isfile(os.path.join(DEMO, "demo", "wsgi.py")), reason="no demo")


@demo_present
def test_django_static_root_is_served_natively(start_server):
    out = subprocess.run(["sh", os.path.join(DEMO, "setup.sh")], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    server = start_server("demo.wsgi:application", "--chdir", DEMO, env={"DJANGO_DEBUG": "0"})
    assert server.wait_for_output(r"static: /static/ -> .*staticfiles: \d+ files")
    collected = os.path.join(DEMO, "staticfiles", "shop", "style.css")
    status, h, body = get(server, "/static/shop/style.css")
    # DEBUG off: Django itself would 404 here; gantry answers from STATIC_ROOT.
    assert status == 200 and body == open(collected, "rb").read()
    assert h["access-control-allow-origin"] == "*" and "etag" in h
    status, h, _ = get(server, "/static/admin/css/base.css")
    assert status == 200 and h["content-type"] == "text/css; charset=utf-8"
    assert get(server, "/static/shop/nope.css")[0] == 404
    assert get(server, "/ping/")[2] == b"ok"


@pytest.fixture
def dev_demo(tmp_path):
    """A copy of the demo without collectstatic: DEBUG mode must find files through the finders."""
    copy = tmp_path / "demo"
    shutil.copytree(DEMO, copy, ignore=shutil.ignore_patterns("staticfiles", "db.sqlite3", "__pycache__"))
    return copy


@demo_present
def test_django_debug_uses_the_finders_and_follows_changes(dev_demo, start_server):
    server = start_server("demo.wsgi:application", "--chdir", str(dev_demo), env={"DJANGO_DEBUG": "1"})
    assert not (dev_demo / "staticfiles").exists()
    app_static = dev_demo / "shop" / "static" / "shop"
    status, _, body = get(server, "/static/shop/style.css")
    assert status == 200 and body == (app_static / "style.css").read_bytes()
    assert get(server, "/static/admin/css/base.css")[0] == 200  # django.contrib.admin's app dir
    # A new file appears without a restart (inotify), a changed one is served new, a removed one goes.
    (app_static / "new.css").write_bytes(b"body { color: red }\n")
    assert wait_status(server, "/static/shop/new.css", 200)
    (app_static / "new.css").write_bytes(b"body { color: blue; margin: 0 }\n")
    assert wait_body(server, "/static/shop/new.css", b"body { color: blue; margin: 0 }\n")
    (app_static / "deeper").mkdir()
    (app_static / "deeper" / "x.js").write_bytes(b"1;")
    assert wait_status(server, "/static/shop/deeper/x.js", 200)
    os.unlink(app_static / "new.css")
    assert wait_status(server, "/static/shop/new.css", 404)


def test_static_watch_follows_a_static_mount(start_server, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    server = start_server("probe:app", "--static", "/static/=%s" % root, "--static-watch")
    assert get(server, "/static/later.css")[0] == 404
    (root / "later.css").write_bytes(b"a{}")
    assert wait_status(server, "/static/later.css", 200)
    # Without --static-watch the index is fixed at start (as whitenoise without autorefresh).
    root2 = tmp_path / "root2"
    root2.mkdir()
    fixed = start_server("probe:app", "--static", "/static/=%s" % root2)
    assert get(fixed, "/static/later.css")[0] == 404  # the worker has indexed
    (root2 / "later.css").write_bytes(b"a{}")
    time.sleep(0.5)
    assert get(fixed, "/static/later.css")[0] == 404


def wait_status(server, path, status, timeout=10.0):
    """Until `path` answers `status` (inotify and the re-index take a moment); bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if get(server, path)[0] == status:
            return True
        time.sleep(0.05)
    return False


def wait_body(server, path, body, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if get(server, path)[2] == body:
            return True
        time.sleep(0.05)
    return False


def test_static_answers_are_logged_and_timed(files, start_server):
    server = start_server("probe:app", "--static", "/static/=%s" % files, "--access-logfile", "-",
                          "--server-timing")
    status, h, body = get(server, "/static/big.bin")  # sendfile
    assert status == 200 and len(body) == 1 << 20
    # timing sits above static in the default chain: its Server-Timing names static's own time.
    assert "mw-static" in h["server-timing"] and "mw-timing" in h["server-timing"]
    assert "app;" not in h["server-timing"]  # Python never saw it
    status, _, body = get(server, "/static/css/site.css", {"Accept-Encoding": "gzip"})  # from memory
    assert status == 200
    assert server.wait_for_output(r'"GET /static/big\.bin HTTP/1\.1" 200 1048576 ', stream="stdout")
    assert server.wait_for_output(r'"GET /static/css/site\.css HTTP/1\.1" 200 %d ' % len(body), stream="stdout")
