"""Checks of the harness itself: process cleanup, wrk parsing, the arithmetic of the verdicts.

    /usr/bin/python3 -m pytest -q bench/e2e/test_compare.py
"""

import http.server
import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_stop_kills_master_and_workers_that_ignore_term(tmp_path):
    # A "master" with two "workers" that ignore SIGTERM: stop() must still leave nothing behind.
    prog = ("import os, signal, subprocess, sys, time\n"
            "kids = [subprocess.Popen([sys.executable, '-c', "
            "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])"
            " for _ in range(2)]\n"
            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
            "time.sleep(60)\n")
    s = compare.Server("fake", [sys.executable, "-c", prog], tmp_path)
    s.start()
    try:
        deadline = time.monotonic() + 10
        kids = []
        while len(kids) < 2 and time.monotonic() < deadline:
            kids = compare.worker_pids(s.proc.pid)
            time.sleep(0.05)
        assert len(kids) == 2
        assert all(compare.vm_rss_kib(k) > 0 for k in kids)
    finally:
        s.stop()
    assert s not in compare._running
    time.sleep(0.2)
    assert not [k for k in kids if alive(k)]


def test_wait_ready_reports_a_server_that_exits(tmp_path):
    s = compare.Server("broken",
                       [sys.executable, "-c", "print('no app here'); raise SystemExit(3)"],
                       tmp_path)
    s.start()
    try:
        with pytest.raises(compare.BenchError, match="(?s)exited with status 3.*no app here"):
            s.wait_ready(compare.free_port(), compare.APPS["hello"], timeout=10)
    finally:
        s.stop()


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args):
        pass


def test_run_wrk_parses_a_real_run(tmp_path):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    lua = tmp_path / "report.lua"
    lua.write_text(compare.WRK_LUA)
    opts = types.SimpleNamespace(lua_path=str(lua))
    try:
        base = "http://127.0.0.1:%d" % srv.server_address[1]
        ok = compare.run_wrk(opts, base + "/", 1, 2, 1, None)
        bad = compare.run_wrk(opts, base + "/missing", 1, 1, 1, None)
    finally:
        srv.shutdown()
    assert ok["requests"] > 0 and ok["error_count"] == 0
    assert 0 < ok["latency_us"]["p50"] <= ok["latency_us"]["p99"] <= ok["latency_us"]["max"]
    assert ok["rps"] == pytest.approx(ok["requests"] / (ok["duration_us"] / 1e6))
    # Non-2xx answers count as errors, so a misrouted server cannot pass as fast.
    assert bad["errors"]["status"] == bad["requests"] > 0


def wrk_sample(rps, p50, p99, mean, cpu_us=None):
    return {"rps": rps, "error_count": 0, "load1": 1.0, "cpu_us_per_req": cpu_us,
            "latency_us": {"p50": p50, "p90": p99, "p99": p99, "mean": mean}}


def scenario(key):
    return next(s for s in compare.SCENARIOS if s.key == key)


def test_medians_ratios_and_verdicts():
    samples = {compare.GANTRY: [wrk_sample(r, 100, 900, 110) for r in (3900, 4100, 9000)],
               compare.SYNC: [wrk_sample(r, 300, 1000, 310) for r in (1000, 900, 5000)]}
    res = compare.summarize(scenario("a"), samples, [])
    assert res["rows"][compare.GANTRY]["rps"] == 4100   # median, not mean
    assert res["rows"][compare.SYNC]["rps"] == 1000
    assert res["verdict"] is True                        # 4.1x >= 4x
    samples[compare.GANTRY] = [wrk_sample(3900, 100, 900, 110)]
    assert compare.summarize(scenario("a"), samples, [])["verdict"] is False
    # Fast enough but with errors (resets, 5xx) is not a pass either.
    bad = wrk_sample(9000, 100, 900, 110)
    bad["error_count"] = 3
    samples[compare.GANTRY] = [bad]
    assert compare.summarize(scenario("a"), samples, [])["verdict"] is False

    # b: fast enough but a worse p99 fails.
    samples = {compare.GANTRY: [wrk_sample(1400, 100, 1200, 110)],
               compare.SYNC: [wrk_sample(1000, 300, 1000, 310)]}
    assert compare.summarize(scenario("b"), samples, [])["verdict"] is False

    # c and d against the floor: 1000 calls/s = 1000 us per call.
    floor = [{"calls_per_s": 1000.0, "us_per_call": 1000.0, "load1": 1.0,
              "cpu_us_per_call": 800.0}]
    samples = {compare.GANTRY: [wrk_sample(900, 1010, 1100, 1015, cpu_us=c)
                                for c in (1000.0, None, 1100.0, 900.0)]}
    res = compare.summarize(scenario("c"), samples, floor)
    assert res["rows"][compare.GANTRY]["pct_floor"] == pytest.approx(90.0)
    # Unmeasured CPU samples are skipped: median of 900, 1000, 1100.
    assert res["rows"][compare.GANTRY]["cpu_us"] == pytest.approx(1000.0)
    assert res["rows"][compare.GANTRY]["cpu_pct_floor"] == pytest.approx(80.0)
    assert res["verdict"] is True
    res = compare.summarize(scenario("d"), samples, floor)
    assert res["rows"][compare.GANTRY]["own_cost_p50_us"] == pytest.approx(10.0)
    assert res["rows"][compare.GANTRY]["own_cost_mean_us"] == pytest.approx(15.0)
    assert res["verdict"] is True
    # d is judged on p50: a mean dragged up by preemption alone does not fail it, p50 does.
    samples = {compare.GANTRY: [wrk_sample(900, 1020, 1100, 1500)]}
    assert compare.summarize(scenario("d"), samples, floor)["verdict"] is True
    samples = {compare.GANTRY: [wrk_sample(900, 1021, 1100, 1015)]}
    assert compare.summarize(scenario("d"), samples, floor)["verdict"] is False

    # The libpython.so floor is shown relative to the ordinary floor and never judged.
    floor_so = [{"calls_per_s": 800.0, "us_per_call": 1250.0, "load1": 1.0,
                 "cpu_us_per_call": 1000.0}]
    res = compare.summarize(scenario("d"), samples, floor, floor_so)
    assert res["verdict"] is False
    head, body = compare.table_rows(res, compare.GANTRY)
    so = dict(zip(head, next(l for l in body if l[0] == compare.PYFLOOR_SO)))
    assert (so["% of floor"], so["CPU % of floor"], so["p50 - floor (us)"]) == \
        ("80%", "80%", "250.0")

    # Without gantry there is no verdict, only the peers' numbers.
    samples = {compare.SYNC: [wrk_sample(1000, 300, 1000, 310)]}
    assert compare.summarize(scenario("a"), samples, [])["verdict"] is None


def test_rss_verdict():
    rss = lambda w: {"worker_mib": w, "master_mib": 20.0, "note": ""}
    samples = {compare.GANTRY: [rss(55.0)], compare.SYNC: [rss(45.0)]}
    assert compare.summarize(scenario("e"), samples, [])["verdict"] is True
    samples[compare.GANTRY] = [rss(55.5)]
    assert compare.summarize(scenario("e"), samples, [])["verdict"] is False


def test_refuses_to_run_without_the_gantry_binary(capsys, tmp_path):
    assert compare.main(["--gantry", str(tmp_path / "gantry"), "--quick"]) == 2
    assert "gantry binary not found" in capsys.readouterr().err


def test_check_pinned_sees_a_thread_that_escaped(tmp_path):
    # A master whose worker moves itself off the CPU it was started on.
    prog = ("import os, subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', "
            "'import os, time; os.sched_setaffinity(0, {0, 1}); time.sleep(60)'])\n"
            "time.sleep(60)\n")
    s = compare.Server("escaper", ["taskset", "-c", "0", sys.executable, "-c", prog], tmp_path)
    s.start()
    try:
        deadline = time.monotonic() + 10
        while not compare.worker_pids(s.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)   # let the child reach its sched_setaffinity
        with pytest.raises(compare.BenchError, match="may run on CPUs \\[0, 1\\]"):
            compare.check_pinned(s, 0)
    finally:
        s.stop()
    # Pinned and staying pinned passes.
    s = compare.Server("pinned", ["taskset", "-c", "0", "sleep", "30"], tmp_path)
    s.start()
    try:
        time.sleep(0.2)
        compare.check_pinned(s, 0)
    finally:
        s.stop()


def test_cpu_seconds_counts_a_busy_process_and_notices_one_gone():
    busy = subprocess.Popen([sys.executable, "-c",
                             "import sys, time\nsys.stdin.readline()\nt = time.process_time()\n"
                             "while time.process_time() - t < 0.4: pass\n"
                             "print('done', flush=True)\ntime.sleep(30)"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        start = compare.cpu_seconds([busy.pid])
        busy.stdin.write("go\n")
        busy.stdin.flush()
        assert busy.stdout.readline() == "done\n"
        used = compare.cpu_seconds([busy.pid]) - start
        assert 0.35 <= used <= 0.6
    finally:
        busy.kill()
        busy.wait()
    assert compare.cpu_seconds([busy.pid]) is None


def test_shared_python_is_linked_to_libpython_and_sees_django(tmp_path):
    shared, why = compare.build_shared_python(str(tmp_path))
    assert shared, why
    exe, home = shared
    libs = subprocess.run(["ldd", exe], capture_output=True, text=True, check=True).stdout
    assert "libpython3" in libs
    env = dict(compare.clean_env(), PYTHONHOME=home)
    out = subprocess.run([exe, "-c", "import django; print(django.get_version())"],
                         capture_output=True, text=True, env=env, check=True)
    assert out.stdout.startswith("3.2")
