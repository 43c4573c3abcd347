#!/usr/bin/python3
"""The response cache: gantry's native hits against Django's own page cache and against nginx,
with wrk, same page, same run, servers alternating.

  django   gunicorn -w 2 (sync), the demo with DJANGO_CACHE_MIDDLEWARE=1: Django's
           UpdateCacheMiddleware/FetchFromCacheMiddleware with LocMemCache answer every hit in Python
  gantry   gantry -w 2 --middleware timing,cache, the same settings: hits never reach Python
  nginx    nginx (2 workers, sendfile) serving the same bytes as a static file

The page is the demo's /catalogue/ (~35 KB of prebuilt HTML, Cache-Control: max-age=60, public).
wrk -t2 -c32 over keep-alive connections. Then the Django cache API: GantryCache against
LocMemCache, get and set of 1 KB values, timed inside a gantry worker (bench_cache_api.py).

    /usr/bin/python3 bench/e2e/cache_compare.py               # 3 rounds x 10 s
    /usr/bin/python3 bench/e2e/cache_compare.py --rounds 1 --duration 3
Stdlib only; needs wrk, nginx-light and Debian's gunicorn; run examples/django_demo/setup.sh first.
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEMO = REPO / "examples" / "django_demo"
PYTHON = "/usr/bin/python3"
PAGE = "/catalogue/"

WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d}\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""

NGINX_CONF = """
worker_processes 2;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port} reuseport;
    root {root};
    location = /catalogue/ {{ default_type "text/html; charset=utf-8"; try_files /catalogue.html =404; }}
  }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def wait_ready(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited with %s" % proc.returncode)
        try:
            if get(port, PAGE)[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server on %d did not answer" % port)


def start(name, port, tmp):
    env = dict(os.environ, DJANGO_DEBUG="0", DJANGO_CACHE_MIDDLEWARE="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("VIRTUAL_ENV", None)
    log = open(Path(tmp) / (name + ".log"), "w")
    if name == "django":
        argv = ["/usr/bin/gunicorn", "-w", "2", "-b", "127.0.0.1:%d" % port, "--chdir", str(DEMO), "demo.wsgi:application"]
    elif name == "gantry":
        argv = [str(REPO / "build/release/gantry"), "-w", "2", "-b", "127.0.0.1:%d" % port, "--chdir", str(DEMO),
                "--middleware", "timing,cache", "demo.wsgi:application"]
    else:
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp, port=port, root=tmp))
        argv = ["/usr/sbin/nginx", "-c", str(conf), "-p", tmp]
    proc = subprocess.Popen(argv, cwd=str(DEMO), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_ready(port, proc)
    return proc


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wrk(port, seconds, lua):
    out = subprocess.run(["wrk", "-t2", "-c32", "-d%ds" % seconds, "-s", lua, "http://127.0.0.1:%d%s" % (port, PAGE)],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(re.search(r"WRKJSON (.*)", out).group(1))
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    return data


def api_bench(tmp):
    """GantryCache vs LocMemCache inside a gantry worker, through bench_cache_api.py's app."""
    port = free_port()
    log = open(Path(tmp) / "api.log", "w")
    proc = subprocess.Popen([str(REPO / "build/release/gantry"), "-w", "1", "-b", "127.0.0.1:%d" % port,
                             "--chdir", str(HERE), "bench_cache_api:app"], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        for _ in range(100):
            try:
                status, _, body = get(port, "/", timeout=120)
                break
            except OSError:
                time.sleep(0.1)
        return json.loads(body)
    finally:
        stop(proc)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gantry-cache-bench-") as tmp:
        os.chmod(tmp, 0o755)  # nginx's workers run as www-data
        lua = Path(tmp) / "report.lua"
        lua.write_text(WRK_LUA)
        # nginx serves the bytes Django makes for the page.
        probe = free_port()
        proc = start("django", probe, tmp)
        (Path(tmp) / "catalogue.html").write_bytes(get(probe, PAGE)[2])
        stop(proc)
        results = {n: [] for n in ("django", "gantry", "nginx")}
        print("load average before: %s" % open("/proc/loadavg").read().strip(), flush=True)
        for r in range(opts.rounds):
            for name in results:
                port = free_port()
                proc = start(name, port, tmp)
                try:
                    wrk(port, 2, str(lua))  # warm-up; fills the caches
                    data = wrk(port, opts.duration, str(lua))
                finally:
                    stop(proc)
                if data["status_errors"] or data["socket_errors"]:
                    print("  %s: %d status errors, %d socket errors" % (name, data["status_errors"], data["socket_errors"]))
                results[name].append(data)
                print("round %d %-7s %9.0f req/s  p50 %5d us  p99 %6d us" % (r + 1, name, data["rps"], data["p50_us"], data["p99_us"]), flush=True)
        med = {n: statistics.median(d["rps"] for d in v) for n, v in results.items()}
        print("\nmedian req/s: " + ", ".join("%s %.0f" % kv for kv in med.items()))
        print("gantry / django-cache = %.1fx (target >= 8x)" % (med["gantry"] / med["django"]))
        print("gantry / nginx        = %.0f%% (target >= 70%%)" % (100 * med["gantry"] / med["nginx"]))
        api = api_bench(tmp)
        for op in ("get", "set"):
            print("cache.%s 1 KB: GantryCache %.2f us, LocMemCache %.2f us -> %.1fx (target >= 3x)"
                  % (op, api["gantry"][op], api["locmem"][op], api["locmem"][op] / api["gantry"][op]))
        print("load average after: %s" % open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
