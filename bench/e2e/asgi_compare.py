#!/usr/bin/python3
"""ASGI end to end: gantry against uvicorn (Debian's, with uvloop and httptools) on a bare ASGI
app (examples/asgi_hello), alternating in every round, reported as ratios.

    /usr/bin/python3 bench/e2e/asgi_compare.py                       # 3 rounds x 10 s, -w 1, / and /json
    /usr/bin/python3 bench/e2e/asgi_compare.py --workers 2 --rounds 5

Each server's answer is checked first. "CPU/request" is the server's own CPU time (every process
and thread, from /proc) over the measured requests. Stdlib only; needs wrk.
"""
import argparse
import os
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
import json  # noqa: E402


def start(argv, log_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV")}
    with open(log_path, "wb") as log:
        return subprocess.Popen(argv, cwd=APP_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(proc, port, name, log_path, path):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("%s exited early:\n%s" % (name, Path(log_path).read_text()[-2000:]))
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
                body = r.read()
                if r.status == 200 and (body == b"Hello, world!\n" or body.startswith(b"{")):
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gantry", default=str(REPO / "build/release/gantry"))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--paths", default="/,/json")
    opts = ap.parse_args()
    w = str(opts.workers)
    servers = {
        "uvicorn": ["/usr/bin/python3", "-m", "uvicorn", "--workers", w, "--log-level", "warning", "--no-access-log",
                    "--loop", "uvloop", "--http", "httptools", "app:app"],
        "gantry": [os.path.abspath(opts.gantry), "-w", w, "--log-level", "warning", "app:app"],
    }
    print("load before: %s" % open("/proc/loadavg").read().strip())
    print("wrk -t2 -c%d -d%ds, %s worker(s) each" % (opts.connections, opts.seconds, w))
    with tempfile.TemporaryDirectory() as tmp:
        lua = os.path.join(tmp, "summary.lua")
        Path(lua).write_text(WRK_LUA)
        for path in opts.paths.split(","):
            rps = {name: [] for name in servers}
            cpu = {name: [] for name in servers}
            for rnd in range(opts.rounds):
                for name, argv in servers.items():
                    port = free_port()
                    log_path = os.path.join(tmp, name + ".log")
                    bind = ["--host", "127.0.0.1", "--port", str(port)]
                    proc = start(argv[:-1] + bind + argv[-1:], log_path)
                    try:
                        wait_ready(proc, port, name, log_path, path)
                        wrk(port, path, 2, opts.connections, lua)  # warm-up
                        pids = [proc.pid] + worker_pids(proc.pid)
                        before = cpu_seconds(pids)
                        r = wrk(port, path, opts.seconds, opts.connections, lua)
                        after = cpu_seconds(pids)
                    finally:
                        stop(proc)
                    rps[name].append(r["rps"])
                    cpu_us = (after - before) / r["requests"] * 1e6 if before and after else float("nan")
                    cpu[name].append(cpu_us)
                    print("%-6s round %d  %-8s %8.0f req/s  p50 %5.2f ms  p99 %6.2f ms  %5.1f us CPU/request  errors %d  load %s"
                          % (path, rnd + 1, name, r["rps"], r["latency_us"]["p50"] / 1000, r["latency_us"]["p99"] / 1000,
                             cpu_us, sum(r["errors"].values()), open("/proc/loadavg").read().split()[0]))
            ratios = [g / u for g, u in zip(rps["gantry"], rps["uvicorn"])]
            print("%s: median req/s gantry %.0f, uvicorn %.0f -> %.2fx (per round: %s); CPU/request %.1f vs %.1f us"
                  % (path, statistics.median(rps["gantry"]), statistics.median(rps["uvicorn"]), statistics.median(ratios),
                     ", ".join("%.2f" % x for x in ratios), statistics.median(cpu["gantry"]), statistics.median(cpu["uvicorn"])))
    print("load after: %s" % open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
