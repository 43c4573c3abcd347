"""A WSGI app for the response cache and the Django cache backend tests.

GET /page/...?cc=<Cache-Control>&vary=<Vary>&cookie=<Set-Cookie>&status=<n>&etag=<tag>&ce=<Content-Encoding>
    answers a fresh uuid in its body on every app call, so the same body twice means a cache hit;
    echoes Cookie/Accept-Language/X-Forwarded-Host so a poisoned entry would show.
GET /fail-after-first/...?cc=...  answers 200 once per process, then 500 (for stale-if-error).
GET /swr/...?dir=<dir>&pad=<n>   for background refreshes: appends a line to <dir>/calls on every
    app call (across workers) and answers {"id", "call": the line count}; while <dir>/hold exists
    it waits for the file to go; while <dir>/raise exists it raises. The first answer lives 1 s
    (max-age=1, stale-while-revalidate=30), later ones 60 s: a refreshed copy stays fresh while
    a test looks at it.
GET /purge?url=...&prefix=1        gantry.cache.purge / purge_prefix
GET /stats                         gantry.cache.stats()
GET /dj/set?k=..&v=..[&int=1] , /dj/get?k=..   GantryCache across workers (with the worker's pid)
GET /dj/incr?k=.. , /dj/add?k=..&v=.. , /dj/delete?k=..   (incr of a missing key: 404)
GET /dj/selftest?redis=1           tests/python/test_gantry_cache.py run inside this worker
                                   (redis=1: it must find the Redis tier behind the store)
"""
import contextlib
import io
import json
import os
import sys
import uuid
from urllib.parse import parse_qs

HERE = os.path.dirname(os.path.abspath(__file__))

_failed_once = set()


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _django_cache():
    from gantry.django.cache import GantryCache
    return GantryCache("e2e", {"TIMEOUT": 300})


def _swr(q, start_response):
    import time
    d = q["dir"]
    with open(os.path.join(d, "calls"), "a+") as f:  # one write per call: whole lines across workers
        f.write("call\n")
        f.flush()
        f.seek(0)
        call = len(f.read().splitlines())
    deadline = time.monotonic() + 60
    while os.path.exists(os.path.join(d, "hold")) and time.monotonic() < deadline:
        time.sleep(0.01)
    if os.path.exists(os.path.join(d, "raise")):
        raise RuntimeError("refresh failed on purpose")
    body = json.dumps({"id": uuid.uuid4().hex, "call": call, "pad": "x" * int(q.get("pad", "0"))}).encode()
    max_age = 1 if call == 1 else 60
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Cache-Control", "max-age=%d, stale-while-revalidate=30" % max_age),
                              ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    q = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}

    if path.startswith("/page/") or path.startswith("/fail-after-first/"):
        status = int(q.get("status", "200"))
        if "sleep" in q:
            import time
            time.sleep(float(q["sleep"]))
        if path.startswith("/fail-after-first/"):
            if path in _failed_once:
                status = 500
            _failed_once.add(path)
        body = json.dumps({
            "id": uuid.uuid4().hex,
            "pid": os.getpid(),
            "cookie": environ.get("HTTP_COOKIE"),
            "lang": environ.get("HTTP_ACCEPT_LANGUAGE"),
            "xfh": environ.get("HTTP_X_FORWARDED_HOST"),
            "method": environ["REQUEST_METHOD"],
            "pad": "x" * int(q.get("pad", "0")),
        }).encode()
        headers = [("Content-Type", "application/json")]
        for key, name in (("cc", "Cache-Control"), ("vary", "Vary"), ("cookie", "Set-Cookie"),
                          ("etag", "ETag"), ("ce", "Content-Encoding"), ("expires", "Expires")):
            if key in q:
                headers.append((name, q[key]))
        headers.append(("Content-Length", str(len(body))))
        start_response("%d X" % status, headers)
        return [body]

    if path.startswith("/swr/"):
        return _swr(q, start_response)

    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Cache-Control", "max-age=60")])
        return iter([uuid.uuid4().hex.encode(), b"-streamed"])

    if path == "/purge":
        from gantry import cache
        n = cache.purge_prefix(q["url"]) if q.get("prefix") else cache.purge(q["url"])
        return _json(start_response, {"purged": n})

    if path == "/stats":
        from gantry import cache
        return _json(start_response, dict(cache.stats(), shared=cache.is_shared()))

    if path == "/dj/set":
        _django_cache().set(q["k"], int(q["v"]) if q.get("int") else q["v"])
        return _json(start_response, {"pid": os.getpid()})

    if path == "/dj/get":
        return _json(start_response, {"pid": os.getpid(), "value": _django_cache().get(q["k"])})

    if path == "/dj/incr":
        try:
            return _json(start_response, {"pid": os.getpid(), "value": _django_cache().incr(q["k"])})
        except ValueError as e:  # Django's answer for a missing key
            return _json(start_response, {"pid": os.getpid(), "error": str(e)}, "404 Not Found")

    if path == "/dj/add":
        return _json(start_response, {"pid": os.getpid(), "added": _django_cache().add(q["k"], q["v"])})

    if path == "/dj/delete":
        return _json(start_response, {"pid": os.getpid(), "deleted": _django_cache().delete(q["k"])})

    if path == "/dj/selftest":
        import pytest
        os.environ["GANTRY_EXPECT_SHARED_STORE"] = "1"
        os.environ["GANTRY_EXPECT_REDIS_TIER"] = q.get("redis", "0")
        out = io.StringIO()
        test_file = os.path.join(HERE, "..", "python", "test_gantry_cache.py")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:faulthandler", test_file])
        return _json(start_response, {"exit": int(code), "output": out.getvalue()[-5000:]})

    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]
