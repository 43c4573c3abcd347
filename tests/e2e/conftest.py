"""Fixtures for the end-to-end suite: start the real server binary on a free loopback port.

The binary is $GANTRY_BIN (default build/release/gantry). Because gantry takes gunicorn's command
line, GANTRY_BIN=gunicorn runs the same suite against gunicorn, which is how the tests themselves
are validated. GANTRY_SANITIZE=1 (ASan build) lengthens time-outs and turns leak checks off.
"""
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import http.client

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = os.path.join(REPO, "tests", "apps")
SANITIZE = os.environ.get("GANTRY_SANITIZE", "0").strip().lower() in ("1", "on", "true", "yes")
START_TIMEOUT = 60.0 if SANITIZE else 15.0   # ASan start-up is several times slower
STOP_TIMEOUT = 30.0 if SANITIZE else 10.0
IO_TIMEOUT = 20.0 if SANITIZE else 5.0       # default per-socket time-out for the clients


def gantry_bin():
    value = os.environ.get("GANTRY_BIN", "build/release/gantry")
    argv = shlex.split(value)
    exe = argv[0]
    if os.sep in exe and not os.path.isabs(exe):
        exe = os.path.join(REPO, exe)
    if not (os.path.isfile(exe) or shutil.which(exe)):
        pytest.fail("server binary not found: %r (set GANTRY_BIN)" % value, pytrace=False)
    return [exe] + argv[1:]


def until(predicate, timeout=START_TIMEOUT):
    """Polls `predicate` until it is true or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def worker_pids(master):
    """The master's child processes (its workers), from /proc, sorted."""
    pids = set()
    for tid in os.listdir("/proc/%d/task" % master):
        try:
            with open("/proc/%d/task/%s/children" % (master, tid)) as f:
                pids.update(int(p) for p in f.read().split())
        except FileNotFoundError:
            pass
    return sorted(pids)


def rss_bytes(pid):
    """The process's resident memory (VmRSS), in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


def ipv6_loopback_works():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _session_pids(sid):
    """Pids of live (non-zombie) processes in session `sid`: the server and every worker it forked."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the parenthesised command name: state ppid pgrp session ...
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(entry))
    return pids


class Server:
    """One running server process, its port and its captured output."""

    def __init__(self, argv, cwd, env, tmpdir, port, host="127.0.0.1"):
        self.argv, self.cwd, self.host, self.port = argv, cwd, host, port
        self.stdout_path = os.path.join(tmpdir, "server.stdout")
        self.stderr_path = os.path.join(tmpdir, "server.stderr")
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        # Own session, so teardown can find every worker the master forked.
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err, start_new_session=True)
        self.pid = self.proc.pid

    # -- output ------------------------------------------------------------------------------
    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log(self):
        return "--- argv: %s\n--- stdout:\n%s\n--- stderr:\n%s" % (
            " ".join(self.argv), self.stdout(), self.stderr())

    def wait_for_output(self, pattern, timeout=IO_TIMEOUT, stream="stderr"):
        """Poll the captured stdout/stderr until `pattern` (regex) appears; return the match."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.stderr() if stream == "stderr" else self.stdout()
            m = re.search(pattern, text)
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    # -- connecting --------------------------------------------------------------------------
    @property
    def url(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d" % (host, self.port)

    def connect(self, timeout=IO_TIMEOUT, source=None):
        return socket.create_connection((self.host, self.port), timeout=timeout, source_address=source)

    def http(self, timeout=IO_TIMEOUT):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def get(self, path, headers=None, timeout=IO_TIMEOUT):
        """One GET on a new connection; returns (status, headers dict lower-cased, body bytes)."""
        conn = self.http(timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def get_json(self, path, **kw):
        status, _, body = self.get(path, **kw)
        assert status == 200, (status, body[:500])
        return json.loads(body)

    def wait_ready(self, timeout=START_TIMEOUT):
        """Until the port accepts a connection; fails the test with the log if the process died."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail("server exited with %s before accepting connections\n%s"
                            % (self.proc.returncode, self.log()), pytrace=False)
            try:
                with self.connect(timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not accept connections within %.0fs\n%s" % (timeout, self.log()),
                            pytrace=False)
            time.sleep(0.05)

    def assert_serving(self):
        """A normal request on a fresh connection still gets a 200 (the worker survived)."""
        status, _, body = self.get("/hello")
        assert status == 200, (status, body)
        assert body.startswith(b"probe GET /hello"), body

    # -- stopping ----------------------------------------------------------------------------
    def send(self, sig):
        os.kill(self.pid, sig)

    def wait(self, timeout=STOP_TIMEOUT):
        return self.proc.wait(timeout=timeout)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signal the master, wait, SIGKILL the whole session if needed; return the exit code."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill_session()
                self.proc.wait(timeout=5)
        return self.proc.returncode

    def _kill_session(self):
        for pid in _session_pids(self.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def leftovers(self, grace=3.0):
        """Processes of the server's session still alive `grace` seconds after the master exited."""
        deadline = time.monotonic() + grace
        while True:
            left = _session_pids(self.pid)
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.05)

    def close_files(self):
        self._out.close()
        self._err.close()


class ServerFactory:
    """Starts servers for one test and makes sure none outlives it."""

    def __init__(self, tmp_path_factory):
        self._tmp = tmp_path_factory
        self.servers = []

    def __call__(self, app="probe:app", *args, bind=True, cwd=None, env=None, wait=True,
                 workers=None, host="127.0.0.1", port=None, wrap=()):
        """Start `GANTRY_BIN [-b host:port] ARGS app` from `cwd` (default tests/apps).

        bind=False leaves the binding to ARGS or a config file (pass `port` to say which port
        to wait for). wait=False returns at once (for start-up failures). `wrap` is a command
        that execs the server (e.g. prlimit), so the pid stays the server's."""
        port = port or free_port(host)
        argv = list(wrap) + gantry_bin()
        if bind:
            argv += ["-b", "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)]
        if workers is not None:
            argv += ["-w", str(workers)]
        argv += [str(a) for a in args]
        if app:
            argv.append(app)
        full_env = dict(os.environ)
        full_env.pop("VIRTUAL_ENV", None)     # --virtualenv defaults to it: keep runs reproducible
        full_env["PYTHONDONTWRITEBYTECODE"] = "1"
        if SANITIZE:
            full_env["ASAN_OPTIONS"] = "detect_leaks=0"
        full_env.update(env or {})
        tmpdir = str(self._tmp.mktemp("server"))
        server = Server(argv, cwd or APPS, full_env, tmpdir, port, host)
        self.servers.append(server)
        if wait:
            server.wait_ready()
        return server

    def teardown(self):
        problems = []
        for server in self.servers:
            try:
                server.stop()
                left = server.leftovers()
                if left:
                    server._kill_session()
                    problems.append("processes left running after the server exited: %s\n%s"
                                    % (left, server.log()))
                # Under ASan/UBSan a report in any process of the server fails the test.
                log = server.log()
                for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
                    if marker in log:
                        problems.append("sanitizer report in the server's output:\n%s" % log)
                        break
            finally:
                server.close_files()
        self.servers = []
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def start_server(tmp_path_factory):
    """Function-scoped: start_server(app, *args, ...) -> Server; all stopped at test end."""
    factory = ServerFactory(tmp_path_factory)
    yield factory
    factory.teardown()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One default probe server shared by a module's read-only tests (saves start-up time)."""
    factory = ServerFactory(tmp_path_factory)
    yield factory("probe:app")
    factory.teardown()


# ---- raw HTTP helpers --------------------------------------------------------------------------

class _NoCloseFile(io.RawIOBase):
    """Shares one buffered reader between several http.client responses on one socket
    (keep-alive, pipelining): http.client closes its file after each response."""

    def __init__(self, f):
        self._f = f

    def __getattr__(self, name):
        return getattr(self._f, name)

    def readline(self, *a):
        return self._f.readline(*a)

    def read(self, *a):
        return self._f.read(*a)

    def readinto(self, b):
        return self._f.readinto(b)

    def read1(self, *a):
        return self._f.read1(*a)

    def peek(self, *a):
        return self._f.peek(*a)

    def close(self):
        pass


class _SockShim:
    def __init__(self, f):
        self._f = f

    def makefile(self, *a, **kw):
        return self._f


class RawConnection:
    """A raw socket with a response reader: send exact bytes, parse responses with http.client."""

    def __init__(self, sock):
        self.sock = sock
        self.file = sock.makefile("rb")
        self._shared = _NoCloseFile(self.file)

    def send(self, data):
        self.sock.sendall(data)

    def response(self, method="GET"):
        """The next response on this connection, body fully read (http.client does the parsing)."""
        r = http.client.HTTPResponse(_SockShim(self._shared), method=method)
        r.begin()
        r.body = r.read()
        return r

    def read_until_close(self, limit=1 << 20):
        """Everything the server sends until it closes (bounded by the socket time-out)."""
        chunks = []
        while sum(map(len, chunks)) < limit:
            data = self.file.read1(65536)
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    def is_closed_by_peer(self, timeout):
        """True if the server closes (EOF or reset) within `timeout`, False if still open.
        Peeks on the socket itself: a time-out would leave the buffered reader unusable."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.file.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raw(server, timeout=IO_TIMEOUT, source=None):
    return RawConnection(server.connect(timeout=timeout, source=source))


def status_of(data):
    """Status code from the first line of raw response bytes, or None for no response."""
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(m.group(1)) if m else None
