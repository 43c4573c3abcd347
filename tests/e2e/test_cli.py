"""The gunicorn-compatible command line: binds, config file, environment, paths, app factories,
logging and proxy trust."""
import glob
import json
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import APPS, IO_TIMEOUT, START_TIMEOUT, free_port, gantry_bin, ipv6_loopback_works, raw


def run_cli(*args, timeout=30):
    return subprocess.run(gantry_bin() + list(args), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=APPS)


def http_get_on(host, port, path="/hello"):
    sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
    with sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            piece = sock.recv(65536)
            if not piece:
                return data
            data += piece


def test_several_binds_tcp_and_unix(start_server, tmp_path):
    second = free_port()
    sock_path = str(tmp_path / "g.sock")
    s = start_server("probe:app", "-b", "127.0.0.1:%d" % second, "-b", "unix:" + sock_path)
    for port in (s.port, second):
        data = http_get_on("127.0.0.1", port)
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"probe GET /hello\n"), data
    deadline = time.monotonic() + 5
    while not os.path.exists(sock_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    out = subprocess.run(["curl", "-sS", "--max-time", "5", "--unix-socket", sock_path, "http://localhost/via-unix"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "probe GET /via-unix\n"
    # And with a plain AF_UNIX socket.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as u:
        u.settimeout(IO_TIMEOUT)
        u.connect(sock_path)
        u.sendall(b"GET /raw-unix HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            piece = u.recv(65536)
            if not piece:
                break
            data += piece
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"probe GET /raw-unix\n")


@pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback on this machine")
def test_bind_ipv6_loopback(start_server):
    v6 = free_port("::1")
    s = start_server("probe:app", "-b", "[::1]:%d" % v6)
    data = http_get_on("::1", v6, "/environ")
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    env = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert env["REMOTE_ADDR"] == "::1"
    assert env["SERVER_PORT"] == str(v6)
    s.assert_serving()


def test_address_in_use_fails_clearly(start_server):
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        # gunicorn retries for 5 s before giving up; a prompt failure is fine too.
        s = start_server("probe:app", "-b", "127.0.0.1:%d" % port, bind=False, wait=False, port=port)
        code = s.wait(timeout=START_TIMEOUT)
    finally:
        holder.close()
    assert code != 0
    assert re.search(r"(?i)in use", s.stderr()), s.log()
    assert str(port) in s.stderr()


def test_version():
    out = run_cli("--version")
    assert out.returncode == 0, out.stderr
    assert re.search(r"\d+\.\d+", out.stdout + out.stderr), out


def test_help_lists_gunicorn_flags():
    out = run_cli("--help")
    assert out.returncode == 0, out.stderr
    for flag in ("--bind", "--workers", "--threads", "--timeout", "--keep-alive", "--access-logfile",
                 "--chdir", "--preload", "--config"):
        assert flag in out.stdout, flag


def test_unknown_flag_is_an_error():
    out = run_cli("--no-such-flag", "probe:app", timeout=15)
    assert out.returncode != 0
    assert "no-such-flag" in out.stderr


def test_toml_config_file(start_server, tmp_path):
    port = free_port()
    cfg = tmp_path / "gantry.toml"
    cfg.write_text('bind = ["127.0.0.1:%d"]\nworkers = 2\naccess_logfile = "-"\n'
                   'access_logformat = "cfg %%(m)s %%(U)s %%(s)s"\n' % port)
    s = start_server("probe:app", "-c", str(cfg), bind=False, port=port)
    env = s.get_json("/environ")
    assert env["wsgi.multiprocess"] is True     # workers = 2 from the file
    s.get("/from-config")
    assert s.wait_for_output(r"cfg GET /from-config 200", stream="stdout"), s.log()


def test_flags_override_config_file(start_server, tmp_path):
    port = free_port()
    cfg = tmp_path / "gantry.toml"
    cfg.write_text('bind = ["127.0.0.1:%d"]\nworkers = 3\n' % port)
    s = start_server("probe:app", "-c", str(cfg), "-w", "1", bind=False, port=port)
    assert s.get_json("/environ")["wsgi.multiprocess"] is False


def test_env_flag_visible_in_os_environ(start_server):
    s = start_server("probe:app", "-e", "E2E_KEY=some value=with equals", "--env", "E2E_OTHER=2")
    assert s.get_json("/osenv?k=E2E_KEY")["value"] == "some value=with equals"
    assert s.get_json("/osenv?k=E2E_OTHER")["value"] == "2"


def test_chdir(start_server, tmp_path):
    # Started from an empty directory: probe is only importable thanks to --chdir.
    s = start_server("probe:app", "--chdir", APPS, cwd=str(tmp_path))
    assert os.path.realpath(s.get_json("/osenv")["cwd"]) == os.path.realpath(APPS)


def test_pythonpath(start_server, tmp_path):
    s = start_server("probe:app", "--pythonpath", APPS, cwd=str(tmp_path))
    info = s.get_json("/osenv")
    assert APPS in info["sys_path"]
    assert os.path.realpath(info["cwd"]) == os.path.realpath(str(tmp_path))


def test_app_factory_with_argument(start_server):
    s = start_server("factory:create_app('hi')")
    status, _, body = s.get("/")
    assert status == 200 and body == b"hi from factory\n"


def test_access_log_default_format(start_server):
    s = start_server("probe:app", "--access-logfile", "-")
    status, _, body = s.get("/x", headers={"User-Agent": "ua-e2e/1.0"})
    assert status == 200
    pattern = (r'(?m)^127\.0\.0\.1 - - \[[^\]]+\] "GET /x HTTP/1\.1" 200 %d "-" "ua-e2e/1\.0"$' % len(body))
    assert s.wait_for_output(pattern, stream="stdout"), s.log()


def test_access_log_custom_format(start_server):
    s = start_server("probe:app", "--access-logfile", "-",
                     "--access-logformat", "%(m)s %(U)s %(q)s %(s)s %(D)s %({x-h}i)s")
    s.get("/x?a=1&b=2", headers={"X-H": "header-value"})
    m = s.wait_for_output(r"(?m)^GET /x a=1&b=2 200 (\d+) header-value$", stream="stdout")
    assert m, s.log()
    assert int(m.group(1)) > 0          # %(D)s: request time in microseconds


def test_access_and_error_log_files(start_server, tmp_path):
    access, error = tmp_path / "access.log", tmp_path / "error.log"
    s = start_server("probe:app", "--access-logfile", str(access), "--error-logfile", str(error))
    assert s.get("/boom")[0] == 500
    s.get("/logged")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        a = access.read_text() if access.exists() else ""
        e = error.read_text() if error.exists() else ""
        if '"GET /logged HTTP/1.1" 200' in a and "probe boom" in e:
            break
        time.sleep(0.05)
    assert '"GET /boom HTTP/1.1" 500' in a, a
    assert '"GET /logged HTTP/1.1" 200' in a, a
    assert "Traceback" in e and "RuntimeError: probe boom: deliberate failure" in e, e


PROXY_HEADERS = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


def test_forwarded_proto_trusted(start_server):
    s = start_server("probe:app", "--forwarded-allow-ips", "127.0.0.1")
    env = s.get_json("/environ", headers=PROXY_HEADERS)
    assert env["wsgi.url_scheme"] == "https"


def test_forwarded_for_trusted_sets_remote_addr(start_server):
    s = start_server("probe:app", "--forwarded-allow-ips", "127.0.0.1")
    env = s.get_json("/environ", headers=PROXY_HEADERS)
    assert env["REMOTE_ADDR"] == "203.0.113.7"


def test_forwarded_headers_ignored_from_untrusted_peer(start_server):
    s = start_server("probe:app", "--forwarded-allow-ips", "127.0.0.1")
    # Same loopback interface, different source address: a peer the server must not believe.
    with raw(s, source=("127.0.0.2", 0)) as c:
        c.send(b"GET /environ HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\n"
               b"X-Forwarded-Proto: https\r\n\r\n")
        r = c.response()
    assert r.status == 200
    env = json.loads(r.body)
    assert env["REMOTE_ADDR"] == "127.0.0.2"
    assert env["wsgi.url_scheme"] == "http"


def test_virtualenv(start_server, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, timeout=60)
    site = glob.glob(str(venv / "lib" / "python3*" / "site-packages"))
    assert len(site) == 1, site
    module = os.path.join(site[0], "venv_only_module.py")
    with open(module, "w") as f:
        f.write('MARKER = "from-the-venv"\n')
    s = start_server("venv_app:app", "--virtualenv", str(venv))
    info = s.get_json("/")
    assert info["venv_marker"] == "from-the-venv"
    assert os.path.realpath(info["venv_module_file"]) == os.path.realpath(module)
    assert info["django"].startswith("3.2")
