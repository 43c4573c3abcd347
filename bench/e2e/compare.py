#!/usr/bin/python3
"""gantry against gunicorn (sync and gthread) and the in-process Python floor, with wrk.

One run goes through the scenarios; in each, every server is started in turn with the
same worker count on 127.0.0.1 (a free port), checked to answer, warmed up, measured
with wrk and stopped. Servers alternate over R rounds (gantry, sync, gthread, gantry,
...) and the median per server is reported, so a noisy shared machine does not bias
one side.

    /usr/bin/python3 bench/e2e/compare.py                      # everything, ~10 min
    /usr/bin/python3 bench/e2e/compare.py --quick --scenarios a,e
    /usr/bin/python3 bench/e2e/compare.py --markdown           # table for docs/benchmarks.md

Scenarios (our targets in brackets):
  a  hello           bare WSGI, 2 workers, wrk -t2 -c32      [gantry >= 4x gunicorn sync]
  b  django          /ping/, 2 workers, wrk -t2 -c32         [>= 1.3x sync, p99 no worse]
  c  django-pinned   1 worker on CPU 0, wrk -t1 -c8 on CPU 1 [>= 90% of the Python floor]
  d  latency         1 worker on CPU 0, wrk -t1 -c1 on CPU 1 [mean - floor <= 20 us]
  e  rss             2 workers, a few requests, VmRSS       [worker <= sync worker + 10 MiB]

Stdlib only; needs wrk, taskset and Debian's gunicorn.
"""

import argparse
import atexit
import datetime
import http.client
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PYTHON = "/usr/bin/python3"          # Debian's: the one that sees Django and gunicorn
GUNICORN = "/usr/bin/gunicorn"
FLOOR = HERE / "python_floor.py"

# wrk calls done() once at the end; latencies are in microseconds.
WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"max":%d,"mean":%.3f,"stdev":%.3f,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
"""


@dataclass(frozen=True)
class App:
    folder: str          # under --examples
    spec: str            # module:callable, as on gunicorn's command line
    path: str            # what wrk requests
    body: bytes          # what a correct server answers
    hint: str            # printed when the app does not answer


APPS = {
    "hello": App("wsgi_hello", "app:app", "/", b"hello",
                 "examples/wsgi_hello/app.py should return [b'hello']"),
    "django": App("django_demo", "demo.wsgi:application", "/ping/", b"ok",
                  "run examples/django_demo/setup.sh first"),
}


@dataclass(frozen=True)
class Scenario:
    key: str
    name: str
    app: str
    workers: int
    kind: str                      # "wrk" or "rss"
    wrk_threads: int = 0
    connections: int = 0
    pinned: bool = False           # server on one CPU, wrk on another, floor measured
    target: str = ""


SCENARIOS = [
    Scenario("a", "hello", "hello", 2, "wrk", 2, 32,
             target="gantry >= 4x gunicorn sync req/s"),
    Scenario("b", "django-ping unpinned", "django", 2, "wrk", 2, 32,
             target="gantry >= 1.3x gunicorn sync req/s, p99 no worse"),
    Scenario("c", "django-ping pinned", "django", 1, "wrk", 1, 8, pinned=True,
             target="gantry >= 90% of the Python floor (gunicorn sync ~65%)"),
    Scenario("d", "latency c=1", "django", 1, "wrk", 1, 1, pinned=True,
             target="gantry p50 latency - floor <= 20 us (mean shown too)"),
    Scenario("e", "idle RSS", "django", 2, "rss",
             target="gantry worker <= gunicorn sync worker + 10 MiB"),
]
SCENARIO_NAMES = {"a": "a", "hello": "a", "b": "b", "django": "b", "c": "c", "pinned": "c",
                  "d": "d", "latency": "d", "e": "e", "rss": "e"}

GANTRY, SYNC, GTHREAD, PYFLOOR = "gantry", "gunicorn-sync", "gunicorn-gthread", "python-floor"
PYFLOOR_SO = "python-floor (libpython.so)"


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- servers

_running = []   # every server not yet stopped, so atexit/signals can stop it


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env():
    """The servers' environment: no pyenv or caller's Python settings leaking in."""
    env = dict(os.environ)
    for key in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE"):
        env.pop(key, None)
    return env


class Server:
    """One server process group: started in its own session so stop() gets every worker."""

    def __init__(self, name, argv, logdir):
        self.name = name
        self.argv = argv
        self.log_path = Path(logdir) / ("%s-%d.log" % (name, time.monotonic_ns()))
        self.proc = None

    def start(self):
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(self.argv, cwd=REPO, env=clean_env(),
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            raise BenchError("cannot start %s: %s: %s" % (self.name, shlex.join(self.argv), e))
        finally:
            log.close()
        _running.append(self)

    def log_tail(self, lines=15):
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + l for l in text[-lines:])

    def wait_ready(self, port, app, timeout=30.0):
        """Poll until the app answers 200 with the expected body."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("%s exited with status %s before answering:\n  %s\n%s"
                                 % (self.name, self.proc.returncode, shlex.join(self.argv),
                                    self.log_tail()))
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", app.path)
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                if resp.status == 200 and body == app.body:
                    return
                last = "status %d, body %r" % (resp.status, body[:80])
            except (OSError, http.client.HTTPException) as e:
                last = "%s: %s" % (type(e).__name__, e)
            time.sleep(0.1)
        raise BenchError("%s did not answer GET %s correctly within %.0fs (%s; %s):\n  %s\n%s"
                         % (self.name, app.path, timeout, last, app.hint,
                            shlex.join(self.argv), self.log_tail()))

    def stop(self):
        if self.proc is None:
            return
        pgid = self.proc.pid   # session leader: its pid is the group id
        if self.proc.poll() is None:
            # TERM to the master alone, as an operator would; it drains its workers.
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(pgid, signal.SIGKILL)   # whatever is left: hung master, orphaned workers
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait()
        if self in _running:
            _running.remove(self)


def stop_all():
    for s in list(_running):
        try:
            s.stop()
        except Exception as e:   # keep stopping the others
            print("warning: stopping %s: %s" % (s.name, e), file=sys.stderr)


def on_signal(signum, frame):
    # Unwind through the finally blocks (which stop the servers) as Ctrl-C does.
    raise KeyboardInterrupt


def server_argv(name, opts, app, port, workers):
    """The same gunicorn-style command line for every server; only the base differs."""
    if name == GANTRY:
        base = list(opts.gantry_base) + shlex.split(opts.gantry_args)
    elif name == SYNC:
        base = [GUNICORN, "-k", "sync"]
    elif name == GTHREAD:
        base = [GUNICORN, "-k", "gthread", "--threads", str(opts.gthread_threads)]
    else:
        raise ValueError(name)
    app_dir = str(Path(opts.examples) / app.folder)
    return base + ["-w", str(workers), "-b", "127.0.0.1:%d" % port, "--chdir", app_dir,
                   "--log-level", "warning", app.spec]


def pin(cpu):
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


# ---------------------------------------------------------------- measurements

def run_wrk(opts, url, threads, connections, seconds, cpu):
    argv = pin(cpu) + ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds,
                       "--latency", "-s", opts.lua_path, url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            r = json.loads(line[len("WRKJSON "):])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["error_count"] = sum(r["errors"].values())
            return r
    raise BenchError("wrk gave no result (exit %d):\n%s\n%s"
                     % (out.returncode, out.stdout[-2000:], out.stderr[-2000:]))


def build_shared_python(tmp):
    """Build embed_main.c against the shared libpython: ((exe, PYTHONHOME), "") or (None, why)."""
    # The paths come from that python's sysconfig: only libpython3.11-dev is needed.
    query = ("import sys, sysconfig as s; v = s.get_config_var; "
             "print(sys.base_prefix, v('INCLUDEPY'), v('LIBDIR'), v('LDVERSION'))")
    try:
        home, include, libdir, ldversion = subprocess.run(
            [PYTHON, "-c", query], capture_output=True, text=True, check=True).stdout.split()
        exe = os.path.join(tmp, "python-libpython")
        out = subprocess.run(["cc", "-O2", "-I" + include, str(HERE / "embed_main.c"), "-o", exe,
                              "-L" + libdir, "-lpython" + ldversion],
                             capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        return None, str(e)
    if out.returncode != 0:
        return None, out.stderr.strip()[-500:]
    return (exe, home), ""


def run_floor(opts, app, cpu, shared=None):
    """The floor under Debian's python3, or with shared=(exe, home) under libpython.so."""
    seconds = max(0.5, opts.duration / 5)
    env = clean_env()
    python = PYTHON
    if shared:
        python, env["PYTHONHOME"] = shared
    argv = pin(cpu) + [python, str(FLOOR), "--chdir", str(Path(opts.examples) / app.folder),
                       app.spec, "--path", app.path, "--seconds", str(seconds), "--runs", "3",
                       "--warmup", str(min(1.0, seconds)), "--json"]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=seconds * 4 + 60)
    if out.returncode != 0:
        raise BenchError("python_floor failed: %s\n%s" % (shlex.join(argv), out.stderr[-2000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_wrk(opts, sc, name, app, server_cpu, client_cpu):
    port = free_port()
    server = Server(name, pin(server_cpu) + server_argv(name, opts, app, port, sc.workers),
                    opts.logdir)
    try:
        server.start()
        server.wait_ready(port, app)
        if server_cpu is not None:
            check_pinned(server, server_cpu)
        url = "http://127.0.0.1:%d%s" % (port, app.path)
        # Warm up every worker (imports, caches, branch predictors) before measuring.
        run_wrk(opts, url, sc.wrk_threads, sc.connections, opts.warmup, client_cpu)
        pids = [server.proc.pid] + worker_pids(server.proc.pid)
        before = cpu_seconds(pids)
        r = run_wrk(opts, url, sc.wrk_threads, sc.connections, opts.duration, client_cpu)
        after = cpu_seconds(pids)
        # CPU the server's processes burnt per request: unlike req/s, barely moved by other
        # processes competing for the CPUs (kernel TCP work is only partly attributed).
        r["cpu_us_per_req"] = (None if before is None or after is None or not r["requests"]
                               else (after - before) * 1e6 / r["requests"])
        return r
    finally:
        server.stop()


def worker_pids(master):
    pids = []
    try:
        tasks = os.listdir("/proc/%d/task" % master)
    except FileNotFoundError:
        return pids
    for tid in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (master, tid)) as f:
                pids += [int(p) for p in f.read().split()]
        except FileNotFoundError:
            pass
    return sorted(set(pids))


def cpu_seconds(pids):
    """utime + stime of these processes (all their threads), or None if one is gone."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            return None
        total += int(fields[11]) + int(fields[12])   # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


def check_pinned(server, cpu):
    """Every thread of the master and its workers must still be on `cpu`: a server that
    resets its own affinity would otherwise get a second CPU in the pinned scenarios."""
    master = server.proc.pid
    for pid in [master] + worker_pids(master):
        try:
            tids = [int(t) for t in os.listdir("/proc/%d/task" % pid)]
        except FileNotFoundError:
            continue   # a worker restarting; its replacement inherits the master's mask
        for tid in tids:
            try:
                allowed = os.sched_getaffinity(tid)
            except ProcessLookupError:
                continue
            if allowed != {cpu}:
                raise BenchError("%s: thread %d of pid %d may run on CPUs %s, not only %d"
                                 % (server.name, tid, pid, sorted(allowed), cpu))


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError("no VmRSS for pid %d" % pid)


def measure_rss(opts, sc, name, app):
    port = free_port()
    server = Server(name, server_argv(name, opts, app, port, sc.workers), opts.logdir)
    try:
        server.start()
        server.wait_ready(port, app)
        # A few requests on fresh connections so each worker has served the app.
        for _ in range(20 * sc.workers):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", app.path)
            resp = conn.getresponse()
            if resp.status != 200 or resp.read() != app.body:
                raise BenchError("%s answered GET %s with %d" % (name, app.path, resp.status))
            conn.close()
        time.sleep(1.0)   # let it go idle
        master = server.proc.pid
        workers = worker_pids(master)
        note = ""
        if not workers:
            workers, note = [master], "no child processes: counted the master"
        elif len(workers) != sc.workers:
            note = "%d children for -w %d" % (len(workers), sc.workers)
        rss = [vm_rss_kib(p) / 1024 for p in workers]
        master_mib = vm_rss_kib(master) / 1024 if master not in workers else 0.0
        return {"worker_mib": max(rss), "worker_mib_all": rss, "master_mib": master_mib,
                "total_mib": master_mib + sum(rss), "note": note}
    finally:
        server.stop()


# ---------------------------------------------------------------- the run

def med(samples, key):
    return statistics.median(s[key] for s in samples)


def median_known(values):
    """Median of the values that were measured; NaN when none was."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else float("nan")


def run_scenario(opts, sc, servers, cpus):
    app = APPS[sc.app]
    server_cpu = client_cpu = None
    if sc.pinned:
        server_cpu, client_cpu = cpus[0], cpus[1]
    samples = {n: [] for n in servers}
    floor, floor_so = [], []
    for rnd in range(opts.rounds):
        for name in servers:
            t0 = time.monotonic()
            if sc.kind == "rss":
                r = measure_rss(opts, sc, name, app)
                msg = "worker %.1f MiB, master %.1f MiB %s" % (r["worker_mib"], r["master_mib"],
                                                             r["note"])
            else:
                r = measure_wrk(opts, sc, name, app, server_cpu, client_cpu)
                msg = "%.0f req/s, p50 %d us, p99 %d us" % (r["rps"], r["latency_us"]["p50"],
                                                            r["latency_us"]["p99"])
                if r["error_count"]:
                    msg += ", ERRORS %s" % r["errors"]
            # The machine is shared: the load average tells a noisy sample from a slow server.
            r["load1"] = os.getloadavg()[0]
            samples[name].append(r)
            log("  [%s round %d/%d] %-17s %s (%.0fs, load %.1f)"
                % (sc.key, rnd + 1, opts.rounds, name, msg, time.monotonic() - t0, r["load1"]))
        if sc.pinned:
            f = run_floor(opts, app, server_cpu)
            f["load1"] = os.getloadavg()[0]
            floor.append(f)
            log("  [%s round %d/%d] %-17s %.0f calls/s, %.1f us per call"
                % (sc.key, rnd + 1, opts.rounds, PYFLOOR, f["calls_per_s"], f["us_per_call"]))
            if opts.shared_python:
                f = run_floor(opts, app, server_cpu, opts.shared_python)
                f["load1"] = os.getloadavg()[0]
                floor_so.append(f)
                log("  [%s round %d/%d] %-17s %.0f calls/s, %.1f us per call"
                    % (sc.key, rnd + 1, opts.rounds, PYFLOOR_SO, f["calls_per_s"],
                       f["us_per_call"]))
    return summarize(sc, samples, floor, floor_so)


def floor_summary(floor):
    return {"calls_per_s": statistics.median(f["calls_per_s"] for f in floor),
            "us_per_call": statistics.median(f["us_per_call"] for f in floor),
            "load1": statistics.median(f.get("load1", float("nan")) for f in floor),
            "cpu_us": median_known(f.get("cpu_us_per_call") for f in floor)}


def summarize(sc, samples, floor, floor_so=()):
    rows = {}
    for name, ss in samples.items():
        if sc.kind == "rss":
            rows[name] = {"worker_mib": med(ss, "worker_mib"), "master_mib": med(ss, "master_mib"),
                          "total_mib": median_known(s.get("total_mib") for s in ss),
                          "notes": sorted({s["note"] for s in ss if s["note"]})}
        else:
            lat = [s["latency_us"] for s in ss]
            rows[name] = {"rps": med(ss, "rps"),
                          "p50_us": statistics.median(l["p50"] for l in lat),
                          "p99_us": statistics.median(l["p99"] for l in lat),
                          "p90_us": statistics.median(l["p90"] for l in lat),
                          "mean_us": statistics.median(l["mean"] for l in lat),
                          "errors": sum(s["error_count"] for s in ss),
                          "load1": statistics.median(s.get("load1", float("nan")) for s in ss),
                          "cpu_us": median_known(s.get("cpu_us_per_req") for s in ss)}
    res = {"scenario": sc.key, "name": sc.name, "target": sc.target, "rows": rows,
           "samples": samples, "floor_samples": floor, "floor_so_samples": list(floor_so)}
    if floor and floor_so:
        res["floor_so"] = floor_summary(floor_so)
    if floor:
        res["floor"] = floor_summary(floor)
        for row in rows.values():
            row["pct_floor"] = 100.0 * row["rps"] / res["floor"]["calls_per_s"]
            # The same ratio in CPU time: the app's share of what the server burns.
            row["cpu_pct_floor"] = (100.0 * res["floor"]["cpu_us"] / row["cpu_us"]
                                    if row["cpu_us"] > 0 else float("nan"))
            row["own_cost_mean_us"] = row["mean_us"] - res["floor"]["us_per_call"]
            row["own_cost_p50_us"] = row["p50_us"] - res["floor"]["us_per_call"]
    res["verdict"] = verdict(sc, res)
    return res


def verdict(sc, res):
    """Whether gantry met its target, or None when gantry was not measured."""
    g, s = res["rows"].get(GANTRY), res["rows"].get(SYNC)
    if g is None:
        return None
    if g.get("errors"):
        return False   # socket errors or non-2xx answers: fast but wrong is not a pass
    if sc.key == "a" and s:
        return g["rps"] >= 4 * s["rps"]
    if sc.key == "b" and s:
        return g["rps"] >= 1.3 * s["rps"] and g["p99_us"] <= s["p99_us"]
    if sc.key == "c":
        return g["pct_floor"] >= 90
    if sc.key == "d":
        # p50, not the mean: on a shared machine one preempted request moves the mean by
        # more than the whole budget.
        return g["own_cost_p50_us"] <= 20
    if sc.key == "e" and s:
        return g["worker_mib"] <= s["worker_mib"] + 10
    return None


# ---------------------------------------------------------------- output

def log(msg):
    print(msg, file=sys.stderr, flush=True)


def num(x, fmt):
    return "-" if x != x else fmt % x   # NaN: not recorded (e.g. a run saved by an older harness)


def ratio(g, p, key):
    if g is None or p is None or not p.get(key):
        return "-"
    return "%.2fx" % (g[key] / p[key])


def table_rows(res, gantry_label):
    """Header and rows for one scenario, shared by the text and markdown output."""
    rows = res["rows"]
    g = rows.get(GANTRY)
    label = lambda n: gantry_label if n == GANTRY else n
    if res["scenario"] == "e":
        head = ["server", "worker RSS (MiB)", "master RSS (MiB)", "total RSS (MiB)",
                "gantry - this, worker (MiB)"]
        body = [[label(n), "%.1f" % r["worker_mib"], "%.1f" % r["master_mib"],
                 num(r["total_mib"], "%.1f"),
                 "-" if g is None else "%+.1f" % (g["worker_mib"] - r["worker_mib"])]
                for n, r in rows.items()]
    else:
        head = ["server", "req/s", "p50 (us)", "p99 (us)", "gantry/this req/s",
                "gantry/this p99", "CPU us/req", "load avg"]
        # Latency minus the floor is the server's own cost only without queueing: c=1 (d).
        own_cost = res["scenario"] == "d"
        if "floor" in res:
            head += ["% of floor", "CPU % of floor"]
        if own_cost:
            head += ["mean (us)", "p50 - floor (us)", "mean - floor (us)"]
        body = []
        for n, r in rows.items():
            line = [label(n), "%.0f" % r["rps"], "%d" % r["p50_us"], "%d" % r["p99_us"],
                    ratio(g, r, "rps"), ratio(g, r, "p99_us"), num(r["cpu_us"], "%.0f"),
                    num(r["load1"], "%.1f")]
            if "floor" in res:
                line += ["%.0f%%" % r["pct_floor"], num(r["cpu_pct_floor"], "%.0f%%")]
            if own_cost:
                line += ["%.1f" % r["mean_us"], "%.1f" % r["own_cost_p50_us"],
                         "%.1f" % r["own_cost_mean_us"]]
            if r["errors"]:
                line[0] += " (%d errors)" % r["errors"]
            body.append(line)
        if "floor" in res:
            f = res["floor"]
            for label_, key in ((PYFLOOR, "floor"), (PYFLOOR_SO, "floor_so")):
                if key not in res:
                    continue
                x = res[key]
                cpu_pct = 100.0 * f["cpu_us"] / x["cpu_us"] if x["cpu_us"] > 0 else float("nan")
                line = [label_, "%.0f" % x["calls_per_s"], "-", "-",
                        ratio(g, {"rps": x["calls_per_s"]}, "rps"), "-",
                        num(x["cpu_us"], "%.0f"), num(x["load1"], "%.1f"),
                        "%.0f%%" % (100.0 * x["calls_per_s"] / f["calls_per_s"]),
                        num(cpu_pct, "%.0f%%")]
                if own_cost:
                    extra = x["us_per_call"] - f["us_per_call"]
                    line += ["%.1f" % x["us_per_call"], "%.1f" % extra, "%.1f" % extra]
                body.append(line)
    return head, body


def verdict_text(res):
    v = res["verdict"]
    return {True: "met", False: "NOT met", None: "not measured (no gantry)"}[v]


def print_text(results, gantry_label):
    for res in results:
        print("\n== %s) %s   target: %s -> %s"
              % (res["scenario"], res["name"], res["target"], verdict_text(res)))
        head, body = table_rows(res, gantry_label)
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
        for line in [head] + body:
            print("  " + "  ".join(str(x).rjust(w) if i else str(x).ljust(w)
                                   for i, (x, w) in enumerate(zip(line, widths))))
        for n, r in res["rows"].items():
            for note in r.get("notes", []):
                print("  note: %s: %s" % (n, note))


def print_markdown(results, meta, gantry_label):
    print("Measured %s on %s; `%s`." % (meta["date"], meta["machine"], meta["command"]))
    print()
    for res in results:
        print("**%s) %s** — target: %s — %s" % (res["scenario"], res["name"], res["target"],
                                                verdict_text(res)))
        print()
        head, body = table_rows(res, gantry_label)
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join(" --- " for _ in head) + "|")
        for line in body:
            print("| " + " | ".join(line) + " |")
        print()


def machine_info():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return "%d CPUs (%s), Linux %s, shared by server and wrk" % (
        os.cpu_count(), model, platform.release())


def versions(opts):
    def first_line(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    v = {"gunicorn": first_line([GUNICORN, "--version"]),
         "wrk": first_line(["wrk", "-v"]),
         "python": first_line([PYTHON, "-c", "import sys, django; print(sys.version.split()[0], "
                               "'django', django.get_version())"])}
    if opts.gantry_base:
        v["gantry"] = first_line(list(opts.gantry_base) + ["--version"])
    return v


# ---------------------------------------------------------------- command line

def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="scenarios: " + "; ".join("%s=%s" % (s.key, s.name) for s in SCENARIOS),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds of wrk per measurement")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of wrk before each one")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    ap.add_argument("--scenarios", default="a,b,c,d,e", help="comma list, e.g. a,c,e")
    ap.add_argument("--gantry", default=str(REPO / "build/release/gantry"),
                    help="the gantry binary (default build/release/gantry)")
    ap.add_argument("--gantry-cmd", help="validation only: a command standing in for gantry, "
                    "e.g. '/usr/bin/gunicorn -k gthread --threads 2'; results are marked")
    ap.add_argument("--gantry-args", default="", help="extra arguments for gantry")
    ap.add_argument("--peers-only", action="store_true",
                    help="measure gunicorn and the floor only (gantry columns stay empty)")
    ap.add_argument("--no-libpython-floor", action="store_true",
                    help="skip the second floor run on the shared libpython (needs cc and "
                    "python3-dev to build bench/e2e/embed_main.c)")
    ap.add_argument("--gthread-threads", type=int, default=4,
                    help="--threads for gunicorn gthread (default 4)")
    ap.add_argument("--examples", default=str(REPO / "examples"),
                    help="folder holding wsgi_hello/ and django_demo/ (default examples/)")
    ap.add_argument("--quick", action="store_true", help="smoke check: 1 round of 1 s runs")
    ap.add_argument("--markdown", action="store_true", help="also print markdown tables")
    ap.add_argument("--json-out", help="write every sample and summary to this file")
    ap.add_argument("--from-json", metavar="FILE",
                    help="print the tables of a run saved with --json-out; measures nothing")
    ap.add_argument("--cpus", help="server CPU,client CPU for pinned scenarios (default: the "
                    "first two this process may use)")
    opts = ap.parse_args(argv)
    if opts.quick:
        opts.duration, opts.warmup, opts.rounds = 1, 1, 1
    if opts.duration < 1 or opts.warmup < 1 or opts.rounds < 1:
        ap.error("--duration, --warmup and --rounds must be >= 1 (wrk takes whole seconds)")
    keys = []
    for k in opts.scenarios.split(","):
        k = k.strip().lower()
        if k not in SCENARIO_NAMES:
            ap.error("unknown scenario %r (known: %s)" % (k, ", ".join(sorted(SCENARIO_NAMES))))
        keys.append(SCENARIO_NAMES[k])
    opts.scenario_list = [s for s in SCENARIOS if s.key in keys]
    return opts


def check_setup(opts):
    if opts.peers_only:
        opts.gantry_base = None
    elif opts.gantry_cmd:
        opts.gantry_base = shlex.split(opts.gantry_cmd)
    else:
        g = Path(opts.gantry)
        if not (g.is_file() and os.access(g, os.X_OK)):
            raise BenchError(
                "gantry binary not found at %s.\n"
                "Build it first: make build (or: cmake -S . -B build/release\n"
                "-DCMAKE_BUILD_TYPE=Release && cmake --build build/release -j2); "
                "pass --gantry PATH, or --peers-only to measure gunicorn and the floor alone." % g)
        opts.gantry_base = [str(g.resolve())]
    for tool in ("wrk", "taskset"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode:
            raise BenchError("%s not found (apt-get install -y %s)"
                             % (tool, "wrk" if tool == "wrk" else "util-linux"))
    if not os.access(GUNICORN, os.X_OK):
        raise BenchError("%s not found (apt-get install -y gunicorn)" % GUNICORN)
    for sc in opts.scenario_list:
        folder = Path(opts.examples) / APPS[sc.app].folder
        if not folder.is_dir():
            raise BenchError("%s is missing (scenario %s needs it; --examples DIR to point "
                             "elsewhere)" % (folder, sc.key))
    cpus = sorted(os.sched_getaffinity(0))
    if opts.cpus:
        cpus = [int(c) for c in opts.cpus.split(",")]
    if any(sc.pinned for sc in opts.scenario_list) and (len(cpus) < 2 or cpus[0] == cpus[1]):
        raise BenchError("pinned scenarios need two distinct CPUs, have %s" % cpus)
    return cpus


def render_saved(opts):
    with open(opts.from_json) as f:
        data = json.load(f)
    by_key = {s.key: s for s in SCENARIOS}
    results = []
    for res in data["results"]:
        floor = res.get("floor_samples") or ([res["floor"]] if "floor" in res else [])
        results.append(summarize(by_key[res["scenario"]], res["samples"], floor,
                                 res.get("floor_so_samples", [])))
    label = data["meta"].get("gantry_label", GANTRY)
    print_text(results, label)
    if opts.markdown:
        print()
        print_markdown(results, data["meta"], label)
    return 0


def main(argv=None):
    opts = parse_args(argv)
    if opts.from_json:
        return render_saved(opts)
    try:
        cpus = check_setup(opts)
    except BenchError as e:
        print("compare.py: %s" % e, file=sys.stderr)
        return 2
    servers = ([GANTRY] if opts.gantry_base else []) + [SYNC, GTHREAD]
    gantry_label = GANTRY
    if opts.gantry_cmd and not opts.peers_only:
        gantry_label = "gantry* (%s)" % opts.gantry_cmd
        log("NOTE: --gantry-cmd: the 'gantry' column is %r, not gantry" % opts.gantry_cmd)

    # SIGINT too: a shell starting us in the background sets it to ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    atexit.register(stop_all)
    results = []
    with tempfile.TemporaryDirectory(prefix="gantry-bench-") as tmp:
        opts.logdir = tmp
        opts.lua_path = os.path.join(tmp, "report.lua")
        with open(opts.lua_path, "w") as f:
            f.write(WRK_LUA)
        opts.shared_python = None
        if any(sc.pinned for sc in opts.scenario_list) and not opts.no_libpython_floor:
            opts.shared_python, why = build_shared_python(tmp)
            if not opts.shared_python:
                log("note: no libpython.so floor (could not build embed_main.c): %s" % why)
        meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "machine": machine_info(), "versions": versions(opts),
                "command": shlex.join(["bench/e2e/compare.py"] + (argv if argv is not None
                                                                  else sys.argv[1:])),
                "duration_s": opts.duration, "warmup_s": opts.warmup, "rounds": opts.rounds,
                "gthread_threads": opts.gthread_threads, "gantry_label": gantry_label}
        log("servers: %s; %d round(s) of %d s (+%d s warm-up); %s"
            % (", ".join(servers), opts.rounds, opts.duration, opts.warmup, meta["versions"]))
        try:
            for sc in opts.scenario_list:
                log("scenario %s) %s" % (sc.key, sc.name))
                results.append(run_scenario(opts, sc, servers, cpus))
        except BenchError as e:
            print("compare.py: %s" % e, file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("compare.py: interrupted; servers stopped", file=sys.stderr)
            return 130
        finally:
            stop_all()
    print_text(results, gantry_label)
    if opts.markdown:
        print()
        print_markdown(results, meta, gantry_label)
    if opts.json_out:
        with open(opts.json_out, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
