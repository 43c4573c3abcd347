"""Production limits against the real binary: --timeout (504, the stuck stack in the error log, the
worker replaced), --max-requests(-jitter), --max-worker-memory, --max-queue (503 + Retry-After)
and the native health endpoint."""
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import IO_TIMEOUT, SANITIZE


def get(server, path, timeout=IO_TIMEOUT):
    status, headers, body = server.get(path, timeout=timeout)
    return status, headers, body


def pid_of(server):
    return server.get_json("/pid")["pid"]


@pytest.mark.parametrize("view,frame", [("/sleep?s=20", "sleep_view"), ("/spin?s=20", "spin_in_python")])
def test_a_request_over_timeout_gets_504_and_its_stack_is_logged(start_server, view, frame):
    s = start_server("probe:app", "--timeout", "1", "--threads", "2", workers=1)
    before = pid_of(s)
    start = time.monotonic()
    status, _, body = get(s, view, timeout=30)
    took = time.monotonic() - start
    assert status == 504, body
    assert took < (10 if SANITIZE else 4)  # about the timeout, not the 20 s the view wanted
    m = s.wait_for_output(r"WORKER TIMEOUT \(pid:%d\): GET %s ran [0-9.]+ s" % (before, re.escape(view)))
    assert m
    s.wait_for_output(r'File ".*probe\.py", line \d+ in %s' % frame)
    # The worker is replaced and the server serves again.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if pid_of(s) != before:
                break
        except OSError:
            pass
        time.sleep(0.2)
    assert pid_of(s) != before


def test_other_requests_of_a_timed_out_worker_finish(start_server):
    s = start_server("probe:app", "--timeout", "2", "--threads", "2", workers=1)
    with ThreadPoolExecutor(max_workers=2) as pool:
        stuck = pool.submit(get, s, "/sleep?s=20", 30)
        time.sleep(0.3)
        fine = pool.submit(get, s, "/sleep?s=1.5", 30)  # in flight when the other times out
        assert stuck.result()[0] == 504
        assert fine.result()[0] == 200


def test_max_requests_recycles_without_failing_a_request(start_server):
    s = start_server("probe:app", "--max-requests", "5", "--max-requests-jitter", "3", workers=1)
    pids = set()
    for _ in range(30):
        status, _, body = get(s, "/pid", timeout=30)
        assert status == 200
        pids.add(__import__("json").loads(body)["pid"])
    assert len(pids) >= 3  # recycled every 5..8 requests
    assert s.wait_for_output(r"Autorestarting worker after \d+ requests")


def test_max_worker_memory_recycles_a_leaking_worker(start_server):
    s = start_server("probe:app", "--max-worker-memory", "80", workers=1)
    first = pid_of(s)
    for _ in range(2):
        assert get(s, "/hog?mb=50", timeout=30)[0] == 200
    s.wait_for_output(r"uses \d+ MB of private memory, over --max-worker-memory 80 MB")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and pid_of(s) == first:
        time.sleep(0.2)
    assert pid_of(s) != first


def test_overload_gets_a_quick_503_with_retry_after(start_server):
    s = start_server("probe:app", "--max-queue", "2", "--threads", "1", workers=1)
    with ThreadPoolExecutor(max_workers=8) as pool:
        # The first request is running in the Python thread before the others arrive (sent
        # together, a slow machine could still have it queued when the third one is counted).
        first = pool.submit(get, s, "/sleep?s=3", 30)
        time.sleep(1.0)
        others = list(pool.map(lambda _: get(s, "/sleep?s=1", 30), range(7)))
        results = [first.result()] + others
    statuses = sorted(r[0] for r in results)
    assert results[0][0] == 200
    # One running, two waiting (--max-queue 2), the rest refused at once.
    assert statuses.count(200) == 3 and statuses.count(503) == 5, statuses
    refused = [r for r in results if r[0] == 503]
    assert all(r[1]["retry-after"] == "1" for r in refused)


def test_health_endpoint_is_native(start_server):
    s = start_server("probe:app", "--health-path", "/healthz", "--access-logfile", "-", workers=1)
    status, headers, body = get(s, "/healthz")
    assert status == 200 and body == b"ok\n" and headers["cache-control"] == "no-store"
    status, _, body = get(s, "/healthz/ready?verbose=1")
    assert status == 200 and body == b"ok\n"
    status, _, body = get(s, "/healthz/other")
    assert body.startswith(b"probe GET /healthz/other")  # anything else is the app's
