#!/usr/bin/python3
"""WebSocket end to end: gantry against uvicorn (Debian's, `--ws websockets --loop uvloop --http
httptools`) and daphne, on bench/apps/ws_bench_app.py, driven by bench/ws_load (Beast's client, one
thread). Servers alternate in every round, each started fresh for each measurement; gantry's
figures are reported as ratios to each peer's.

    /usr/bin/python3 bench/e2e/ws_compare.py                    # every scenario, 3 rounds x 10 s
    /usr/bin/python3 bench/e2e/ws_compare.py --servers uvicorn,daphne --rounds 2
    /usr/bin/python3 bench/e2e/ws_compare.py --quick            # 1 round x 3 s, 500 idle: a smoke check
    /usr/bin/python3 bench/e2e/ws_compare.py --from-json bench/e2e/results/X-ws.json --markdown

Scenarios (issue 14's targets in brackets):
  echo          /echo       32 clients, 64-byte text messages, each waits for its echo; 2 workers
                            (daphne: its one process)  [messages/s >= 2x uvicorn]
  echo-deflate  /echo       the same with permessage-deflate offered, as browsers do (no target)
  broadcast     /broadcast  1,000 receivers, one sender, one broadcast on its way at a time; the app
                            sends each message to every connection of its process, so 1 worker
                            for every server           [deliveries/s >= 2x uvicorn]
  idle          /echo       2,000 connections on 1 worker, each has exchanged one message, no
                            permessage-deflate offered [RSS per connection <= 1/4 of uvicorn's]
  idle-deflate  /echo       the same with permessage-deflate offered (the client's offer is
                            Beast's: server and client max_window_bits 15)   [<= 1/4 of uvicorn's]
p99 latency is reported for every server (no target).

"CPU/msg" is the server's own CPU time (every process and thread, from /proc) over ws_load's
measured window, per message (echo: per round trip; broadcast: per delivery); the client's is given
too, since it shares the two cores. Idle RSS: the sum of VmRSS over the worker processes (the
process itself for uvicorn with one worker and for daphne) with the connections open, minus the
same before they opened, over the number of connections. daphne has no worker count: one process.
Stdlib only; needs build/release/bench/ws_load (cmake -DGANTRY_BENCH=ON) and Debian's uvicorn,
daphne and python3-websockets.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
APP_DIR = REPO / "bench" / "apps"
APP = "ws_bench_app:app"
sys.path.insert(0, str(HERE))
from compare import cpu_seconds, worker_pids  # noqa: E402
from compress_compare import free_port, stop  # noqa: E402

SERVERS = ("gantry", "uvicorn", "daphne")
# name: (what, target, ws_load mode, the figure compared, gantry / uvicorn goal: at least it for a rate,
# at most it for memory)
SCENARIOS = {
    "echo": ("echo, %(clients)d clients, 64 B text, %(workers)d workers", "≥ 2× uvicorn", "echo", "messages_per_s", 2.0),
    "echo-deflate": ("echo, %(clients)d clients, 64 B text, %(workers)d workers, deflate offered", "(none)", "echo",
                     "messages_per_s", None),
    "broadcast": ("broadcast to %(receivers)d receivers, 64 B, 1 worker", "≥ 2× uvicorn", "broadcast",
                  "deliveries_per_s", 2.0),
    "idle": ("worker RSS per idle connection, %(idle_connections)d on 1 worker, no deflate offered", "≤ 0.25× uvicorn",
             "idle", "kib_per_conn", 0.25),
    "idle-deflate": ("worker RSS per idle connection, %(idle_connections)d on 1 worker, deflate offered",
                     "≤ 0.25× uvicorn", "idle", "kib_per_conn", 0.25),
}


class MeasureError(Exception):
    pass


def workers_for(scenario, opts):
    return opts.workers if SCENARIOS[scenario][2] == "echo" else 1


def argv_for(name, opts, port, workers):
    w = str(workers)
    if name == "gantry":
        return [os.path.abspath(opts.gantry), "--interface", "asgi", "-w", w, "-b", "127.0.0.1:%d" % port,
                "--log-level", "warning", "--ws-per-message-deflate", "true",
                # gantry holds at most --worker-connections per worker (default 1000)
                "--worker-connections", str(opts.idle_connections + 1000), APP]
    if name == "uvicorn":
        return ["/usr/bin/python3", "-m", "uvicorn", "--workers", w, "--log-level", "warning", "--no-access-log",
                "--loop", "uvloop", "--http", "httptools", "--ws", "websockets", "--ws-per-message-deflate", "true",
                "--host", "127.0.0.1", "--port", str(port), APP]
    if name == "daphne":
        return ["/usr/bin/daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", APP]
    raise ValueError(name)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start(argv, log_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV")}
    with open(log_path, "wb") as log:
        return subprocess.Popen(argv, cwd=APP_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=raise_fd_limit)


def log_tail(log_path, n=1500):
    try:
        return Path(log_path).read_text(errors="replace")[-n:]
    except OSError:
        return ""


def wait_ready(proc, port, name, log_path):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MeasureError("%s exited early (%d): %s" % (name, proc.returncode, log_tail(log_path)))
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/stats" % port, timeout=2) as r:
                if r.status == 200 and b'"pid"' in r.read():
                    return
        except OSError:
            time.sleep(0.1)
    raise MeasureError("%s did not answer GET /stats: %s" % (name, log_tail(log_path)))


def server_pids(proc):
    """Every process of the server (master and workers), for CPU time."""
    return [proc.pid] + worker_pids(proc.pid)


def rss_pids(proc):
    """The processes that hold connections: the workers, or the process itself if it has none."""
    return worker_pids(proc.pid) or [proc.pid]


def vm_rss_kib(pids):
    total = 0
    for pid in pids:
        with open("/proc/%d/status" % pid) as f:
            total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return total


def ws_load(opts, mode, port, args, proc=None):
    """Runs ws_load to the end; with proc, reads the server's CPU at the window's two marks."""
    argv = [opts.ws_load, mode, "--port", str(port)] + args
    client = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=raise_fd_limit)
    marks, result = {}, None
    for line in client.stdout:
        line = line.strip()
        if line in ("window begin", "window end") and proc is not None:
            marks[line] = cpu_seconds(server_pids(proc))
        elif line.startswith("{"):
            result = json.loads(line)
    err = client.stderr.read()
    client.wait()
    if result is None:
        raise MeasureError("ws_load %s gave no result (exit %s): %s" % (mode, client.returncode, err[-1000:]))
    result["argv"] = " ".join(argv)
    begin, end = marks.get("window begin"), marks.get("window end")
    result["server_cpu_s"] = end - begin if begin is not None and end is not None else None
    return result


def per_message(cpu_s, count):
    return cpu_s / count * 1e6 if cpu_s is not None and count else None


def measure_load(name, scenario, opts, port, proc):
    secs = ["--seconds", str(opts.seconds), "--warmup", str(opts.warmup)]
    if SCENARIOS[scenario][2] == "echo":
        deflate = ["--deflate"] if scenario == "echo-deflate" else []
        r = ws_load(opts, "echo", port, ["--clients", str(opts.clients), "--size", "64"] + secs + deflate, proc)
        count, r["p50_ms"], r["p99_ms"] = r["messages"], r["latency_us"]["p50"] / 1000, r["latency_us"]["p99"] / 1000
        problems = r["errors"] + r["mismatches"] + r["connect_failed"]
        if deflate and r["deflate_negotiated"] < r["connected"]:
            r["note"] = "deflate negotiated on %d of %d" % (r["deflate_negotiated"], r["connected"])
    else:
        r = ws_load(opts, "broadcast", port, ["--receivers", str(opts.receivers), "--size", "64"] + secs, proc)
        if "error" in r:
            raise MeasureError("%s (%s)" % (r["error"], r.get("connect_error", "")))
        count, r["p50_ms"], r["p99_ms"] = r["deliveries"], r["reach_all_us"]["p50"] / 1000, r["reach_all_us"]["p99"] / 1000
        problems = r["incomplete"] + r["receiver_errors"] + r["sender_errors"] + r["connect_failed"] + r.get("unknown_messages", 0)
    r["cpu_us"] = per_message(r["server_cpu_s"], count)
    r["client_cpu_us"] = per_message(r["client_cpu_s"], count)
    r["problems"] = problems
    return r


def measure_idle(name, scenario, opts, port, proc):
    deflate = ["--deflate"] if scenario == "idle-deflate" else []
    # Warm the app and whatever a first connection loads (the deflate code too), then let it settle.
    ws_load(opts, "idle", port, ["--connections", "20", "--exchange", "--hold-seconds", "0.2"] + deflate)
    time.sleep(1.0)
    pids = rss_pids(proc)
    before = vm_rss_kib(pids)
    n = opts.idle_connections
    argv = [opts.ws_load, "idle", "--port", str(port), "--connections", str(n), "--exchange"] + deflate
    client = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=raise_fd_limit)
    ready = None
    for line in client.stdout:
        if line.startswith("ready "):
            ready = json.loads(line[len("ready "):])
            break
    if ready is None:
        client.kill()
        raise MeasureError("ws_load idle never got ready: %s" % client.stderr.read()[-1000:])
    time.sleep(opts.settle)
    with_conns = vm_rss_kib(pids)
    client.stdin.close()  # ws_load closes the connections and exits
    final = None
    for line in client.stdout:
        if line.startswith("{"):
            final = json.loads(line)
    client.wait(timeout=60)
    open_ = ready["connected"]
    r = dict(ready)
    r.update({"argv": " ".join(argv), "rss_before_kib": before, "rss_with_kib": with_conns, "rss_pids": len(pids),
              "kib_per_conn": (with_conns - before) / open_ if open_ else None,
              "dropped_while_held": final["dropped_while_held"] if final else None})
    r["problems"] = r["connect_failed"] + r["exchange_errors"] + (r["dropped_while_held"] or 0)
    if deflate and r["deflate_negotiated"] < open_:
        r["note"] = "deflate negotiated on %d of %d" % (r["deflate_negotiated"], open_)
    return r


def measure(name, scenario, opts, tmp):
    port = free_port()
    log_path = os.path.join(tmp, "%s-%s.log" % (name, scenario))
    workers = workers_for(scenario, opts)
    proc = start(argv_for(name, opts, port, workers), log_path)
    try:
        wait_ready(proc, port, name, log_path)
        if SCENARIOS[scenario][2] == "idle":
            r = measure_idle(name, scenario, opts, port, proc)
        else:
            r = measure_load(name, scenario, opts, port, proc)
        if proc.poll() is not None:
            raise MeasureError("%s died during the run: %s" % (name, log_tail(log_path)))
        if not r.get("connected"):
            raise MeasureError("no WebSocket connection: %s" % r.get("connect_error"))
    except (MeasureError, OSError, KeyError, ValueError, subprocess.TimeoutExpired) as e:
        return {"error": ("%s: %s" % (type(e).__name__, e))[:2000]}
    finally:
        stop(proc)
    r["workers"] = 1 if name == "daphne" else workers
    r["server_argv"] = " ".join(argv_for(name, opts, port, workers))
    return r


def fmt(x, spec, unit=""):
    return "?" if x is None else (spec % x) + unit


def describe(scenario, r):
    """One server's figures in one round, for the log line."""
    if "error" in r:
        return "FAILED: " + r["error"].splitlines()[0][:200]
    if SCENARIOS[scenario][2] == "idle":
        s = "%s KiB/conn (RSS %.1f -> %.1f MiB, %d open, deflate %d)" % (
            fmt(r["kib_per_conn"], "%.1f"), r["rss_before_kib"] / 1024, r["rss_with_kib"] / 1024, r["connected"],
            r["deflate_negotiated"])
    else:
        rate = r[SCENARIOS[scenario][3]]
        s = "%8.0f %s  p50 %7.2f ms  p99 %7.2f ms  CPU/msg %s server, %s client" % (
            rate, "msg/s" if SCENARIOS[scenario][2] == "echo" else "deliveries/s", r["p50_ms"], r["p99_ms"],
            fmt(r["cpu_us"], "%.1f", " us"), fmt(r["client_cpu_us"], "%.1f", " us"))
    if r.get("problems"):
        s += "  PROBLEMS %d" % r["problems"]
    if r.get("note"):
        s += "  (%s)" % r["note"]
    return s


def median_of(runs, key):
    values = [r[key] for r in runs if "error" not in r and r.get(key) is not None]
    return statistics.median(values) if values else None


def ratios(scenario, runs_a, runs_b):
    key = SCENARIOS[scenario][3]
    out = []
    for a, b in zip(runs_a, runs_b):
        if "error" in a or "error" in b or not a.get(key) or not b.get(key):
            continue
        out.append(a[key] / b[key])
    return out


def summary_rows(results, servers, options):
    """(scenario, what, target, per-server cells, gantry/peer cells) for the text and markdown tables."""
    rows = []
    peers = [s for s in servers if s != "gantry"]
    for scenario, runs in results.items():
        what, target, mode, key, goal = SCENARIOS[scenario]
        what = what % options
        cells = {}
        for name in servers:
            rs = runs.get(name, [])
            if not rs or all("error" in r for r in rs):
                cells[name] = "failed" if rs else "-"
                continue
            good = [r for r in rs if "error" not in r]
            if mode == "idle":
                cell = "%s KiB" % fmt(median_of(rs, key), "%.1f")
            else:
                unit = "msg/s" if mode == "echo" else "deliveries/s"
                cell = "%s %s, p99 %s ms, CPU %s + %s µs/msg" % (
                    fmt(median_of(rs, key), "%.0f"), unit, fmt(median_of(rs, "p99_ms"), "%.2f"),
                    fmt(median_of(rs, "cpu_us"), "%.1f"), fmt(median_of(rs, "client_cpu_us"), "%.1f"))
            if any(r.get("note") for r in good):
                cell += " (%s)" % next(r["note"] for r in good if r.get("note"))
            if any(r.get("problems") for r in good):
                cell += " (problems: %d)" % sum(r.get("problems", 0) for r in good)
            if len(good) < len(rs):
                cell += " (%d of %d rounds failed)" % (len(rs) - len(good), len(rs))
            cells[name] = cell
        ratio_cells = {}
        for peer in peers:
            rs = ratios(scenario, runs.get("gantry", []), runs.get(peer, []))
            ratio_cells[peer] = ("**%.2f×** (%s)" % (statistics.median(rs), ", ".join("%.2f" % x for x in rs))
                                 if rs else "-")
            if rs and peer == "uvicorn" and goal is not None:
                met = statistics.median(rs) >= goal if mode != "idle" else statistics.median(rs) <= goal
                ratio_cells[peer] += " met" if met else " missed"
        rows.append((scenario, what, target, cells, ratio_cells))
    return rows


def print_summary(results, servers, options):
    print("\nsummary (medians over rounds; CPU/msg: server + client):")
    for scenario, what, target, cells, ratio_cells in summary_rows(results, servers, options):
        print("  %s [%s]" % (what, target))
        for name in servers:
            print("    %-8s %s" % (name, cells[name]))
        for peer, cell in ratio_cells.items():
            if "gantry" in servers:
                print("    gantry / %-8s %s" % (peer, cell.replace("**", "")))


def print_markdown(data):
    servers = data["servers"]
    peers = [s for s in servers if s != "gantry"]
    print("%s, %s; load average %s at the start. `%s`" % (data["date"], data["machine"], data["load_before"],
                                                          data["command"]))
    print()
    head = ["scenario", "target"] + (["gantry / %s (per round)" % p for p in peers] if "gantry" in servers else [])
    head += servers
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(" --- " for _ in head) + "|")
    for scenario, what, target, cells, ratio_cells in summary_rows(data["results"], servers, data["options"]):
        line = [what, target] + ([ratio_cells[p] for p in peers] if "gantry" in servers else [])
        line += [cells[s] for s in servers]
        print("| " + " | ".join(line) + " |")
    print()
    print("Versions: %s." % ", ".join("%s %s" % kv for kv in data["versions"].items()))


def versions(opts, servers):
    def out(argv):
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=APP_DIR)
            return (p.stdout or p.stderr).strip().splitlines()[-1]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    v = {"uvicorn": out(["/usr/bin/python3", "-c", "import uvicorn; print(uvicorn.__version__)"]),
         "websockets": out(["/usr/bin/python3", "-c", "import websockets; print(websockets.__version__)"]),
         "daphne": out(["/usr/bin/python3", "-c", "import daphne; print(daphne.__version__)"])}
    if "gantry" in servers:
        v["gantry"] = out([opts.gantry, "--version"])
    return v


def machine_info():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return "%d CPUs (%s), server and ws_load on the same cores" % (os.cpu_count(), model)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gantry", default=str(REPO / "build/release/gantry"))
    ap.add_argument("--ws-load", default=str(REPO / "build/release/bench/ws_load"))
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10, help="measured seconds per echo/broadcast run")
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--workers", type=int, default=2, help="for echo (broadcast and idle: 1)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--receivers", type=int, default=1000)
    ap.add_argument("--idle-connections", type=int, help="default 2000 (--quick: 500)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between ready and reading RSS")
    ap.add_argument("--quick", action="store_true", help="1 round, 3 s, 500 idle connections")
    ap.add_argument("--json-out", help="default: bench/e2e/results/YYYYMMDD-HHMM-ws.json")
    ap.add_argument("--from-json", help="reprint a saved run")
    ap.add_argument("--markdown", action="store_true", help="print the table for docs/benchmarks.md")
    opts = ap.parse_args()
    if opts.from_json:
        data = json.loads(Path(opts.from_json).read_text())
        print_summary(data["results"], data["servers"], data["options"])
        if opts.markdown:
            print()
            print_markdown(data)
        return
    if opts.quick:
        opts.rounds, opts.seconds, opts.warmup = 1, 3, 1
    if opts.idle_connections is None:
        opts.idle_connections = 500 if opts.quick else 2000
    servers = [s for s in opts.servers.split(",") if s]
    scenarios = [s for s in opts.scenarios.split(",") if s]
    for s in servers:
        if s not in SERVERS:
            sys.exit("unknown server %s" % s)
    for s in scenarios:
        if s not in SCENARIOS:
            sys.exit("unknown scenario %s" % s)
    if not os.access(opts.ws_load, os.X_OK):
        sys.exit("%s is missing: cmake -DGANTRY_BENCH=ON, then --target ws_load" % opts.ws_load)
    if "gantry" in servers and not os.access(opts.gantry, os.X_OK):
        sys.exit("%s is missing (or pass --servers uvicorn,daphne)" % opts.gantry)
    raise_fd_limit()
    load_before = open("/proc/loadavg").read().strip()
    print("load before: %s" % load_before)
    print("%d round(s), %g s measured after %g s warm-up; echo on %d workers (daphne: 1 process), broadcast and idle on 1"
          % (opts.rounds, opts.seconds, opts.warmup, opts.workers))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in scenarios:
            runs = {name: [] for name in servers}
            for rnd in range(opts.rounds):
                for name in servers:
                    r = measure(name, scenario, opts, tmp)
                    runs[name].append(r)
                    print("%-12s round %d  %-8s %s  load %s" % (scenario, rnd + 1, name, describe(scenario, r),
                                                              open("/proc/loadavg").read().split()[0]), flush=True)
            results[scenario] = runs
    data = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine_info(),
            "command": " ".join(["/usr/bin/python3", "bench/e2e/ws_compare.py"] + sys.argv[1:]),
            "load_before": load_before.split()[0], "load_after": open("/proc/loadavg").read().split()[0],
            "servers": servers, "versions": versions(opts, servers),
            "options": {k: v for k, v in vars(opts).items() if k not in ("from_json", "markdown")},
            "results": results}
    print_summary(results, servers, data["options"])
    print("load after: %s" % data["load_after"])
    out = Path(opts.json_out or HERE / "results" / time.strftime("%Y%m%d-%H%M-ws.json", time.gmtime()))
    out.write_text(json.dumps(data, indent=1))
    print("saved %s" % out)
    if opts.markdown:
        print()
        print_markdown(data)


if __name__ == "__main__":
    main()
