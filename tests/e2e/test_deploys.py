"""Deploys and process control against the real binary: HUP reloads new code with no failed request
(and keeps the old workers when the new code does not import), TTIN/TTOU, systemd socket
activation and sd_notify, USR2 binary upgrade with the sockets inherited, the pid file."""
import json
import re
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import REPO, START_TIMEOUT, IO_TIMEOUT, free_port, gantry_bin, _session_pids, until

APP_V = '''
import os
VERSION = "%s"
def app(environ, start_response):
    body = ("%%s %%d\\n" %% (VERSION, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def version_app(tmp_path, version):
    (tmp_path / "versioned.py").write_text(APP_V % version)


def answer(server):
    status, _, body = server.get("/", timeout=START_TIMEOUT)
    assert status == 200
    v, pid = body.decode().split()
    return v, int(pid)


def worker_pids(server):
    return sorted(p for p in _session_pids(server.pid) if p != server.pid and _ppid(p) == server.pid)


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        return int(stat[stat.rfind(")") + 2:].split()[1])
    except OSError:
        return -1


def booted(server, n):
    """Until n workers have loaded the app ("Booting worker" comes after the import)."""
    return until(lambda: len(re.findall(r"Booting worker with pid", server.stderr())) >= n)


class Hammer:
    """Requests on new connections in a loop from a few threads; records every outcome."""

    def __init__(self, server, threads=3):
        self.server, self.stop, self.results = server, threading.Event(), []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                status, _, body = self.server.get("/", timeout=START_TIMEOUT)
                self.results.append((status, body))
            except OSError as e:
                self.results.append((None, repr(e)))

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=START_TIMEOUT)
        return self.results


def test_hup_loads_new_code_without_failing_a_request(start_server, tmp_path):
    version_app(tmp_path, "v1")
    s = start_server("versioned:app", workers=2, cwd=str(tmp_path))
    assert booted(s, 2)
    assert answer(s)[0] == "v1"
    old = set(worker_pids(s))
    hammer = Hammer(s)
    time.sleep(0.3)
    version_app(tmp_path, "v2")
    s.send(signal.SIGHUP)
    assert until(lambda: answer(s)[0] == "v2")
    assert s.wait_for_output(r"Reload complete")
    time.sleep(0.5)
    results = hammer.finish()
    bad = [r for r in results if r[0] != 200]
    assert not bad, bad[:5]
    assert len(results) > 20
    assert until(lambda: not (set(worker_pids(s)) & old))  # the old generation has gone
    assert len(worker_pids(s)) == 2


def test_hup_with_code_that_no_longer_imports_keeps_the_old_workers(start_server, tmp_path):
    version_app(tmp_path, "v1")
    s = start_server("versioned:app", workers=2, cwd=str(tmp_path))
    assert booted(s, 2)
    old = set(worker_pids(s))
    (tmp_path / "versioned.py").write_text("raise ImportError('broken deploy')\n")
    s.send(signal.SIGHUP)
    assert s.wait_for_output(r"Reload failed \(a new worker cannot load the app\); the old workers keep serving")
    assert "broken deploy" in s.stderr()
    assert answer(s)[0] == "v1"
    time.sleep(0.5)
    assert set(worker_pids(s)) == old
    assert s.proc.poll() is None


def test_ttin_and_ttou_change_the_number_of_workers(start_server, tmp_path):
    version_app(tmp_path, "v1")
    s = start_server("versioned:app", workers=2, cwd=str(tmp_path))
    assert until(lambda: len(worker_pids(s)) == 2)
    s.send(signal.SIGTTIN)
    assert until(lambda: len(worker_pids(s)) == 3)
    s.send(signal.SIGTTOU)
    assert until(lambda: len(worker_pids(s)) == 2)
    s.send(signal.SIGTTOU)  # one at a time: two pending TTOUs are one signal, as for any process
    assert until(lambda: len(worker_pids(s)) == 1)
    s.send(signal.SIGTTOU)  # never fewer than one
    time.sleep(0.5)
    assert len(worker_pids(s)) == 1
    assert answer(s)[0] == "v1"


def test_systemd_socket_activation_and_sd_notify(tmp_path):
    version_app(tmp_path, "v1")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    notify_path = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(START_TIMEOUT)
    argv = " ".join(gantry_bin() + ["-w", "1", "versioned:app"])
    # LISTEN_PID must be the server's own pid: the shell sets it to $$ and execs the server.
    # bash, not dash: dash cannot name a descriptor above 9.
    proc = subprocess.Popen(["bash", "-c", "exec 3<&%d; LISTEN_PID=$$ LISTEN_FDS=1 exec %s" % (listener.fileno(), argv)],
                            cwd=str(tmp_path), env=dict(os.environ, NOTIFY_SOCKET=notify_path),
                            pass_fds=(listener.fileno(),), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        listener.close()  # only the server holds it now
        message = notify.recv(4096).decode()
        assert "READY=1" in message and "MAINPID=%d" % proc.pid in message
        conn = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 200") and b"v1 " in data
        os.kill(proc.pid, signal.SIGTERM)
        assert "STOPPING=1" in notify.recv(4096).decode()
        assert proc.wait(timeout=START_TIMEOUT) == 0
        assert b"inherited listening socket" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        notify.close()


def test_usr2_upgrades_the_binary_with_the_sockets_inherited(start_server, tmp_path):
    version_app(tmp_path, "v1")
    pidfile = tmp_path / "gantry.pid"
    s = start_server("versioned:app", "--pid", str(pidfile), workers=1, cwd=str(tmp_path))
    assert int(pidfile.read_text()) == s.pid
    version_app(tmp_path, "v2")
    s.send(signal.SIGUSR2)
    assert until(lambda: (tmp_path / "gantry.pid.oldbin").exists())
    assert until(lambda: pidfile.exists() and pidfile.read_text().strip() and int(pidfile.read_text()) != s.pid)
    new_master = int(pidfile.read_text())
    assert until(lambda: answer(s)[0] == "v2", timeout=START_TIMEOUT)  # the new master's workers serve too
    hammer = Hammer(s)
    time.sleep(0.3)
    s.send(signal.SIGTERM)  # the old master drains and leaves; the new one goes on
    assert s.proc.wait(timeout=START_TIMEOUT) == 0
    time.sleep(0.3)
    results = hammer.finish()
    assert not [r for r in results if r[0] != 200], results[:5]
    assert answer(s)[0] == "v2"
    assert not (tmp_path / "gantry.pid.oldbin").exists()
    os.kill(new_master, signal.SIGTERM)
    assert until(lambda: not os.path.exists("/proc/%d" % new_master) or _zombie(new_master))


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True
