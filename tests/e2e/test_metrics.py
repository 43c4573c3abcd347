"""Prometheus /metrics on --metrics-bind: the whole server's numbers, parsed by prometheus_client."""
import os
import signal
import time

import pytest
import requests

from conftest import IO_TIMEOUT, free_port, until

parser = pytest.importorskip("prometheus_client.parser")


def _metrics(port):
    r = requests.get("http://127.0.0.1:%d/metrics" % port, timeout=IO_TIMEOUT)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in parser.text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def _wait_for_a_restart(mport, timeout=15):
    """Until the master has replaced a worker (the metrics address may blink meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _metrics(mport)[("gantry_worker_restarts_total", ())] >= 1:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)


def test_metrics_count_every_request_of_every_worker(start_server):
    mport = free_port("127.0.0.1")
    server = start_server("probe:app", "-w", "2", "--metrics-bind", "127.0.0.1:%d" % mport)
    before = _metrics(mport)
    assert before[("gantry_requests_total", (("status", "2xx"),))] == 0
    pids = set()
    session_count = 0
    deadline = time.monotonic() + 20
    while (len(pids) < 2 or session_count < 200) and time.monotonic() < deadline:
        # New connections, so both workers get some (the kernel picks who accepts).
        r = requests.get(server.url + "/pid", timeout=IO_TIMEOUT, headers={"Connection": "close"})
        pids.add(r.json()["pid"])
        session_count += 1
    assert len(pids) == 2, "one worker took every connection"
    assert requests.get(server.url + "/boom", timeout=IO_TIMEOUT).status_code == 500
    # A request is counted once its response is written: the client can read the 500 before the
    # worker has counted it (seen under load).
    def counted():
        m = _metrics(mport)
        return m if m[("gantry_requests_total", (("status", "5xx"),))] else None
    after = until(counted, timeout=IO_TIMEOUT) or _metrics(mport)
    assert after[("gantry_requests_total", (("status", "2xx"),))] == session_count
    assert after[("gantry_requests_total", (("status", "5xx"),))] == 1
    count = after[("gantry_stage_duration_seconds_count", (("stage", "app"),))]
    assert count == session_count + 1
    inf = after[("gantry_stage_duration_seconds_bucket", (("le", "+Inf"), ("stage", "app")))]
    assert inf == count
    assert after[("gantry_stage_duration_seconds_sum", (("stage", "app"),))] > 0
    assert after[("gantry_requests_in_flight", ())] == 0
    # The metrics address answers nothing else and never reaches the app.
    assert requests.get("http://127.0.0.1:%d/pid" % mport, timeout=IO_TIMEOUT).status_code == 404


def test_worker_restarts_are_counted(start_server):
    mport = free_port("127.0.0.1")
    server = start_server("probe:app", "-w", "1", "--metrics-bind", "127.0.0.1:%d" % mport)
    pid = requests.get(server.url + "/pid", timeout=IO_TIMEOUT).json()["pid"]
    os.kill(pid, signal.SIGKILL)
    _wait_for_a_restart(mport)
    assert _metrics(mport)[("gantry_worker_restarts_total", ())] == 1


def test_in_flight_requests_of_a_killed_worker_are_forgotten(start_server):
    import threading

    mport = free_port("127.0.0.1")
    server = start_server("probe:app", "-w", "1", "--metrics-bind", "127.0.0.1:%d" % mport)
    pid = requests.get(server.url + "/pid", timeout=IO_TIMEOUT).json()["pid"]

    def slow():
        try:
            requests.get(server.url + "/sleep?s=5", timeout=IO_TIMEOUT + 5)
        except requests.RequestException:
            pass  # the worker is killed under it

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while _metrics(mport)[("gantry_requests_in_flight", ())] != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _metrics(mport)[("gantry_requests_in_flight", ())] == 1
    os.kill(pid, signal.SIGKILL)
    _wait_for_a_restart(mport)
    assert _metrics(mport)[("gantry_requests_in_flight", ())] == 0
    t.join(timeout=IO_TIMEOUT + 5)
