#!/usr/bin/python3
"""ASGI end to end: gantry against uvicorn (Debian's, with uvloop and httptools), and daphne,
hypercorn and nginx for reference, on the apps in examples/asgi_hello. Servers alternate in every
round; gantry's figures are reported as ratios to uvicorn's (and to nginx's for the hello).

    /usr/bin/python3 bench/e2e/asgi_compare.py                     # every scenario, 3 rounds x 10 s, 2 workers
    /usr/bin/python3 bench/e2e/asgi_compare.py --scenarios hello --rounds 5 --servers gantry,uvicorn
    /usr/bin/python3 bench/e2e/asgi_compare.py --quick             # 1 round x 3 s: a smoke check

Scenarios (issue 13's targets in brackets):
  hello    /        bare ASGI hello, wrk -c64      [>= 1.5x uvicorn, >= 0.7x nginx's return 200]
  json     /json    the hello with a JSON body     (for reference)
  django   /        Django's async view behind startproject's middleware (djasync)  [>= 1.3x uvicorn]
  file     /file    1 MiB: gantry with pathsend, the others with 64 KiB body chunks  [>= 3x uvicorn]
                    (nginx sends the file itself with sendfile: the machine's ceiling)
  sleep    /sleep   awaits 10 ms, wrk -c512        [>= 1.0x uvicorn]
p99 should be no worse than uvicorn's in each.

Each server's answer is checked first. "CPU/request" is the server's own CPU time (every process
and thread, from /proc) over the measured requests. daphne has no worker count: it runs one
process. Stdlib only; needs wrk, and Debian's uvicorn, daphne, python3-hypercorn, nginx.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
APP_DIR = REPO / "examples" / "asgi_hello"
sys.path.insert(0, str(HERE))
from compare import WRK_LUA, cpu_seconds, worker_pids  # noqa: E402
from compress_compare import free_port, stop  # noqa: E402

HELLO = b"Hello, world!\n"

# name: (path, app, wrk connections, what a right answer looks like)
SCENARIOS = {
    "hello": ("/", "app:app", 64, lambda b: b == HELLO),
    "json": ("/json", "app:app", 64, lambda b: b.startswith(b'{"path"')),
    "django": ("/", "djasync.asgi:application", 64, lambda b: b.startswith(b'{"hello"')),
    "file": ("/file", "app:app", 64, lambda b: len(b) == 1 << 20),
    "sleep": ("/sleep", "app:app", 512, lambda b: b == HELLO),
}
PEERS = ("uvicorn", "daphne", "hypercorn", "nginx")

NGINX_CONF = """
worker_processes %(workers)d;
daemon off;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %(tmp)s; proxy_temp_path %(tmp)s; fastcgi_temp_path %(tmp)s;
  uwsgi_temp_path %(tmp)s; scgi_temp_path %(tmp)s;
  server {
    listen 127.0.0.1:%(port)d;
    sendfile on;
    location / { default_type text/plain; return 200 "Hello, world!\\n"; }
    location = /file { default_type application/octet-stream; alias %(app_dir)s/one-mib.bin; }
  }
}
"""


def argv_for(name, opts, app, port, tmp):
    w = str(opts.workers)
    bind = ["--host", "127.0.0.1", "--port", str(port)]
    if name == "gantry":
        return [os.path.abspath(opts.gantry), "-w", w, "--log-level", "warning"] + bind + [app]
    if name == "uvicorn":
        return ["/usr/bin/python3", "-m", "uvicorn", "--workers", w, "--log-level", "warning", "--no-access-log",
                "--loop", "uvloop", "--http", "httptools"] + bind + [app]
    if name == "daphne":
        return ["/usr/bin/daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", app]
    if name == "hypercorn":
        return ["/usr/bin/hypercorn", "-w", w, "-k", "uvloop", "-b", "127.0.0.1:%d" % port, app]
    if name == "nginx":
        conf = os.path.join(tmp, "nginx.conf")
        Path(conf).write_text(NGINX_CONF % {"workers": opts.workers, "tmp": tmp, "port": port, "app_dir": APP_DIR})
        return ["/usr/sbin/nginx", "-c", conf, "-p", tmp]
    raise ValueError(name)


def start(argv, log_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV")}
    with open(log_path, "wb") as log:
        return subprocess.Popen(argv, cwd=APP_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(proc, port, name, log_path, path, good):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("%s exited early:\n%s" % (name, Path(log_path).read_text()[-2000:]))
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
                body = r.read()
                if r.status == 200 and good(body):
                    return
                sys.exit("%s answered %d %r" % (name, r.status, body[:100]))
        except OSError:
            time.sleep(0.1)
    sys.exit("%s did not answer:\n%s" % (name, Path(log_path).read_text()[-2000:]))


def wrk(port, path, seconds, connections, lua):
    argv = ["wrk", "-t2", "-c%d" % connections, "-d%ds" % seconds, "--latency", "-s", lua,
            "http://127.0.0.1:%d%s" % (port, path)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            r = json.loads(line[len("WRKJSON "):])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            return r
    sys.exit("wrk gave no result:\n" + out.stdout + out.stderr)


def measure(name, scenario, opts, tmp, lua):
    path, app, connections, good = SCENARIOS[scenario]
    port = free_port()
    log_path = os.path.join(tmp, name + ".log")
    proc = start(argv_for(name, opts, app, port, tmp), log_path)
    try:
        wait_ready(proc, port, name, log_path, path, good)
        wrk(port, path, min(2, opts.seconds), connections, lua)  # warm-up
        pids = [proc.pid] + worker_pids(proc.pid)
        before = cpu_seconds(pids)
        r = wrk(port, path, opts.seconds, connections, lua)
        after = cpu_seconds(pids)
    finally:
        stop(proc)
    r["cpu_us"] = (after - before) / r["requests"] * 1e6 if before and after and r["requests"] else float("nan")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gantry", default=str(REPO / "build/release/gantry"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--servers", default="gantry," + ",".join(PEERS),
                    help="nginx only serves the hello and the file; the first other one is what ratios are to")
    ap.add_argument("--quick", action="store_true", help="1 round of 3 s")
    ap.add_argument("--json-out", help="write every measurement here")
    opts = ap.parse_args()
    if opts.quick:
        opts.rounds, opts.seconds = 1, 3
    servers = [s for s in opts.servers.split(",") if s]
    for s in servers:
        if s != "gantry" and not shutil.which({"uvicorn": "/usr/bin/python3", "daphne": "/usr/bin/daphne",
                                               "hypercorn": "/usr/bin/hypercorn", "nginx": "/usr/sbin/nginx"}[s]):
            sys.exit("%s is not installed (scripts/install-deps.sh)" % s)
    print("load before: %s" % open("/proc/loadavg").read().strip())
    print("wrk -t2 -d%ds, %d worker(s) each (daphne: 1 process), %d round(s)" % (opts.seconds, opts.workers, opts.rounds))
    results = {}
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        lua = os.path.join(tmp, "summary.lua")
        Path(lua).write_text(WRK_LUA)
        for scenario in opts.scenarios.split(","):
            names = [s for s in servers if s != "nginx" or scenario in ("hello", "file")]
            runs = {name: [] for name in names}
            for rnd in range(opts.rounds):
                for name in names:
                    r = measure(name, scenario, opts, tmp, lua)
                    runs[name].append(r)
                    print("%-7s round %d  %-9s %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  %6.1f us CPU/request  errors %d  load %s"
                          % (scenario, rnd + 1, name, r["rps"], r["latency_us"]["p50"] / 1000,
                             r["latency_us"]["p99"] / 1000, r["cpu_us"], sum(r["errors"].values()),
                             open("/proc/loadavg").read().split()[0]), flush=True)
            results[scenario] = runs
            if "gantry" not in runs:
                continue
            for peer in [n for n in names if n != "gantry"]:
                ratios = [g["rps"] / p["rps"] for g, p in zip(runs["gantry"], runs[peer])]
                p99 = [g["latency_us"]["p99"] / max(p["latency_us"]["p99"], 1) for g, p in zip(runs["gantry"], runs[peer])]
                line = ("%-7s gantry / %-9s req/s %.2fx (per round %s), p99 %.2fx, CPU/request %.1f vs %.1f us"
                        % (scenario, peer, statistics.median(ratios), " ".join("%.2f" % x for x in ratios),
                           statistics.median(p99), statistics.median(r["cpu_us"] for r in runs["gantry"]),
                           statistics.median(r["cpu_us"] for r in runs[peer])))
                summary.append(line)
                print(line, flush=True)
    print("\nsummary (medians over rounds; p99 ratio below 1 is better):")
    for line in summary:
        print("  " + line)
    print("load after: %s" % open("/proc/loadavg").read().strip())
    if opts.json_out:
        Path(opts.json_out).write_text(json.dumps({"workers": opts.workers, "seconds": opts.seconds,
                                                   "results": results}, indent=1))


if __name__ == "__main__":
    main()
