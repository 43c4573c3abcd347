"""ASGI under the production flags, against the real binary: --timeout cancels the overdue task
(504, its coroutine stack in the error log, the worker goes on) unless the loop itself is
blocked (the worker is replaced), --loop-block-warn logs a blocked event loop once per episode
with its stack, and the process model runs the lifespan shutdown wherever a worker ends:
--max-requests, HUP, TERM, --max-worker-memory. --max-queue answers 503 as for WSGI."""
import re
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import IO_TIMEOUT, START_TIMEOUT, raw, until

APP = "asgi_probe:app"


def pid_of(server):
    return server.get_json("/pid")["pid"]


def started_in_background(server, path, timeout=30):
    """GET `path` on a thread of its own; returns a future of (status, headers, body)."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(server.get, path, None, timeout)
    pool.shutdown(wait=False)
    return future


def lifespan_lines(log, word):
    """The pids of the `word` lines ("startup", "shutdown", "slept") of ASGI_PROBE_LOG."""
    if not log.exists():
        return []
    return [int(line.split()[1]) for line in log.read_text().splitlines() if line.split()[0] == word]


# ---- --timeout ---------------------------------------------------------------------------------

def test_timeout_cancels_the_task_logs_its_stack_and_the_worker_goes_on(start_server, tmp_path):
    s = start_server(APP, "--timeout", "2", workers=1)
    before = pid_of(s)
    entered, done = tmp_path / "entered", tmp_path / "done"
    hung = started_in_background(s, "/hang?note=%s&done=%s" % (entered, done))
    until(entered.exists, timeout=IO_TIMEOUT)
    # Meanwhile the loop serves others: the hung task only awaits.
    assert s.get("/sleep?s=0.1")[0] == 200
    status, _, body = hung.result()
    assert status == 504, body
    # The cancel reached the coroutine: its finally ran.
    until(lambda: done.exists() and done.read_text() == "finally ran", timeout=IO_TIMEOUT)
    m = s.wait_for_output(r"Request timeout: GET /hang\S* ran [0-9.]+ s, over --timeout 2 s: its task is cancelled")
    assert m, s.log()
    stack = s.stderr()[m.end():]
    assert re.search(r'File ".*asgi_probe\.py", line \d+, in hang_route\n\s+await asyncio\.sleep', stack), s.log()
    # No worker restart for an ASGI timeout.
    assert pid_of(s) == before
    s.stop()  # the worker's log is written asynchronously: whole once it has exited
    log = s.stderr()
    # Logged once, as a timeout: the CancelledError that ended the task is no app error.
    assert "CancelledError" not in log and "Error handling request" not in log, log
    assert "WORKER TIMEOUT" not in log and log.count("Booting worker") == 1, log


def test_timeout_after_the_head_went_out_closes_the_connection(start_server, tmp_path):
    s = start_server(APP, "--timeout", "2", workers=1)
    done = tmp_path / "done"
    with raw(s, timeout=30) as conn:
        conn.send(b"GET /hang?started=1&done=%s HTTP/1.1\r\nHost: x\r\n\r\n" % str(done).encode())
        data = conn.read_until_close()
    assert data.startswith(b"HTTP/1.1 200") and b"first part\n" in data
    assert not data.endswith(b"0\r\n\r\n")  # no last chunk: the client knows the body was cut
    until(lambda: done.exists() and done.read_text() == "finally ran", timeout=IO_TIMEOUT)
    assert s.wait_for_output(r"Request timeout: GET /hang")
    s.assert_serving()


def test_a_loop_blocked_past_the_timeout_replaces_the_worker(start_server, tmp_path):
    # Synchronous code holds the loop: no cancel can run there, so the worker goes, as for WSGI.
    s = start_server(APP, "--timeout", "2", "--graceful-timeout", "5", workers=1)
    before = pid_of(s)
    status, _, _ = s.get("/block?s=30", timeout=30)
    assert status == 504
    m = s.wait_for_output(r"WORKER TIMEOUT \(pid:%d\): GET /block\?s=30 ran [0-9.]+ s; the ASGI event loop has "
                          r"been blocked for \d+ ms" % before)
    assert m, s.log()
    assert s.wait_for_output(r'File ".*asgi_probe\.py", line \d+ in block_route')
    assert until(lambda: _pid_or_none(s) not in (None, before), timeout=START_TIMEOUT + 10)


def _pid_or_none(server):
    try:
        return pid_of(server)
    except OSError:
        return None


# ---- --loop-block-warn -------------------------------------------------------------------------

@pytest.mark.parametrize("how,frame", [("sleep", "block_route"), ("spin", "spin_in_python")])
def test_a_blocked_loop_is_logged_once_with_its_stack(start_server, tmp_path, how, frame):
    s = start_server(APP, "--loop-block-warn", "100", workers=1)
    # Awaiting is not blocking: nothing is logged for a coroutine that sleeps.
    assert s.get("/sleep?s=0.5")[0] == 200
    entered = tmp_path / "entered"
    blocked = started_in_background(s, "/block?s=0.5&how=%s&note=%s" % (how, entered))
    until(entered.exists, timeout=IO_TIMEOUT)
    # Sent while the loop is blocked: served once it is free again.
    assert s.get("/hello")[0] == 200
    assert blocked.result()[0] == 200
    end = s.wait_for_output(r"ASGI event loop unblocked after (\d+) ms")
    assert end, s.log()
    assert int(end.group(1)) >= 500  # the whole episode: at least the blocking call
    log = s.stderr()
    assert log.count("ASGI event loop blocked for") == 1, log  # once for the episode, not every tick
    start = re.search(r"ASGI event loop blocked for \d+ ms \(over --loop-block-warn 100 ms\)", log)
    assert start and start.start() < end.start(), log
    assert re.search(r'File ".*asgi_probe\.py", line \d+ in %s' % frame, log[start.end():end.start()]), log


def test_loop_block_warn_0_is_off(start_server, tmp_path):
    s = start_server(APP, "--loop-block-warn", "0", workers=1)
    assert s.get("/block?s=0.5")[0] == 200
    s.stop()  # the worker's log is written asynchronously: whole once it has exited
    assert "event loop blocked" not in s.stderr() and "unblocked" not in s.stderr(), s.log()


# ---- the process model and the lifespan -------------------------------------------------------

def test_max_requests_recycling_runs_the_lifespan_shutdown(start_server, tmp_path):
    log = tmp_path / "lifespan.log"
    s = start_server(APP, "--max-requests", "3", workers=1, env={"ASGI_PROBE_LOG": str(log)})
    pids = [pid_of(s) for _ in range(7)]
    assert len(set(pids)) >= 2, pids
    assert s.wait_for_output(r"Autorestarting worker after 3 requests")
    # The recycled worker said goodbye through the lifespan before it went.
    until(lambda: pids[0] in lifespan_lines(log, "shutdown"), timeout=IO_TIMEOUT)
    assert pids[0] in lifespan_lines(log, "startup")


def test_hup_gives_the_old_generation_a_lifespan_shutdown(start_server, tmp_path):
    log = tmp_path / "lifespan.log"
    s = start_server(APP, workers=2, env={"ASGI_PROBE_LOG": str(log)})
    until(lambda: len(lifespan_lines(log, "startup")) == 2, timeout=START_TIMEOUT)
    old = set(lifespan_lines(log, "startup"))
    s.send(signal.SIGHUP)
    assert s.wait_for_output(r"Reload complete", timeout=START_TIMEOUT), s.log()
    until(lambda: old <= set(lifespan_lines(log, "shutdown")), timeout=START_TIMEOUT)
    assert old <= set(lifespan_lines(log, "shutdown")), log.read_text()
    new = set(lifespan_lines(log, "startup")) - old
    assert len(new) == 2 and not new & set(lifespan_lines(log, "shutdown"))
    assert pid_of(s) in new


def test_term_lets_in_flight_requests_finish_then_runs_the_lifespan_shutdown(start_server, tmp_path):
    log = tmp_path / "lifespan.log"
    s = start_server(APP, workers=1, env={"ASGI_PROBE_LOG": str(log)})
    worker = pid_of(s)
    entered = tmp_path / "entered"
    slow = started_in_background(s, "/sleep?s=1&logged=1&note=%s" % entered)
    until(entered.exists, timeout=IO_TIMEOUT)
    s.send(signal.SIGTERM)
    status, _, body = slow.result()
    assert (status, body) == (200, b"slept\n")
    assert s.wait(timeout=START_TIMEOUT) == 0, s.log()
    words = [line.split()[0] for line in log.read_text().splitlines() if int(line.split()[1]) == worker]
    assert words == ["startup", "slept", "shutdown"], words  # the request ended before the shutdown


def test_max_worker_memory_recycles_an_asgi_worker(start_server, tmp_path):
    log = tmp_path / "lifespan.log"
    s = start_server(APP, "--max-worker-memory", "80", workers=1, env={"ASGI_PROBE_LOG": str(log)})
    first = pid_of(s)
    for _ in range(2):
        assert s.get("/hog?mb=50", timeout=30)[0] == 200
    assert s.wait_for_output(r"uses \d+ MB of private memory, over --max-worker-memory 80 MB"), s.log()
    assert until(lambda: _pid_or_none(s) not in (None, first), timeout=START_TIMEOUT)
    until(lambda: first in lifespan_lines(log, "shutdown"), timeout=IO_TIMEOUT)
    assert first in lifespan_lines(log, "shutdown")


def test_max_queue_answers_503_while_the_loop_is_backed_up(start_server, tmp_path):
    # Requests wait for the loop while synchronous code holds it: above --max-queue, a quick 503.
    s = start_server(APP, "--max-queue", "2", workers=1)
    entered = tmp_path / "entered"
    blocker = started_in_background(s, "/block?s=3&note=%s" % entered)
    until(entered.exists, timeout=IO_TIMEOUT)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: s.get("/hello", None, 30), range(6)))
    statuses = sorted(r[0] for r in results)
    assert blocker.result()[0] == 200
    assert statuses == [200, 200, 503, 503, 503, 503], statuses  # two waited for the loop
    assert all(r[1]["retry-after"] == "1" for r in results if r[0] == 503)


def test_by_default_a_burst_of_requests_waits_for_the_loop_without_503s(start_server, tmp_path):
    # Unset, --max-queue is off for ASGI: the loop takes a whole burst per wake-up, so 300 clients
    # whose requests all arrive while it is busy are served, none refused (WSGI's default is 256).
    s = start_server(APP, workers=1)
    entered = tmp_path / "entered"
    blocker = started_in_background(s, "/block?s=2&note=%s" % entered)
    until(entered.exists, timeout=IO_TIMEOUT)
    conns = [socket.create_connection(("127.0.0.1", s.port), timeout=30) for _ in range(300)]
    try:
        for c in conns:
            c.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        statuses = []
        for c in conns:
            data = b""
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
            statuses.append(int(data.split(b" ", 2)[1]))
    finally:
        for c in conns:
            c.close()
    assert blocker.result()[0] == 200
    assert statuses == [200] * 300, sorted(set(statuses))
