"""The process model: prefork workers, worker replacement, graceful and quick shutdown, --preload,
and a clean exit when the app cannot be imported."""
import os
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import START_TIMEOUT


def pids_seen(server, requests=4, sleep=0.2):
    """Worker pids answering `requests` concurrent slow /pid calls: with one thread per worker,
    concurrency forces every worker to take some of them."""
    with ThreadPoolExecutor(max_workers=requests) as pool:
        results = list(pool.map(lambda _: server.get_json("/pid?sleep=%s" % sleep, timeout=15), range(requests)))
    return {r["pid"] for r in results}, results


def test_two_workers_two_pids(start_server):
    s = start_server("probe:app", workers=2)
    seen = set()
    # Which worker accepts is up to the kernel: a few bounded rounds until both have answered.
    for _ in range(10):
        pids, results = pids_seen(s)
        seen |= pids
        if len(seen) >= 2:
            break
    assert len(seen) == 2, seen
    assert s.pid not in seen                      # the master does not serve requests
    assert all(r["ppid"] == s.pid for r in results)  # workers are the master's children


def test_killed_worker_is_replaced(start_server):
    s = start_server("probe:app", workers=2)
    before, _ = pids_seen(s)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    replaced = set()
    while time.monotonic() < deadline:
        now, _ = pids_seen(s, requests=4, sleep=0.2)
        assert victim not in now
        replaced = now - before
        if replaced:
            break
    assert replaced, "no replacement worker within 10 s\n" + s.log()
    assert s.proc.poll() is None
    # The error log says which worker died and by which signal.
    m = s.wait_for_output(r"(?i)%d.*(signal 9|SIGKILL|killed)|(signal 9|SIGKILL).*%d" % (victim, victim), timeout=3)
    assert m, s.log()
    s.assert_serving()


def test_sigterm_drains_in_flight_requests(start_server):
    s = start_server("probe:app", "--threads", "5")
    with ThreadPoolExecutor(max_workers=5) as pool:
        futures = [pool.submit(s.get, "/sleep?s=1", timeout=15) for _ in range(5)]
        time.sleep(0.4)       # all five are inside the app now
        t0 = time.monotonic()
        s.send(signal.SIGTERM)
        results = [f.result() for f in futures]
    assert [r[0] for r in results] == [200] * 5, [r[:1] for r in results]
    assert all(r[2] == b"slept 1.0\n" for r in results)
    assert s.wait(timeout=15) == 0, s.log()
    assert time.monotonic() - t0 < 10


def test_sigterm_idle_server_exits_zero(start_server):
    s = start_server("probe:app", workers=2)
    s.assert_serving()
    s.send(signal.SIGTERM)
    assert s.wait(timeout=10) == 0, s.log()
    assert not s.leftovers(), s.log()


def test_sigquit_exits_promptly(start_server):
    s = start_server("probe:app", "--graceful-timeout", "30", workers=2)
    s.assert_serving()
    t0 = time.monotonic()
    s.send(signal.SIGQUIT)
    s.wait(timeout=10)
    assert time.monotonic() - t0 < 5, s.log()
    assert not s.leftovers(), s.log()


def test_preload_imports_app_in_master(start_server):
    s = start_server("probe:app", "--preload", workers=2)
    info = s.get_json("/pid")
    # Imported once, by the master, before forking: the worker inherits the module.
    assert info["import_pid"] == s.pid
    assert info["pid"] != s.pid


def test_without_preload_workers_import_app(start_server):
    s = start_server("probe:app", workers=1)
    info = s.get_json("/pid")
    assert info["import_pid"] == info["pid"] != s.pid


def test_broken_import_exits_nonzero_with_traceback(start_server):
    s = start_server("broken_import:app", wait=False)
    try:
        code = s.wait(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("server still running with an unimportable app\n" + s.log(), pytrace=False)
    assert code != 0
    err = s.stderr()
    assert "Traceback" in err, s.log()
    assert "broken_import fixture: deliberate import-time failure" in err
    # Reported, not retried in a loop: the traceback shows up a bounded number of times.
    assert len(re.findall(r"deliberate import-time failure", err)) <= 4, s.log()


def test_missing_callable_exits_nonzero(start_server):
    s = start_server("probe:no_such_app", wait=False)
    code = s.wait(timeout=START_TIMEOUT)
    assert code != 0
    assert "no_such_app" in s.stderr(), s.log()
