"""Checks of the WebSocket harness: that bench/ws_load counts what happened (echoes, mismatches,
deliveries, broadcasts that never reached everyone, connections dropped while held), against small
servers on Debian's python3-websockets, and the arithmetic of ws_compare.py's ratios and verdicts.

    /usr/bin/python3 -m pytest -q bench/e2e/test_ws_compare.py   # needs build/release/bench/ws_load
"""
import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import websockets

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import ws_compare  # noqa: E402

WS_LOAD = os.environ.get("WS_LOAD", str(HERE.parents[1] / "build/release/bench/ws_load"))


class Server:
    """A websockets server on its own loop in a thread; `behaviour` picks what /echo and
    /broadcast do."""

    def __init__(self, behaviour, compression=None):
        self.behaviour = behaviour
        self.compression = compression
        self.members = set()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(10)

    def _run(self, started):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            websockets.serve(self.handle, "127.0.0.1", 0, compression=self.compression))
        self.port = self.server.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()

    async def handle(self, ws, path=None):
        if self.behaviour == "close-soon":
            await asyncio.sleep(0.3)
            await ws.close()
            return
        if ws.path == "/echo":
            async for message in ws:
                await ws.send(message[::-1] if self.behaviour == "reverse" else message)
            return
        # /broadcast: with "skip-one", one connection other than the sender never gets anything.
        self.members.add(ws)
        try:
            async for message in ws:
                others = [m for m in self.members if m is not ws]
                skipped = min(others, key=id) if self.behaviour == "skip-one" and others else None
                for member in list(self.members):
                    if member is not skipped:
                        await member.send(message)
        finally:
            self.members.discard(ws)

    def close(self):
        if not self.thread.is_alive():
            return
        async def shut():
            self.server.close()
            await self.server.wait_closed()  # closes the connections and ends their handlers
        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def ws_load(*args, stdin=None):
    assert os.access(WS_LOAD, os.X_OK), "build it: cmake -DGANTRY_BENCH=ON, cmake --build ... --target ws_load"
    p = subprocess.run([WS_LOAD] + [str(a) for a in args], capture_output=True, text=True, timeout=120, input=stdin)
    lines = p.stdout.splitlines()
    return p.returncode, lines, json.loads(lines[-1])


@pytest.fixture
def server(request):
    s = Server(*request.param)
    yield s
    s.close()


@pytest.mark.parametrize("server", [("echo",)], indirect=True)
def test_echo_counts_round_trips_and_marks_the_window(server):
    rc, lines, r = ws_load("echo", "--port", server.port, "--clients", 4, "--seconds", 0.5, "--warmup", 0.2)
    assert rc == 0
    assert lines[:2] == ["window begin", "window end"]
    assert r["connected"] == 4 and r["errors"] == 0 and r["mismatches"] == 0
    assert r["messages"] > 0 and r["latency_us"]["p50"] <= r["latency_us"]["p99"] <= r["latency_us"]["max"]


@pytest.mark.parametrize("server", [("reverse",)], indirect=True)
def test_echo_reports_an_answer_that_is_not_the_message(server):
    rc, _, r = ws_load("echo", "--port", server.port, "--clients", 2, "--seconds", 0.3, "--warmup", 0, "--binary")
    assert rc == 1
    assert r["mismatches"] >= r["messages"] > 0


@pytest.mark.parametrize("server", [("echo",)], indirect=True)
def test_a_refused_connection_is_an_error_not_a_result(server):
    server.close()
    rc, _, r = ws_load("echo", "--port", server.port, "--clients", 3, "--seconds", 0.1, "--warmup", 0)
    assert rc == 1
    assert r["connected"] == 0 and r["connect_failed"] == 3 and r["messages"] == 0


@pytest.mark.parametrize("server", [("broadcast",)], indirect=True)
def test_broadcast_counts_every_delivery_of_every_broadcast(server):
    rc, _, r = ws_load("broadcast", "--port", server.port, "--receivers", 20, "--messages", 30, "--warmup", 0.2)
    assert rc == 0, r
    assert r["broadcasts"] == 30 and r["deliveries"] == 30 * 20 and r["incomplete"] == 0
    assert r["reach_all_us"]["p50"] > 0 and r["deliveries_per_s"] > 0


@pytest.mark.parametrize("server", [("skip-one",)], indirect=True)
def test_a_broadcast_that_misses_a_receiver_is_incomplete(server):
    rc, _, r = ws_load("broadcast", "--port", server.port, "--receivers", 5, "--messages", 3, "--warmup", 0,
                       "--timeout", 0.3)
    assert rc == 1
    assert r["incomplete"] == 3 and r["deliveries"] == 3 * 4


@pytest.mark.parametrize("server", [("echo", "deflate")], indirect=True)
@pytest.mark.parametrize("offer", [True, False])
def test_idle_holds_until_stdin_closes_and_reports_deflate(server, offer):
    args = ["idle", "--port", server.port, "--connections", 50, "--exchange"] + (["--deflate"] if offer else [])
    rc, lines, r = ws_load(*args, stdin="")
    ready = json.loads(lines[0][len("ready "):])
    assert rc == 0
    assert ready["connected"] == 50 and ready["exchange_errors"] == 0
    assert ready["deflate_negotiated"] == (50 if offer else 0)
    assert r["dropped_while_held"] == 0


@pytest.mark.parametrize("server", [("close-soon",)], indirect=True)
def test_idle_counts_connections_the_server_dropped(server):
    rc, _, r = ws_load("idle", "--port", server.port, "--connections", 10, "--hold-seconds", 2)
    assert rc == 1
    assert r["dropped_while_held"] == 10


def run(rate, p99=1.0):
    return {"messages_per_s": rate, "kib_per_conn": rate, "p99_ms": p99, "cpu_us": 1.0, "client_cpu_us": 1.0}


def test_ratios_pair_rounds_and_skip_failed_ones():
    gantry = [run(30), {"error": "x"}, run(50)]
    uvicorn = [run(10), run(10), run(20)]
    assert ws_compare.ratios("echo", gantry, uvicorn) == [3.0, 2.5]


def test_verdicts_point_the_right_way():
    opts = {"clients": 32, "workers": 2, "receivers": 1000, "idle_connections": 2000}
    results = {"echo": {"gantry": [run(30)], "uvicorn": [run(20)]},       # 1.5x: below 2x
               "idle": {"gantry": [run(5)], "uvicorn": [run(25)]}}        # 0.2x: within 0.25x
    rows = {r[0]: r[4]["uvicorn"] for r in ws_compare.summary_rows(results, ["gantry", "uvicorn"], opts)}
    assert rows["echo"].endswith("missed") and "1.50" in rows["echo"]
    assert rows["idle"].endswith("met") and "0.20" in rows["idle"]
