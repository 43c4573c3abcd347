#!/usr/bin/python3
"""Compression end to end: gantry's compress middleware against Django's GZipMiddleware under
gunicorn, on one of the demo's ~40 KB pages, with `Accept-Encoding: gzip`.

    /usr/bin/python3 bench/e2e/compress_compare.py                 # /big-page/, 3 rounds x 10 s
    /usr/bin/python3 bench/e2e/compress_compare.py --path /catalogue/ --rounds 5
    /usr/bin/python3 bench/e2e/compress_compare.py --gantry-levels 5,6   # gantry at each gzip level

/big-page/ is a prebuilt 40 KB HTML body (the cost measured is mostly the compression);
/catalogue/ renders a 35 KB template from the database on every request (the view costs as much
as the compression). In every round, alternating: gunicorn (sync, -w 2) with DJANGO_GZIP=1
(GZipMiddleware first in MIDDLEWARE, zlib level 6), then gantry (-w 2 --middleware
timing,compress) at each of --gantry-levels ("default": no level given). Each server's answer is
checked first: gzip, and it decodes to the page as served without compression. Prints req/s per
round, the median ratio (target >= 1.5x) and the response sizes (target: gantry's at most ~10%
larger than Django's). Stdlib only; needs wrk and Debian's gunicorn.
"""
import argparse
import gzip
import http.client
import json
import os
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
sys.path.insert(0, str(HERE))
from compare import WRK_LUA, cpu_seconds, worker_pids  # noqa: E402  (wrk's JSON summary, /proc CPU time)

PATH = "/big-page/"  # --path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv, env_extra, log_path):
    env = dict(os.environ)
    for key in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE", "DJANGO_GZIP"):
        env.pop(key, None)
    env.update(env_extra)
    with open(log_path, "wb") as log:
        return subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def fetch(port, accept="gzip"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", PATH, headers={"Accept-Encoding": accept})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, r.getheader("Content-Encoding"), body


def wait_ready(proc, port, name, log_path):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("%s exited early:\n%s" % (name, Path(log_path).read_text()[-2000:]))
        try:
            status, coding, body = fetch(port)
            if status == 200:
                _, _, page = fetch(port, accept="identity")
                if coding != "gzip" or gzip.decompress(body) != page:
                    sys.exit("%s: /big-page/ is not gzip of the page (Content-Encoding %r)" % (name, coding))
                return len(body)
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("%s did not answer:\n%s" % (name, Path(log_path).read_text()[-2000:]))


def wrk(port, seconds, lua):
    argv = ["wrk", "-t2", "-c32", "-d%ds" % seconds, "--latency", "-H", "Accept-Encoding: gzip", "-s", lua,
            "http://127.0.0.1:%d%s" % (port, PATH)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            r = json.loads(line[len("WRKJSON "):])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            return r
    sys.exit("wrk gave no result:\n" + out.stdout + out.stderr)


def main():
    global PATH
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gantry", default=str(REPO / "build/release/gantry"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--path", default=PATH, help="the page (default /big-page/; /catalogue/ renders a template)")
    ap.add_argument("--gantry-levels", default="default",
                    help="comma-separated gzip levels to run gantry at, each a server of its own ('default': none given)")
    opts = ap.parse_args()
    PATH = opts.path

    tmp_dir = tempfile.TemporaryDirectory()
    tmp = tmp_dir.name
    servers = {
        "gunicorn+GZipMiddleware": (["/usr/bin/gunicorn", "-k", "sync", "-w", "2", "--log-level", "warning",
                                     "--chdir", str(DEMO)], {"DJANGO_GZIP": "1"}),
    }
    for level in opts.gantry_levels.split(","):
        argv = [opts.gantry, "-w", "2", "--log-level", "warning", "--chdir", str(DEMO)]
        if level == "default":
            argv += ["--middleware", "timing,compress"]
        else:
            conf = os.path.join(tmp, "gzip%s.toml" % level)
            Path(conf).write_text('[[middleware]]\nname = "timing"\n\n[[middleware]]\nname = "compress"\n'
                                  'gzip_level = %d\n' % int(level))
            argv += ["-c", conf]
        servers["gantry+compress" + ("" if level == "default" else " gzip %s" % level)] = (argv, {})
    gantry_names = [n for n in servers if n.startswith("gantry")]
    print("load before: %s" % open("/proc/loadavg").read().strip())
    print("wrk -t2 -c32 -d%ds -H 'Accept-Encoding: gzip' %s" % (opts.seconds, PATH))
    results = {name: [] for name in servers}
    cpu = {name: [] for name in servers}
    sizes = {}
    with tmp_dir:
        lua = os.path.join(tmp, "summary.lua")
        Path(lua).write_text(WRK_LUA)
        for rnd in range(opts.rounds):
            for name, (argv, env) in servers.items():
                port = free_port()
                log_path = os.path.join(tmp, "%s.log" % name.replace(" ", "_"))
                proc = start(argv + ["-b", "127.0.0.1:%d" % port, "demo.wsgi:application"], env, log_path)
                try:
                    sizes[name] = wait_ready(proc, port, name, log_path)
                    wrk(port, opts.warmup, lua)
                    pids = [proc.pid] + worker_pids(proc.pid)
                    cpu_before = cpu_seconds(pids)
                    r = wrk(port, opts.seconds, lua)
                    cpu_after = cpu_seconds(pids)
                finally:
                    stop(proc)
                errors = sum(r["errors"].values())
                results[name].append(r["rps"])
                # The server's own CPU time per request (master and workers, every thread): unlike
                # req/s, barely moved by other load on a shared machine.
                cpu_us = (cpu_after - cpu_before) / r["requests"] * 1e6 if cpu_before and cpu_after else float("nan")
                cpu[name].append(cpu_us)
                print("round %d  %-24s %8.0f req/s  p50 %5.2f ms  p99 %6.2f ms  %5.0f us CPU/request  errors %d  load %s"
                      % (rnd + 1, name, r["rps"], r["latency_us"]["p50"] / 1000, r["latency_us"]["p99"] / 1000,
                         cpu_us, errors, open("/proc/loadavg").read().split()[0]))
    print("load after: %s" % open("/proc/loadavg").read().strip())
    peer = "gunicorn+GZipMiddleware"
    d, dc = statistics.median(results[peer]), statistics.median(cpu[peer])
    for name in gantry_names:
        g = statistics.median(results[name])
        ratios = [a / b for a, b in zip(results[name], results[peer])]
        print("%s: median req/s %.0f vs %s %.0f -> %.2fx (per round: %s) [target >= 1.5x]"
              % (name, g, peer, d, statistics.median(ratios), ", ".join("%.2f" % x for x in ratios)))
        gc = statistics.median(cpu[name])
        print("  median server CPU per request: %.0f us vs %.0f us -> %.2fx less" % (gc, dc, dc / gc))
        print("  gzip body: %d bytes vs Django's %d (%.3fx) [target: at most ~1.10x]"
              % (sizes[name], sizes[peer], sizes[name] / sizes[peer]))


if __name__ == "__main__":
    main()
