"""Overhead of gantry.django_timing on a tiny view: the demo's /ping/ through
Django's default middleware, called straight through Django's WSGI handler
(no server, no sockets), so the cost is as large a share as it can get.

    /usr/bin/python3 tests/python/djtiming_project/bench_overhead.py [requests_per_burst] [bursts]

Untimed and timed handlers run in alternating bursts in one process; the timed
loop also calls take() after each request, as the server does. Prints the
best and median cost per request of each and the loss in requests/s.
"""
import io
import os
import statistics
import sys
from pathlib import Path
from time import thread_time

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "embed" / "python"))
sys.path.insert(0, str(ROOT / "examples" / "django_demo"))  # read-only: /ping/ writes nothing
os.environ["DJANGO_SETTINGS_MODULE"] = "demo.settings"

import django  # noqa: E402

django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402

from gantry import django_timing  # noqa: E402

BASE_ENVIRON = {
    "REQUEST_METHOD": "GET", "PATH_INFO": "/ping/", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:8000",
    "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
    "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
}


def start_response(status, headers, exc_info=None):
    pass


def run(handler, n, take):
    """Requests per second of this thread's CPU time: on a shared machine the
    time other processes hold the CPU is not counted against either side."""
    t0 = thread_time()
    for _ in range(n):
        environ = dict(BASE_ENVIRON)
        environ["wsgi.input"] = io.BytesIO(b"")
        result = handler(environ, start_response)
        for _chunk in result:
            pass
        result.close()
        if take:
            take()
    return n / (thread_time() - t0)


class _TakeOnClose:
    """The response iterable of make_app('timed'): take() once the server closed it,
    where gantry will call it."""

    def __init__(self, result):
        self.result = result

    def __iter__(self):
        return iter(self.result)

    def close(self):
        try:
            self.result.close()
        finally:
            django_timing.take()


def make_app(mode):
    """A WSGI app for an end-to-end run under a real server, e.g.
    gunicorn --chdir tests/python/djtiming_project "bench_overhead:make_app('timed')"
    ('plain' for the baseline)."""
    if mode == "plain":
        return WSGIHandler()
    django_timing.enable()
    handler = WSGIHandler()

    def app(environ, start_response):
        return _TakeOnClose(handler(environ, start_response))
    return app


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    plain = WSGIHandler()          # built before enable(): untimed
    django_timing.enable()
    timed = WSGIHandler()
    run(plain, 300, None)          # warm caches (URL resolver, templates, imports)
    run(timed, 300, django_timing.take)
    plain_us, timed_us = [], []
    # Short alternating bursts: the machine is shared, and a burst that another
    # process disturbed is slow for both sides alike; the fastest burst of each
    # side is its least disturbed cost.
    for _ in range(rounds):
        plain_us.append(1e6 / run(plain, n, None))
        timed_us.append(1e6 / run(timed, n, django_timing.take))
    for label, fn in (("best", min), ("median", statistics.median)):
        p, t = fn(plain_us), fn(timed_us)
        print(f"{label:6} plain {p:6.1f} us/request ({1e6 / p:5.0f}/s), timed+take {t:6.1f} us "
              f"({1e6 / t:5.0f}/s): +{t - p:.1f} us, requests/s -{100 * (1 - p / t):.1f}%")
    run(timed, 1, None)
    print("sample record:", django_timing.take(), flush=True)


if __name__ == "__main__":
    main()
