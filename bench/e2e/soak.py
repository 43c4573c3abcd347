#!/usr/bin/python3
"""Soak: gantry under ten minutes of mixed load, its workers' memory watched.

The demo (examples/django_demo, run setup.sh first) behind `--middleware timing,static,cache,compress`,
2 workers; wrk (-t2 -c16) cycles through, per 10 requests:
  3 dynamic  /ping/ and /api/products/         (Django, the database)
  3 static   /static/admin/css/base.css (gzip) and /static/admin/js/core.js
  2 cached   /catalogue/                         (max-age=60: the native cache)
  1 gzip     /big-page/                          (compressed on the I/O thread)
  1 upload   POST /upload/, a 64 KiB multipart file
Every 10 s each worker's RSS (VmRSS) is sampled. Reported: requests, errors (non-2xx and socket),
and each worker's RSS growth from the end of the warm-up (the first minute) to the end; the goal
is under 5% and zero errors.

    /usr/bin/python3 bench/e2e/soak.py                   # 10 minutes
    /usr/bin/python3 bench/e2e/soak.py --minutes 2 --warmup 30
Not run in CI. Stdlib only; needs wrk.
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEMO = REPO / "examples" / "django_demo"

WRK_LUA = r"""
local boundary = "gantrysoakboundary"
local file = string.rep("x", 65536)
local upload_body = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"soak.bin\"\r\n" ..
  "Content-Type: application/octet-stream\r\n\r\n" .. file .. "\r\n--" .. boundary .. "--\r\n"
local plan = {
  {"GET", "/ping/", {}},
  {"GET", "/static/admin/css/base.css", {["Accept-Encoding"] = "gzip"}},
  {"GET", "/catalogue/", {}},
  {"GET", "/api/products/", {}},
  {"GET", "/static/admin/js/core.js", {}},
  {"GET", "/big-page/", {["Accept-Encoding"] = "gzip"}},
  {"GET", "/ping/", {}},
  {"GET", "/catalogue/", {["Accept-Encoding"] = "gzip"}},
  {"POST", "/upload/", {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}, upload_body},
  {"GET", "/static/admin/css/base.css", {}},
}
local i = 0
request = function()
  i = i % #plan + 1
  local p = plan[i]
  return wrk.format(p[1], p[2], p[3], p[4])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d}\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    except (OSError, AttributeError):
        return None


def workers_of(master):
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return sorted(int(p) for p in out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=60, help="seconds before the RSS baseline")
    opts = ap.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="gantry-soak-") as tmp:
        lua = Path(tmp) / "soak.lua"
        lua.write_text(WRK_LUA)
        env = dict(os.environ, DJANGO_DEBUG="0")
        env.pop("VIRTUAL_ENV", None)
        log = open(Path(tmp) / "gantry.log", "w")
        server = subprocess.Popen([str(REPO / "build/release/gantry"), "-w", "2", "-b", "127.0.0.1:%d" % port,
                                   "--chdir", str(DEMO), "--middleware", "timing,static,cache,compress",
                                   "demo.wsgi:application"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            time.sleep(2)
            seconds = int(opts.minutes * 60)
            wrk = subprocess.Popen(["wrk", "-t2", "-c16", "-d%ds" % seconds, "-s", str(lua),
                                    "http://127.0.0.1:%d/" % port], stdout=subprocess.PIPE, text=True)
            start = time.monotonic()
            samples = []  # (t, {pid: kib})
            while wrk.poll() is None:
                time.sleep(10)
                samples.append((time.monotonic() - start, {p: rss_kib(p) for p in workers_of(server.pid)}))
                print("t=%4.0fs rss KiB %s" % samples[-1], flush=True)
            out = wrk.stdout.read()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        result = json.loads(re.search(r"WRKJSON (.*)", out).group(1))
        base = next((s for t, s in samples if t >= opts.warmup), samples[0][1])
        end = samples[-1][1]
        growth = {p: 100.0 * (end[p] - base[p]) / base[p] for p in end if p in base and base[p] and end[p]}
        replaced = sorted(set(end) ^ set(base))
        print("\nrequests %d in %.0f s (%.0f req/s), status errors %d, socket errors %d, p50 %d us, p99 %d us"
              % (result["requests"], result["duration_us"] / 1e6, result["requests"] / (result["duration_us"] / 1e6),
                 result["status_errors"], result["socket_errors"], result["p50_us"], result["p99_us"]))
        for p, g in growth.items():
            print("worker %d: RSS %d -> %d KiB after warm-up: %+.1f%% (goal < 5%%)" % (p, base[p], end[p], g))
        if replaced:
            print("workers replaced during the run: %s (see the log)" % replaced)
        ok = result["status_errors"] == 0 and result["socket_errors"] == 0 and growth and all(g < 5 for g in growth.values())
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
