#!/usr/bin/python3
"""The "Python floor": the cost of a WSGI app with no server around it.

Loads the app in-process the way a server does (chdir, the app's folder on sys.path,
import module:callable) and calls it in a tight loop with a realistic environ: a new
dict per call holding the keys gunicorn passes for wrk's request, a fresh wsgi.input,
start_response collecting the status, the iterable consumed and closed. No sockets, no
HTTP parsing: whatever a server adds on top of this is the server's own cost.

    /usr/bin/python3 bench/e2e/python_floor.py --chdir examples/django_demo \
        demo.wsgi:application --path /ping/

Run it pinned (taskset -c 0 ...) when comparing with a server pinned to one CPU.
Stdlib only.
"""

import argparse
import importlib
import io
import json
import os
import statistics
import sys
import time
from wsgiref.util import FileWrapper


def load_app(spec, chdir, pythonpath):
    """Import module:callable like gunicorn does (cwd first on sys.path)."""
    if chdir:
        os.chdir(chdir)
    for p in reversed(pythonpath):
        sys.path.insert(0, os.path.abspath(p))
    sys.path.insert(0, os.getcwd())
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    app = module
    for part in (attr or "application").split("."):
        app = getattr(app, part)
    return app


def environ_template(path, host, port):
    """The environ gunicorn builds for wrk's default request (GET, only a Host header)."""
    path_info, _, query = path.partition("?")
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "RAW_URI": path,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": host,
        "SERVER_PORT": str(port),
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "%s:%d" % (host, port),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }


class Caller:
    """One WSGI request per call(), done the way a server does it."""

    def __init__(self, app, template):
        self.app = app
        self.template = template
        self.status = None
        self.headers = None

    def start_response(self, status, headers, exc_info=None):
        self.status = status
        self.headers = headers
        return self._write

    def _write(self, data):
        pass

    def call(self):
        environ = self.template.copy()
        environ["wsgi.input"] = io.BytesIO(b"")
        result = self.app(environ, self.start_response)
        try:
            size = 0
            for chunk in result:
                size += len(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return size


def timed_run(caller, seconds):
    """Call repeatedly for about `seconds`; returns (calls, elapsed s, CPU s)."""
    call = caller.call
    calls = 0
    clock = time.perf_counter
    cpu_start = time.process_time()
    start = clock()
    deadline = start + seconds
    while True:
        # Check the clock every 32 calls so reading it is not part of the measurement.
        for _ in range(32):
            call()
        calls += 32
        now = clock()
        if now >= deadline:
            return calls, now - start, time.process_time() - cpu_start


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("app", help="module:callable, e.g. demo.wsgi:application")
    ap.add_argument("--chdir", help="change to this folder before loading (like gunicorn --chdir)")
    ap.add_argument("--pythonpath", action="append", default=[], help="extra sys.path entry")
    ap.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--path", default="/", help="request target (default /)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--seconds", type=float, default=2.0, help="length of one run")
    ap.add_argument("--runs", type=int, default=5, help="runs; the median is reported")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of untimed calls first")
    ap.add_argument("--expect-status", default="200", help="fail unless the app answers this")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    for kv in args.env:
        key, sep, value = kv.partition("=")
        if not sep:
            ap.error("--env wants KEY=VALUE, got %r" % kv)
        os.environ[key] = value

    app = load_app(args.app, args.chdir, args.pythonpath)
    caller = Caller(app, environ_template(args.path, args.host, args.port))
    size = caller.call()
    if not caller.status or caller.status.split()[0] != args.expect_status:
        sys.exit("python_floor: %s %s answered %r, expected %s"
                 % (args.app, args.path, caller.status, args.expect_status))

    if args.warmup > 0:
        timed_run(caller, args.warmup)
    rates, cpu_us = [], []
    for _ in range(args.runs):
        calls, elapsed, cpu = timed_run(caller, args.seconds)
        rates.append(calls / elapsed)
        cpu_us.append(cpu * 1e6 / calls)
    rate = statistics.median(rates)
    result = {
        "app": args.app,
        "path": args.path,
        "status": caller.status,
        "body_bytes": size,
        "runs": [round(r, 1) for r in rates],
        "calls_per_s": round(rate, 1),
        "us_per_call": round(1e6 / rate, 3),
        # CPU time per call: what the app costs even when other processes share the CPU.
        "cpu_us_per_call": round(statistics.median(cpu_us), 3),
        "cpus": sorted(os.sched_getaffinity(0)),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print("%s %s -> %s, %d body bytes" % (args.app, args.path, caller.status, size))
        print("runs (calls/s): %s" % ", ".join("%.0f" % r for r in rates))
        print("median: %.0f calls/s, %.2f us per call, %.2f us CPU per call (CPUs %s)"
              % (rate, 1e6 / rate, result["cpu_us_per_call"], result["cpus"]))


if __name__ == "__main__":
    main()
