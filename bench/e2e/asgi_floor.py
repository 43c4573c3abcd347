#!/usr/bin/python3
"""The ASGI floor: an app called in-process, with no server and no socket, by 64 concurrent tasks
on one uvloop loop; the CPU per request it takes is what no server can go under (per process).

    /usr/bin/python3 bench/e2e/asgi_floor.py                      # the hello and Django's async view
    /usr/bin/python3 bench/e2e/asgi_floor.py --app djasync.asgi:application --seconds 10

The scope is the one a server would build for `GET /` with curl's headers; receive() gives an empty
body, send() keeps nothing. Compare its CPU/request with asgi_compare.py's for the same app.
"""
import argparse
import asyncio
import importlib
import os
import resource
import sys
import time
from pathlib import Path

APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "asgi_hello"


def scope_for(path):
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"curl/7.88.1"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {}, "extensions": {},
    }


async def run(app, path, seconds, concurrency):
    body = {"type": "http.request", "body": b"", "more_body": False}
    statuses = []

    async def receive():
        return body

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    count = 0
    stop_at = time.monotonic() + seconds

    async def client():
        nonlocal count
        while time.monotonic() < stop_at:
            await app(scope_for(path), receive, send)
            count += 1

    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if set(statuses) != {200}:
        sys.exit("the app answered %s" % sorted(set(statuses)))
    return count / elapsed, cpu / count * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--app", action="append", help="module:attribute (default: app:app and djasync.asgi:application)")
    ap.add_argument("--path", default="/")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--concurrency", type=int, default=64)
    opts = ap.parse_args()
    sys.path.insert(0, str(APP_DIR))
    os.chdir(APP_DIR)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    for spec in opts.app or ["app:app", "djasync.asgi:application"]:
        module, _, attr = spec.partition(":")
        app = getattr(importlib.import_module(module), attr)
        asyncio.run(run(app, opts.path, 1, opts.concurrency))  # warm-up
        rps, cpu_us = asyncio.run(run(app, opts.path, opts.seconds, opts.concurrency))
        print("%-28s in-process: %8.0f req/s on one loop, %7.1f us CPU/request" % (spec, rps, cpu_us))


if __name__ == "__main__":
    main()
