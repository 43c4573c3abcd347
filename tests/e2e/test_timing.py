"""Per-stage timing: Server-Timing for allowed clients only, the JSON access log, %(timing)s."""
import json
import re
import time

import pytest
import requests

from conftest import IO_TIMEOUT, raw


def _server_timing(server, source=None, headers=b""):
    conn = raw(server, source=source)
    conn.send(b"GET /environ HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n")
    r = conn.response()
    conn.close()
    assert r.status == 200
    return r.getheader("Server-Timing")


def test_server_timing_sent_to_loopback(start_server):
    server = start_server("probe:app", "--server-timing")
    value = _server_timing(server)
    assert value is not None
    # W3C syntax: name;dur=ms entries, comma-separated; the app and the wait for Python are there.
    entries = dict(re.findall(r"([\w.-]+);dur=([0-9.]+)", value))
    assert "app" in entries and "python-wait" in entries and "mw-timing" in entries
    assert float(entries["app"]) > 0


def test_server_timing_absent_for_a_client_outside_the_allow_list(start_server):
    server = start_server("probe:app", "--server-timing", "--timing-allow-ips", "127.0.0.1")
    assert _server_timing(server) is not None
    assert _server_timing(server, source=("127.0.0.2", 0)) is None


def test_server_timing_absent_for_a_forwarded_client(start_server):
    server = start_server("probe:app", "--server-timing", "--forwarded-allow-ips", "127.0.0.1")
    assert _server_timing(server, headers=b"X-Forwarded-For: 203.0.113.9\r\n") is None


def test_server_timing_off_by_default(start_server):
    server = start_server("probe:app")
    assert _server_timing(server) is None


def test_json_access_log_stages_add_up_to_no_more_than_the_total(start_server, tmp_path):
    log = tmp_path / "access.jsonl"
    server = start_server("probe:app", "--access-log-json", str(log))
    for path in ("/environ", "/stream?n=3&delay=0.01", "/sleep?s=0.05"):
        assert requests.get(server.url + path, timeout=IO_TIMEOUT).status_code == 200
    deadline = time.monotonic() + IO_TIMEOUT
    records = []
    while time.monotonic() < deadline:
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
        if len(records) >= 3:
            break
        time.sleep(0.05)
    assert len(records) >= 3
    by_path = {r["path"]: r for r in records}
    assert by_path["/sleep"]["stages"]["app_us"] >= 50_000
    for r in records:
        stages = r["stages"]
        for key in ("python_wait_us", "app_us", "write_us", "mw.timing.request_us", "mw.timing.response_us"):
            assert key in stages and stages[key] >= 0, (key, r)
        assert sum(stages.values()) <= r["total_us"] + 1.0, r
        assert r["status"] == 200 and r["method"] == "GET" and r["remote"] == "127.0.0.1"


def test_timing_atom_in_the_access_log(start_server):
    server = start_server("probe:app", "--access-logfile", "-", "--access-logformat", "%(U)s %(timing)s")
    assert requests.get(server.url + "/environ", timeout=IO_TIMEOUT).status_code == 200
    # The default chain is timing,static, but static with nothing to serve leaves it.
    m = server.wait_for_output(r"/environ mw-timing=[0-9.]+ms python-wait=[0-9.]+ms app=[0-9.]+ms "
                               r"write=[0-9.]+ms total=[0-9.]+ms", stream="stdout")
    assert m


def test_unknown_middleware_is_a_start_up_error(start_server):
    server = start_server("probe:app", "--middleware", "timing,nonesuch", wait=False)
    assert server.wait(timeout=IO_TIMEOUT) != 0
    assert "unknown middleware 'nonesuch'" in server.stderr()
