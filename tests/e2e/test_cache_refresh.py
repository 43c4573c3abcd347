"""stale-while-revalidate in the background, against the real binary: within the window every
request gets the stale copy at once, the lock's winner too, while one app call refreshes the page
with no client waiting on it; the next requests get the refreshed copy. A refresh that fails
keeps the stale copy, and a later one works; one in flight as the server stops ends cleanly.
The app (tests/apps/cache_app.py, /swr/) counts its calls in a file and blocks on a file the
test removes, so "no client waited" is shown by the answers arriving while the refresh is still
held in the app, never by timing."""
import gzip
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import IO_TIMEOUT, until

# compress below the cache: the refresh's answer is compressed and stored per coding, as a miss's.
CHAIN = ("--middleware", "timing,cache,compress", "--server-timing", "--threads", "4")
GZIP = {"Accept-Encoding": "gzip"}


def fetch(server, path, headers=None):
    conn = server.http(IO_TIMEOUT)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        headers = {k.lower(): v for k, v in r.getheaders()}
        body = r.read()
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        return r.status, headers, json.loads(body) if r.status == 200 else body
    finally:
        conn.close()


def calls(d):
    try:
        with open(os.path.join(d, "calls")) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


def cache_desc(headers):
    timing = headers.get("server-timing", "")
    for desc in ("hit-after-wait", "hit", "stale", "miss"):
        if 'cache;desc="%s"' % desc in timing:
            return desc
    return None


def test_every_request_gets_the_stale_copy_while_one_background_refresh_runs(start_server, tmp_path):
    s = start_server("cache_app:app", *CHAIN, workers=2)
    d = str(tmp_path)
    path = "/swr/page?pad=400&dir=" + d
    status, h, first = fetch(s, path, GZIP)
    assert status == 200 and first["call"] == 1 and cache_desc(h) == "miss"
    assert h.get("content-encoding") == "gzip"
    (tmp_path / "hold").touch()  # the refresh, when it comes, waits in the app for the test
    time.sleep(2.1)  # past max-age=1 (whole seconds), well inside stale-while-revalidate=30

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: fetch(s, path, GZIP), range(8)))
    # All answered, and the refresh's app call is still held: no client waited for it.
    assert (tmp_path / "hold").exists()
    assert [r[0] for r in results] == [200] * 8
    assert {r[2]["id"] for r in results} == {first["id"]}, results
    assert [cache_desc(r[1]) for r in results] == ["stale"] * 8, [r[1].get("server-timing") for r in results]
    assert all(int(r[1]["age"]) >= 2 for r in results)
    assert until(lambda: calls(d) == 2, timeout=IO_TIMEOUT)  # the refresh reached the app: one call

    status, h, during = fetch(s, path, GZIP)  # still held: still the stale copy, no second refresh
    assert during["id"] == first["id"] and cache_desc(h) == "stale"

    (tmp_path / "hold").unlink()
    fresh = until(lambda: (lambda r: r if r[2]["id"] != first["id"] else None)(fetch(s, path, GZIP)),
                  timeout=IO_TIMEOUT)
    assert fresh, "the refreshed copy never came"
    status, h, body = fresh
    assert body["call"] == 2 and cache_desc(h) == "hit"  # the refresh's answer, stored, from the cache
    assert h.get("content-encoding") == "gzip"            # compressed below the cache, as for a miss
    assert calls(d) == 2                                  # exactly one refresh for all those requests
    # The identity variant was never refreshed: it is fetched (and stored) on its own.
    assert fetch(s, path)[2]["call"] == 3
    assert fetch(s, path, GZIP)[2]["id"] == body["id"]


def test_a_refresh_that_raises_keeps_the_stale_copy_and_a_later_one_works(start_server, tmp_path):
    s = start_server("cache_app:app", *CHAIN, workers=1)
    d = str(tmp_path)
    path = "/swr/failing?dir=" + d
    _, _, first = fetch(s, path)
    (tmp_path / "raise").touch()
    time.sleep(2.1)
    status, h, stale = fetch(s, path)
    assert status == 200 and stale["id"] == first["id"] and cache_desc(h) == "stale"
    assert until(lambda: calls(d) >= 2, timeout=IO_TIMEOUT)
    assert s.wait_for_output(r"refresh failed on purpose"), s.log()  # the app's error, logged
    # The failed refresh stored nothing: the stale copy is still what every client gets.
    for _ in range(3):
        status, h, again = fetch(s, path)
        assert status == 200 and again["id"] == first["id"] and cache_desc(h) == "stale"

    (tmp_path / "raise").unlink()
    seen = []

    def refreshed():
        status, h, body = fetch(s, path)
        seen.append((status, body["id"]))
        return body if body["id"] != first["id"] else None

    body = until(refreshed, timeout=IO_TIMEOUT)
    assert body, "no refresh worked after the failure"
    assert body["call"] > 2
    assert all(st == 200 and i == first["id"] for st, i in seen[:-1]), seen  # stale until then, never an error
    assert s.proc.poll() is None


def test_a_refresh_in_flight_when_the_server_stops_ends_cleanly(start_server, tmp_path):
    s = start_server("cache_app:app", *CHAIN, workers=1)
    d = str(tmp_path)
    path = "/swr/stopping?dir=" + d
    _, _, first = fetch(s, path)
    (tmp_path / "hold").touch()
    time.sleep(2.1)
    assert fetch(s, path)[2]["id"] == first["id"]  # stale; the refresh is held in the app
    assert until(lambda: calls(d) == 2, timeout=IO_TIMEOUT)
    s.send(signal.SIGTERM)  # the worker drains with the refresh still running...
    assert s.wait_for_output(r"Worker exiting"), s.log()
    (tmp_path / "hold").unlink()  # ...and ends as the worker stops (its answer stored or dropped)
    assert s.wait() == 0, s.log()
    err = s.stderr()
    assert "exited with code" not in err and "was sent" not in err and "terminate called" not in err, s.log()
