#!/usr/bin/python3
"""How evenly the workers share the work: many fresh starts, each loaded by one burst of
keep-alive connections, gantry against gunicorn sync and gthread in the same run.

For each start, every server is started in turn (alternating, so a noisy machine biases no one),
with 2 workers, the Django demo's view; wrk opens all its connections at once and keeps them
for the whole run. Reported per server: requests/s over the starts (min / median / max) and the
smallest share of the CPU time one worker did (read from /proc), which is ~50% when the work
is spread and ~0% when one worker got every connection.

    /usr/bin/python3 bench/e2e/balance.py                     # 20 starts, -c32, 4 s each
    /usr/bin/python3 bench/e2e/balance.py --starts 5 --connections 4 --servers gantry
    /usr/bin/python3 bench/e2e/balance.py --markdown --gantry-before /path/to/older/gantry

Stdlib only; needs wrk and Debian's gunicorn; the demo prepared (examples/django_demo/setup.sh).
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import compare  # noqa: E402  (its Server, wrk runner and /proc readers)

PATHS = {"ping": ("/ping/", b"pong"), "json": ("/api/products/", None)}


class Opts:
    pass


def argv_for(name, opts, port):
    gantry, workers, threads = opts.gantry, opts.workers, opts.gthread_threads
    demo = str(compare.REPO / "examples" / "django_demo")
    common = ["-w", str(workers), "-b", "127.0.0.1:%d" % port, "--chdir", demo, "--log-level", "warning",
              "demo.wsgi:application"]
    if name == "gantry":
        return [gantry] + common
    if name == "gantry-before":
        return [opts.gantry_before] + common
    if name == "gunicorn-sync":
        return [compare.GUNICORN, "-k", "sync"] + common
    if name == "gunicorn-gthread":
        return [compare.GUNICORN, "-k", "gthread", "--threads", str(threads)] + common
    raise ValueError(name)


def wait_ready(server, port, path, timeout=30):
    import http.client
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise compare.BenchError("%s exited:\n%s" % (server.name, server.log_tail()))
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise compare.BenchError("%s never answered %s:\n%s" % (server.name, path, server.log_tail()))


def one_start(opts, name, logdir):
    port = compare.free_port()
    server = compare.Server(name, argv_for(name, opts, port), logdir)
    server.start()
    try:
        path = PATHS[opts.view][0]
        wait_ready(server, port, path)
        deadline = time.monotonic() + 10
        pids = compare.worker_pids(server.proc.pid)
        while len(pids) < opts.workers and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = compare.worker_pids(server.proc.pid)
        before = {p: compare.cpu_seconds([p]) for p in pids}
        r = compare.run_wrk(opts, "http://127.0.0.1:%d%s" % (port, path), opts.wrk_threads, opts.connections,
                            opts.seconds, None)
        after = {p: compare.cpu_seconds([p]) for p in pids}
        used = [(after[p] or 0) - (before[p] or 0) for p in pids]
        total = sum(used)
        share = min(used) / total if total > 0 and len(used) == opts.workers else 0.0
        return {"rps": r["rps"], "errors": r["error_count"], "share": share, "cpu": used}
    finally:
        server.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--starts", type=int, default=20)
    ap.add_argument("--warmup-starts", type=int, default=1,
                    help="starts of each server before the measured ones, not counted (a cold page cache)")
    ap.add_argument("--seconds", type=int, default=4, help="wrk's run per start")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--view", choices=sorted(PATHS), default="ping")
    ap.add_argument("--servers", default="gantry,gunicorn-sync,gunicorn-gthread")
    ap.add_argument("--gantry", default=str(compare.REPO / "build/release/gantry"))
    ap.add_argument("--gantry-before", metavar="BIN",
                    help="another gantry binary (an older build), measured as the server gantry-before")
    ap.add_argument("--gthread-threads", type=int, default=4)
    ap.add_argument("--markdown", action="store_true")
    opts = ap.parse_args(argv, namespace=Opts())
    servers = opts.servers.split(",")
    if opts.gantry_before and "gantry-before" not in servers:
        servers.insert(1, "gantry-before")
    results = {s: [] for s in servers}
    with tempfile.TemporaryDirectory(prefix="gantry-balance-") as tmp:
        opts.lua_path = str(Path(tmp) / "report.lua")
        Path(opts.lua_path).write_text(compare.WRK_LUA)
        try:
            for _ in range(opts.warmup_starts):
                for name in servers:
                    one_start(opts, name, tmp)
            for i in range(opts.starts):
                for name in servers:
                    res = one_start(opts, name, tmp)
                    results[name].append(res)
                    print("start %2d %-17s %8.0f req/s  smallest worker share %4.1f%%  errors %d"
                          % (i + 1, name, res["rps"], 100 * res["share"], res["errors"]), flush=True)
        finally:
            compare.stop_all()
    print()
    rows = []
    for name in servers:
        rps = [r["rps"] for r in results[name]]
        shares = [r["share"] for r in results[name]]
        med = statistics.median(rps)
        rows.append((name, min(rps), med, max(rps), min(rps) / med, min(shares), sum(r["errors"] for r in results[name])))
    header = ("server", "min req/s", "median", "max", "worst/median", "smallest worker share", "errors")
    if opts.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for n, lo, med, hi, worst, share, err in rows:
            print("| %s | %.0f | %.0f | %.0f | %.2f | %.1f%% | %d |" % (n, lo, med, hi, worst, 100 * share, err))
    else:
        print("%-17s %10s %10s %10s %13s %22s %7s" % header)
        for n, lo, med, hi, worst, share, err in rows:
            print("%-17s %10.0f %10.0f %10.0f %13.2f %21.1f%% %7d" % (n, lo, med, hi, worst, 100 * share, err))
    print("(%d starts, wrk -t%d -c%d -d%ds %s, %d workers; gunicorn gthread --threads %d)"
          % (opts.starts, opts.wrk_threads, opts.connections, opts.seconds, PATHS[opts.view][0], opts.workers,
             opts.gthread_threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
