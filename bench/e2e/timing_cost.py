#!/usr/bin/python3
"""What `--timing full` costs end to end: gantry serving the demo's /ping/ (a tiny Django view
behind the default middleware) with the default timing and with --timing full, alternating in
one run, 1 worker pinned to CPU 0 and wrk pinned to CPU 1. Prints req/s per round, the medians
and the ratio (the budget: full timing may cost at most 5%).

    /usr/bin/python3 bench/e2e/timing_cost.py [--rounds 5] [--duration 8]
"""
import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GANTRY = REPO / "build" / "release" / "gantry"
DEMO = REPO / "examples" / "django_demo"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"GET /ping/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if c.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gantry did not answer on port %d" % port)


def measure(extra, duration):
    port = free_port()
    argv = ["taskset", "-c", "0", str(GANTRY), "-w", "1", "-b", "127.0.0.1:%d" % port, "--chdir", str(DEMO),
            "--log-level", "warning"] + extra + ["demo.wsgi:application"]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_ready(port)
        url = "http://127.0.0.1:%d/ping/" % port
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c8", "-d2s", url], capture_output=True)  # warm-up
        out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c8", "-d%ds" % duration, url],
                             capture_output=True, text=True).stdout
        m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
        if not m:
            raise SystemExit("no wrk result:\n" + out)
        return float(m.group(1))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=8)
    args = ap.parse_args()
    if not GANTRY.exists():
        sys.exit("build/release/gantry is missing: run `make build` first")
    subprocess.run(["sh", str(DEMO / "setup.sh")], check=True, capture_output=True)
    modes = {"timing on (default)": [], "timing full": ["--timing", "full"]}
    results = {name: [] for name in modes}
    for r in range(args.rounds):
        for name, extra in modes.items():
            rps = measure(extra, args.duration)
            results[name].append(rps)
            print("round %d  %-20s %8.0f req/s" % (r + 1, name, rps), flush=True)
    on = statistics.median(results["timing on (default)"])
    full = statistics.median(results["timing full"])
    print("\nmedian: timing on %.0f req/s, timing full %.0f req/s: full costs %.1f%%" % (on, full, (1 - full / on) * 100))


if __name__ == "__main__":
    main()
