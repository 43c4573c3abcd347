"""The response cache and the Django cache backend against the real binary, two workers sharing
one store: what is stored and what is not (Django's rules), keys (Vary, hosts, Accept-Encoding),
HEAD from GET, 304, Age, Server-Timing, stale-if-error, purges from the app, and GantryCache."""
import gzip
import json
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import brotli
import pytest

from conftest import SANITIZE, ServerFactory, until

CHAIN = ("--middleware", "timing,cache", "--server-timing")
# The access log says which worker answered each request (gunicorn's %(p)s atom).
ACCESS = ("--access-logfile", "-", "--access-logformat", "%(p)s %(s)s %(U)s?%(q)s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    factory = ServerFactory(tmp_path_factory)
    yield factory("cache_app:app", *CHAIN, *ACCESS, workers=2)
    factory.teardown()


def fetch(server, path, headers=None, method="GET", timeout=None):
    conn = server.http(timeout) if timeout else server.http()
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def ident(body):
    return json.loads(body)["id"]


def served_twice(server, path, headers=None):
    """(first, second) responses for the same request on two new connections."""
    return fetch(server, path, headers), fetch(server, path, headers)


def test_only_responses_that_declare_a_lifetime_are_stored(server):
    (_, _, a), (_, _, b) = served_twice(server, "/page/none")
    assert ident(a) != ident(b)
    (s1, h1, a), (s2, h2, b) = served_twice(server, "/page/declared?cc=max-age=60")
    assert s1 == s2 == 200
    assert ident(a) == ident(b)
    assert 'cache;desc="miss"' in h1["server-timing"]
    assert 'cache;desc="hit"' in h2["server-timing"]
    assert "age" not in h1 and int(h2["age"]) >= 0
    assert h2["content-type"] == "application/json"
    assert h2["cache-control"] == "max-age=60"


def test_a_hit_stored_by_one_worker_is_served_by_all(server):
    path = "/page/shared?cc=max-age=60"
    _, _, first = fetch(server, path)
    stored_by = json.loads(first)["pid"]
    answered_by = set()
    # Which worker accepts is the kernel's choice: concurrent rounds until both have answered.
    for _ in range(20):
        with ThreadPoolExecutor(max_workers=8) as pool:
            bodies = list(pool.map(lambda _: fetch(server, path)[2], range(8)))
        assert {ident(b) for b in bodies} == {ident(first)}
        time.sleep(0.1)  # the access log is written off the request path
        for line in server.stdout().splitlines():
            pid, status, target = line.split(" ", 2)
            if target == path and status == "200":
                answered_by.add(int(pid.strip("<>")))  # gunicorn writes %(p)s as <pid>
        if len(answered_by) == 2:
            break
    assert len(answered_by) == 2 and stored_by in answered_by, answered_by


@pytest.mark.parametrize("query", [
    "cc=private,max-age=60", "cc=no-store,max-age=60", "cc=no-cache,max-age=60", "cc=max-age=0",
    "cc=max-age=60&cookie=sid%3D1", "cc=max-age=60&vary=*", "cc=max-age=60&status=404",
    "cc=max-age=60&status=302", "expires=Thu,%2001%20Jan%201970%2000:00:00%20GMT",
])
def test_what_django_would_not_cache_is_not_stored(server, query):
    path = "/page/refused-%d?%s" % (abs(hash(query)), query)
    (_, _, a), (_, _, b) = served_twice(server, path)
    assert ident(a) != ident(b)


def test_streamed_and_post_responses_are_not_stored(server):
    (_, _, a), (_, _, b) = served_twice(server, "/stream")
    assert a != b
    _, _, a = fetch(server, "/page/post?cc=max-age=60", method="POST")
    _, _, b = fetch(server, "/page/post?cc=max-age=60", method="POST")
    assert ident(a) != ident(b)
    _, _, g = fetch(server, "/page/post?cc=max-age=60")
    assert ident(g) not in (ident(a), ident(b))  # a POST never fills the GET entry


def test_query_strings_and_paths_are_distinct_keys(server):
    _, _, a = fetch(server, "/page/q?cc=max-age=60&x=1")
    _, _, b = fetch(server, "/page/q?cc=max-age=60&x=2")
    assert ident(a) != ident(b)
    assert ident(fetch(server, "/page/q?cc=max-age=60&x=1")[2]) == ident(a)


def test_vary_cookie_keeps_sessions_apart(server):
    path = "/page/session?cc=max-age=60&vary=Cookie"
    _, _, alice = fetch(server, path, {"Cookie": "sid=alice"})
    _, _, bob = fetch(server, path, {"Cookie": "sid=bob"})
    _, _, anon = fetch(server, path)
    assert json.loads(alice)["cookie"] == "sid=alice"
    assert json.loads(bob)["cookie"] == "sid=bob"
    assert json.loads(anon)["cookie"] is None
    for _ in range(3):
        assert ident(fetch(server, path, {"Cookie": "sid=alice"})[2]) == ident(alice)
        assert ident(fetch(server, path, {"Cookie": "sid=bob"})[2]) == ident(bob)
        assert ident(fetch(server, path)[2]) == ident(anon)


def test_an_unkeyed_forwarded_host_cannot_poison_the_entry(server):
    path = "/page/poison?cc=max-age=60"
    _, _, evil = fetch(server, path, {"X-Forwarded-Host": "evil.example"})
    _, _, clean = fetch(server, path)
    assert json.loads(clean)["xfh"] is None
    assert ident(clean) != ident(evil)
    assert ident(fetch(server, path)[2]) == ident(clean)


def test_hosts_are_distinct_keys(server):
    path = "/page/hosts?cc=max-age=60"
    _, _, a = fetch(server, path, {"Host": "a.example"})
    _, _, b = fetch(server, path, {"Host": "b.example"})
    assert ident(a) != ident(b)
    assert ident(fetch(server, path, {"Host": "A.EXAMPLE"})[2]) == ident(a)


def test_authorization_needs_a_public_response(server):
    auth = {"Authorization": "Basic dXNlcjpwYXNz"}
    private = "/page/auth?cc=max-age=60"
    _, _, plain = fetch(server, private)
    _, _, with_auth = fetch(server, private, auth)
    assert ident(with_auth) != ident(plain)          # not served from the cache
    assert ident(fetch(server, private)[2]) == ident(plain)
    public = "/page/auth-public?cc=public,max-age=60"
    _, _, a = fetch(server, public, auth)
    assert ident(fetch(server, public, auth)[2]) == ident(a)


def test_head_is_answered_from_the_get_entry_and_never_stores(server):
    path = "/page/head?cc=max-age=60"
    _, _, first = fetch(server, "/page/head-first?cc=max-age=60", method="HEAD")
    assert first == b""
    _, _, g = fetch(server, "/page/head-first?cc=max-age=60")
    assert json.loads(g)["method"] == "GET"           # the HEAD stored nothing
    s, h, body = fetch(server, path)
    s2, h2, body2 = fetch(server, path, method="HEAD")
    assert s2 == 200 and body2 == b""
    assert h2["content-length"] == h["content-length"] == str(len(body))
    assert 'cache;desc="hit"' in h2["server-timing"]


def test_if_none_match_on_a_hit_is_a_304(server):
    path = '/page/etag?cc=max-age=60&etag="v1"'
    fetch(server, path)
    s, h, body = fetch(server, path, {"If-None-Match": 'W/"v0", "v1"'})
    assert s == 304 and body == b""
    assert h["etag"] == '"v1"'
    s, _, body = fetch(server, path, {"If-None-Match": '"other"'})
    assert s == 200 and body


def test_compressed_variants_are_stored_once_each(start_server):
    s = start_server("cache_app:app", "--middleware", "timing,cache,compress", "--server-timing", workers=2)
    path = "/page/enc?cc=max-age=60&pad=2000"
    _, hg, gz = fetch(s, path, {"Accept-Encoding": "gzip"})
    _, hb, br = fetch(s, path, {"Accept-Encoding": "br"})
    _, hi, plain = fetch(s, path)
    assert hg["content-encoding"] == "gzip" and hb["content-encoding"] == "br" and "content-encoding" not in hi
    g_id = ident(gzip.decompress(gz))
    assert ident(brotli.decompress(br)) != g_id and ident(plain) != g_id
    # Different Accept-Encoding texts that choose the same coding share the entry.
    for ae in ("gzip", "gzip, deflate", "deflate, gzip;q=0.9", "x-gzip"):
        _, h, body = fetch(s, path, {"Accept-Encoding": ae})
        assert h["content-encoding"] == "gzip" and 'cache;desc="hit"' in h["server-timing"]
        assert ident(gzip.decompress(body)) == g_id
    _, h, body = fetch(s, path, {"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in h and ident(body) == ident(plain)


def test_app_compressed_responses_are_keyed_by_the_raw_header(start_server):
    # The app encodes itself (a Content-Encoding gantry did not make): its choice is its own.
    s = start_server("cache_app:app", *CHAIN, workers=1)
    path = "/page/appenc?cc=max-age=60&vary=Accept-Encoding&ce=identity"
    _, _, a = fetch(s, path, {"Accept-Encoding": "gzip"})
    _, _, b = fetch(s, path, {"Accept-Encoding": "gzip, br"})
    assert ident(a) != ident(b)
    assert ident(fetch(s, path, {"Accept-Encoding": "gzip"})[2]) == ident(a)


def test_stale_if_error_serves_the_stored_copy_in_place_of_a_500(start_server):
    s = start_server("cache_app:app", *CHAIN, workers=1)
    path = "/fail-after-first/x?cc=max-age=1,stale-if-error=60"
    s1, _, first = fetch(s, path)
    assert s1 == 200
    time.sleep(2.2)
    s2, h2, second = fetch(s, path)
    assert s2 == 200 and ident(second) == ident(first)
    assert 'cache;desc="stale"' in h2["server-timing"]
    assert int(h2["age"]) >= 2
    s3, _, _ = fetch(s, "/fail-after-first/y?cc=max-age=1")
    time.sleep(2.2)
    assert fetch(s, "/fail-after-first/y?cc=max-age=1")[0] == 500  # no stale-if-error: the error


def test_a_purge_from_the_app_is_seen_by_every_worker(server):
    path = "/page/purged?cc=max-age=600"
    _, _, a = fetch(server, path)
    assert ident(fetch(server, path)[2]) == ident(a)
    url = "http://127.0.0.1:%d/page/purged?cc=max-age=600" % server.port
    purged = json.loads(fetch(server, "/purge?url=" + url.replace("&", "%26").replace("?", "%3F"))[2])
    assert purged["purged"] >= 1
    fresh = {ident(fetch(server, path)[2]) for _ in range(6)}
    assert ident(a) not in fresh and len(fresh) == 1


def test_purge_by_prefix(server):
    for i in range(3):
        fetch(server, "/page/tree/%d?cc=max-age=600" % i)
    url = "http://127.0.0.1:%d/page/tree/" % server.port
    assert json.loads(fetch(server, "/purge?prefix=1&url=" + url)[2])["purged"] >= 3


def test_django_cache_backend_is_shared_by_the_workers(server):
    _, _, setter = fetch(server, "/dj/set?k=greeting&v=hello")
    setter_pid = json.loads(setter)["pid"]
    other = None
    for _ in range(50):
        got = json.loads(fetch(server, "/dj/get?k=greeting")[2])
        assert got["value"] == "hello"
        if got["pid"] != setter_pid:
            other = got
            break
    assert other is not None, "no request reached the other worker"
    fetch(server, "/dj/set?k=n&v=0")
    # incr is atomic in the store: 20 increments from both workers count to 20.
    values = [json.loads(fetch(server, "/dj/incr?k=n")[2])["value"] for _ in range(20)]
    assert sorted(values) == list(range(1, 21))
    stats = json.loads(fetch(server, "/stats")[2])
    assert stats["shared"] is True and stats["entries"] > 0


def test_django_cache_backend_passes_its_suite_inside_the_server(server):
    # The suite sleeps through its expiry checks: some seconds (more under ASan).
    result = json.loads(fetch(server, "/dj/selftest", timeout=300 if SANITIZE else 90)[2])
    assert result["exit"] == 0, result["output"]


def test_concurrent_misses_of_an_expired_page_make_one_app_call(start_server):
    s = start_server("cache_app:app", *CHAIN, workers=2)
    # max-age=2, not 1: lifetimes count whole seconds, so a 1 s entry may be stale at once.
    path = "/page/herd?cc=max-age=2&sleep=0.4"
    _, _, first = fetch(s, path)
    time.sleep(3.1)  # expired: the next requests all miss at once
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: fetch(s, path, timeout=20), range(6)))
    ids = {ident(body) for _, _, body in results}
    assert ident(first) not in ids and len(ids) == 1, ids  # one fetch, shared by all six
    timings = [h["server-timing"] for _, h, _ in results]
    assert sum('cache;desc="miss"' in t for t in timings) == 1, timings
    assert sum('desc="hit-after-wait"' in t for t in timings) == 5, timings


def test_a_page_never_cached_is_not_serialised(start_server):
    s = start_server("cache_app:app", *CHAIN, workers=1, *("--threads", "4"))
    path = "/page/uncached?sleep=0.5"
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: fetch(s, path, timeout=20), range(4)))
    assert time.monotonic() - start < 1.5  # in parallel, not one after another (4 x 0.5 s)


def test_stale_while_revalidate_serves_stale_to_all_while_the_page_refreshes(start_server):
    # The refresh runs in the background (tests/e2e/test_cache_refresh.py shows no client waits on it).
    s = start_server("cache_app:app", *CHAIN, workers=2)
    path = "/page/swr?cc=max-age=2,stale-while-revalidate=30&sleep=0.5"
    _, _, first = fetch(s, path)
    time.sleep(3.1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: fetch(s, path, timeout=20), range(4)))
    timings = [h["server-timing"] for _, h, _ in results]
    assert sum('desc="stale"' in t for t in timings) == 4, timings
    assert {ident(b) for (_, _, b) in results} == {ident(first)}
    after = until(lambda: (lambda r: r if ident(r[2]) != ident(first) else None)(fetch(s, path)), timeout=10)
    assert after and 'desc="hit"' in after[1]["server-timing"]  # the refreshed copy


# ---- the Redis tier: two servers sharing one real redis-server ---------------------------------

class RedisServer:
    def __init__(self, tmp):
        from conftest import free_port
        self.port = free_port()
        self.tmp = tmp
        self.proc = None
        self.start()

    def start(self):
        import subprocess
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import socket
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def redis_server(tmp_path):
    r = RedisServer(tmp_path)
    yield r
    r.stop()


HOST = {"Host": "shop.example"}


def test_redis_tier_shares_hits_and_purges_between_servers(start_server, redis_server):
    url = "redis://127.0.0.1:%d/0" % redis_server.port
    a = start_server("cache_app:app", *CHAIN, "--cache", url, workers=2)
    b = start_server("cache_app:app", *CHAIN, "--cache", url, workers=2)
    # Stored in Redis off the request path: B finds it there, without calling its app. A fresh
    # page each try: a lookup that missed its deadline on a starved machine leaves B its own copy.
    shared = {}
    def from_b():
        path = "/page/across-%d?cc=max-age=600" % time.monotonic_ns()
        _, h, first = fetch(a, path, HOST)
        assert 'desc="miss"' in h["server-timing"]
        time.sleep(0.1)
        _, h, body = fetch(b, path, HOST)
        shared.update(path=path, first=first)
        return 'desc="hit"' in h["server-timing"] and ident(body) == ident(first)
    assert until(from_b)
    path, first = shared["path"], shared["first"]
    # A purge in B's app reaches A's own store through Redis's channel.
    purged = json.loads(fetch(b, "/purge?url=http://shop.example" + urllib.parse.quote(path, safe="/"), HOST)[2])
    assert purged["purged"] >= 1
    def a_refetched():
        _, h, body = fetch(a, path, HOST)
        return ident(body) != ident(first)
    assert until(a_refetched)


def test_redis_down_means_misses_not_errors_and_it_comes_back(start_server, redis_server):
    url = "redis://127.0.0.1:%d/0" % redis_server.port
    a = start_server("cache_app:app", *CHAIN, "--cache", url, workers=1)
    b = start_server("cache_app:app", *CHAIN, "--cache", url, workers=1)
    redis_server.stop()
    start = time.monotonic()
    for i in range(30):
        status, _, _ = fetch(a, "/page/down-%d?cc=max-age=600" % i, HOST)
        assert status == 200
    assert time.monotonic() - start < 10  # each one quick: deadlines and the breaker, not hangs
    # Still cached in the server's own store meanwhile.
    _, _, x = fetch(a, "/page/down-0?cc=max-age=600", HOST)
    assert ident(fetch(a, "/page/down-0?cc=max-age=600", HOST)[2]) == ident(x)
    redis_server.start()
    path = "/page/after?cc=max-age=600"
    # Once the breaker lets a call through, A stores into Redis again and B hits it.
    def b_hits_a_page():
        p = path + "&n=%d" % time.monotonic_ns()
        _, _, first = fetch(a, p, HOST)
        time.sleep(0.2)
        _, h, body = fetch(b, p, HOST)
        return 'desc="hit"' in h["server-timing"] and ident(body) == ident(first)
    assert until(b_hits_a_page, timeout=15)
