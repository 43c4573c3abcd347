#!/usr/bin/python3
"""Static files: gantry against nginx and whitenoise under gunicorn, with wrk, same files, same run.

Generates the files in a temp dir (a ~60 KB CSS with .gz/.br/.zst variants written by
`gantry compress-static`, and a 1 MB binary), writes an nginx config there (sendfile on,
gzip_static on, 2 workers, access_log off), and measures, alternating server by server:

  css  GET /static/site.css with Accept-Encoding: gzip (each server sends the .gz file)
  bin  GET /static/big.bin without Accept-Encoding (1 MB, sendfile)

    /usr/bin/python3 bench/e2e/static_compare.py                # 3 rounds x 10 s, ~4 min
    /usr/bin/python3 bench/e2e/static_compare.py --rounds 1 --duration 3
    /usr/bin/python3 bench/e2e/static_compare.py --markdown

Servers: nginx (Debian's nginx-light, -c <conf> -p <dir>), gantry (-w 2, the static middleware
in its default chain, a trivial WSGI app behind it), whitenoise (gunicorn -w 2, sync worker,
WhiteNoise(app, root=...)). wrk -t2 -c64; wrk shares the machine's 2 cores with every server
alike. Reports the median req/s over rounds and the ratios gantry/nginx and gantry/whitenoise.
Stdlib only.
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
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
PYTHON = "/usr/bin/python3"

WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,' ..
    '"socket_errors":%d,"p50_us":%d,"p99_us":%d}\n', summary.requests, summary.duration, summary.bytes,
    e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""

NGINX_CONF = """
worker_processes 2;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush on;
  gzip_static on;
  keepalive_requests 1000000;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location /static/ {{ alias {root}/; }}
  }}
}}
"""

HELLO_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app"]
"""

WHITENOISE_APP = """
from whitenoise import WhiteNoise
from hello import app as _app
application = WhiteNoise(_app, root=%r, prefix="/static/")
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_css(size):
    """CSS-like text that compresses as real stylesheets do (~4-6x), deterministic."""
    rnd = random.Random(42)
    props = ["color", "margin", "padding", "border", "display", "font-size", "line-height", "background",
             "width", "height", "flex", "grid-template-columns", "transition", "box-shadow", "z-index"]
    out = []
    n = 0
    while n < size:
        sel = ".%s-%d %s" % (rnd.choice(["btn", "card", "nav", "hero", "list", "form", "grid", "modal"]),
                             rnd.randrange(400), rnd.choice(["", "> a", ":hover", "::before", "li"]))
        body = "".join("  %s: %s;\n" % (rnd.choice(props), rnd.choice(
            ["#%06x" % rnd.randrange(1 << 24), "%dpx" % rnd.randrange(64), "0 auto", "flex", "1fr 2fr",
             "all .2s ease-in-out", "rgba(0,0,0,.%d)" % rnd.randrange(10), "%d" % rnd.randrange(100)]))
                       for _ in range(rnd.randrange(2, 7)))
        rule = "%s {\n%s}\n" % (sel, body)
        out.append(rule)
        n += len(rule)
    return "".join(out)[:size].encode()


class Proc:
    def __init__(self, name, argv, cwd, logdir, env=None):
        self.name, self.argv = name, argv
        self.log = open(os.path.join(logdir, name + ".log"), "wb")
        self.p = subprocess.Popen(argv, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True, env=env)

    def stop(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        self.log.close()


def wait_ready(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            raise SystemExit("%s exited (%s); see its log" % (proc.name, proc.p.returncode))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("%s did not start" % proc.name)


def tree_pids(root):
    """The process and its descendants (nginx and gunicorn fork workers; gantry too)."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return pids


def cpu_seconds(pids):
    """utime + stime of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def check(port, path, headers, want_body, want_encoding):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    body = r.read()
    c.close()
    enc = r.getheader("Content-Encoding")
    if r.status != 200 or body != want_body or enc != want_encoding:
        raise SystemExit("port %d %s: status %d, %d bytes, Content-Encoding %r (want %d bytes, %r)"
                         % (port, path, r.status, len(body), enc, len(want_body), want_encoding))


def run_wrk(url, headers, seconds, threads, connections, lua):
    argv = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "-s", lua]
    for h in headers:
        argv += ["-H", h]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"WRKJSON (\{.*\})", out.stdout)
    if not m:
        raise SystemExit("wrk failed:\n%s\n%s" % (out.stdout, out.stderr))
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gantry", default=str(REPO / "build/release/gantry"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--servers", default="nginx,gantry,whitenoise")
    ap.add_argument("--scenarios", default="css,bin")
    ap.add_argument("--gantry-args", default="", help="extra gantry flags, e.g. '--timing off'")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json", help="write the raw results here")
    opts = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="gantry-static-bench-"))
    tmp.chmod(0o755)  # nginx workers run as www-data when started by root
    root = tmp / "static"
    root.mkdir()
    (root / "site.css").write_bytes(make_css(60 * 1024))
    (root / "big.bin").write_bytes(random.Random(7).randbytes(1 << 20))
    subprocess.run([opts.gantry, "compress-static", str(root)], check=True, stdout=subprocess.DEVNULL)
    css_gz = (root / "site.css.gz").read_bytes()
    big = (root / "big.bin").read_bytes()
    (tmp / "hello.py").write_text(HELLO_APP)
    (tmp / "wn.py").write_text(WHITENOISE_APP % str(root))
    (tmp / "wrk.lua").write_text(WRK_LUA)
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / d).mkdir()

    scenarios = {
        "css": ("/static/site.css", ["Accept-Encoding: gzip"], css_gz, "gzip"),
        "bin": ("/static/big.bin", [], big, None),
    }
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}

    def start(name):
        port = free_port()
        if name == "nginx":
            conf = tmp / ("nginx-%d.conf" % port)
            conf.write_text(NGINX_CONF.format(dir=tmp, port=port, root=root))
            p = Proc(name, ["nginx", "-c", str(conf), "-p", str(tmp)], tmp, tmp, env)
        elif name == "gantry":
            p = Proc(name, [opts.gantry, "-w", "2", "-b", "127.0.0.1:%d" % port, "--static", "/static/=%s" % root]
                     + opts.gantry_args.split() + ["hello:app"], tmp, tmp, env)
        elif name == "whitenoise":
            p = Proc(name, ["gunicorn", "-w", "2", "-b", "127.0.0.1:%d" % port, "--log-level", "warning",
                            "wn:application"], tmp, tmp, env)
        else:
            raise SystemExit("unknown server " + name)
        wait_ready(port, p)
        return p, port

    servers = opts.servers.split(",")
    results = {s: {n: [] for n in servers} for s in opts.scenarios.split(",")}
    load_before = os.getloadavg()
    try:
        for rnd in range(opts.rounds):
            for sc, by_server in results.items():
                path, headers, want, enc = scenarios[sc]
                for name in servers:
                    proc, port = start(name)
                    try:
                        hdrs = dict(h.split(": ", 1) for h in headers)
                        check(port, path, hdrs, want, enc)
                        url = "http://127.0.0.1:%d%s" % (port, path)
                        run_wrk(url, headers, opts.warmup, opts.threads, opts.connections, str(tmp / "wrk.lua"))
                        # Server CPU per request: steadier than req/s when a neighbour loads the machine.
                        pids = tree_pids(proc.p.pid)
                        cpu_before = cpu_seconds(pids)
                        r = run_wrk(url, headers, opts.duration, opts.threads, opts.connections, str(tmp / "wrk.lua"))
                        r["cpu_us_per_request"] = (cpu_seconds(pids) - cpu_before) / max(1, r["requests"]) * 1e6
                    finally:
                        proc.stop()
                    if r["status_errors"]:
                        raise SystemExit("%s %s: %d non-2xx answers" % (name, sc, r["status_errors"]))
                    by_server[name].append(r)
                    print("round %d %-4s %-10s %9.0f req/s  p50 %6d us  p99 %6d us  server CPU %7.1f us/request  socket errors %d"
                          % (rnd + 1, sc, name, r["rps"], r["p50_us"], r["p99_us"], r["cpu_us_per_request"],
                             r["socket_errors"]), flush=True)
    finally:
        load_after = os.getloadavg()
        shutil.rmtree(tmp, ignore_errors=True)

    print("\nload average before %.2f, after %.2f (2 cores)" % (load_before[0], load_after[0]))
    rows = []
    for sc, by_server in results.items():
        med = {n: statistics.median(r["rps"] for r in rs) for n, rs in by_server.items() if rs}
        cpu = {n: statistics.median(r["cpu_us_per_request"] for r in rs) for n, rs in by_server.items() if rs}
        row = {"scenario": sc, **{n: round(v) for n, v in med.items()},
               **{n + "_cpu_us": round(v, 1) for n, v in cpu.items()}}
        if "gantry" in med and "nginx" in med:
            row["gantry/nginx"] = med["gantry"] / med["nginx"]
        if "gantry" in med and "whitenoise" in med:
            row["gantry/whitenoise"] = med["gantry"] / med["whitenoise"]
        rows.append(row)
    if opts.markdown:
        print("\n| file | nginx req/s | gantry req/s | whitenoise req/s | gantry/nginx | gantry/whitenoise "
              "| server CPU µs/request: nginx / gantry / whitenoise |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            print("| %s | %s | %s | %s | %s | %s | %s / %s / %s |" % (
                r["scenario"], r.get("nginx", "-"), r.get("gantry", "-"), r.get("whitenoise", "-"),
                "%.2f" % r["gantry/nginx"] if "gantry/nginx" in r else "-",
                "%.1f" % r["gantry/whitenoise"] if "gantry/whitenoise" in r else "-",
                r.get("nginx_cpu_us", "-"), r.get("gantry_cpu_us", "-"), r.get("whitenoise_cpu_us", "-")))
    else:
        for r in rows:
            print(json.dumps(r))
    if opts.json:
        Path(opts.json).write_text(json.dumps({"rows": rows, "runs": results, "load": [load_before, load_after]}, indent=1))


if __name__ == "__main__":
    main()
