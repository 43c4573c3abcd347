"""gunicorn's command line, config file and environment on gantry (docs/gunicorn.md): every
installed gunicorn setting has an answer, the doc table is the code's, a gunicorn.conf.py in the
shape of gunicorn's example runs on the Django demo, the usual Dockerfile line runs, the sources
take gunicorn's precedence, noted settings log their line and refused ones stop gantry."""
import os
import re
import socket
import stat
import subprocess
import sys
import textwrap

import pytest

from conftest import APPS, REPO, IO_TIMEOUT, free_port, gantry_bin, until

DEMO = os.path.join(REPO, "examples", "django_demo")


def run_gantry(*args, cwd=APPS, env=None, timeout=60):
    full_env = dict(os.environ)
    full_env.pop("VIRTUAL_ENV", None)
    for name in ("GUNICORN_CMD_ARGS", "GANTRY_CMD_ARGS", "WEB_CONCURRENCY"):
        full_env.pop(name, None)
    full_env.update(env or {})
    return subprocess.run(gantry_bin() + [str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env=full_env, stdin=subprocess.DEVNULL, timeout=timeout)


def settings_table():
    """{name: (flags, answer, text)} from `gantry --print-settings-table`."""
    out = run_gantry("--print-settings-table")
    assert out.returncode == 0, out.stderr
    rows = {}
    for line in out.stdout.splitlines():
        m = re.match(r"\| `([a-z0-9_]+)`[^|]* \| ([^|]*) \| ([^|]*) \| ([^|]*) \| (.*) \|$", line)
        if m:
            flags = re.findall(r"`([^`]+)`", m.group(2))
            rows[m.group(1)] = (flags, m.group(3).strip(), m.group(4).strip(), m.group(5).strip())
    return rows


def test_every_installed_gunicorn_setting_has_a_row():
    """Fails when the installed gunicorn has a setting (or a flag) the table does not answer."""
    import gunicorn
    import gunicorn.config
    rows = settings_table()
    assert len(rows) > 100
    missing, wrong_flags = [], []
    for setting in gunicorn.config.KNOWN_SETTINGS:
        if setting.name not in rows:
            missing.append(setting.name)
        elif sorted(setting.cli or []) != sorted(rows[setting.name][0]):
            wrong_flags.append((setting.name, setting.cli, rows[setting.name][0]))
    assert not missing, "gunicorn %s settings with no row in server/gunicorn_settings.cpp: %s" % (
        gunicorn.__version__, missing)
    assert not wrong_flags, wrong_flags


def test_the_doc_table_is_the_code_s():
    out = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "gunicorn_doc.py"), "--check",
                          gantry_bin()[0]], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# In the shape of gunicorn's documented example (examples/example_config.py): its settings with
# its values, and its hooks; only the port is the test's.
EXAMPLE_CONFIG = '''
bind = '127.0.0.1:{port}'
backlog = 2048

workers = 2
worker_class = 'sync'
worker_connections = 1000
timeout = 30
keepalive = 2

spew = False

daemon = False
raw_env = [
    'DJANGO_SECRET_KEY=something',
    'SPAM=eggs',
]
pidfile = None
umask = 0
user = None
group = None
tmp_upload_dir = None

errorlog = '-'
loglevel = 'info'
accesslog = '-'
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

proc_name = None

def post_fork(server, worker):
    server.log.info("Worker spawned (pid: %s)", worker.pid)

def pre_fork(server, worker):
    pass

def pre_exec(server):
    server.log.info("Forked child, re-executing.")

def when_ready(server):
    server.log.info("Server is ready. Spawning workers")

def worker_int(worker):
    worker.log.info("worker received INT or QUIT signal")

def worker_abort(worker):
    worker.log.info("worker received SIGABRT signal")
'''


def test_gunicorn_example_config_runs_on_the_demo(start_server, tmp_path):
    port = free_port()
    (tmp_path / "gunicorn.conf.py").write_text(EXAMPLE_CONFIG.format(port=port))
    # ./gunicorn.conf.py is read by itself, as gunicorn reads it.
    s = start_server("demo.wsgi", "--chdir", DEMO, bind=False, port=port, cwd=str(tmp_path))
    status, _, body = s.get("/ping/")
    assert status == 200, body
    assert s.wait_for_output(r'"GET /ping/ HTTP/1.1" 200', stream="stdout"), s.log()
    # Its hooks: when_ready and post_fork log through server.log; the ones gantry does not call
    # yet say so once.
    assert s.wait_for_output(r"\[INFO\] Server is ready. Spawning workers"), s.log()
    assert until(lambda: len(re.findall(r"\[INFO\] Worker spawned \(pid: \d+\)", s.stderr())) == 2), s.log()
    for hook in ("pre_exec", "worker_int", "worker_abort"):
        assert s.wait_for_output(r"%s \(in gunicorn.conf.py\): gantry does not call this hook yet" % hook), s.log()
    assert until(lambda: s.stderr().count("Booting worker") == 2), s.log()


def test_config_file_settings_reach_the_app(start_server, tmp_path):
    port = free_port()
    cfg = tmp_path / "settings.py"
    cfg.write_text(textwrap.dedent('''
        import os
        bind = ["127.0.0.1:%d"]
        workers = 2
        raw_env = ["FROM_CONF=yes %%s" %% os.getpid()]
        chdir = %r
        wsgi_app = "probe:app"
        worker_tmp_dir = "/dev/shm"
        not_a_setting = object()
    ''' % (port, APPS)))
    s = start_server(None, "-c", str(cfg), bind=False, port=port, cwd=str(tmp_path))
    env = s.get_json("/environ")
    assert env["wsgi.multiprocess"] is True
    osenv = s.get_json("/osenv?k=FROM_CONF")
    assert osenv["value"].startswith("yes ")          # raw_env, set after the file ran
    assert osenv["cwd"] == APPS                       # chdir from the file
    assert s.wait_for_output(r"--worker-tmp-dir /dev/shm \(in settings.py\): gantry needs no heartbeat files")


def test_python_module_config(start_server, tmp_path):
    port = free_port()
    (tmp_path / "deploy_settings.py").write_text("bind = '127.0.0.1:%d'\nworkers = 2\n" % port)
    s = start_server("probe:app", "-c", "python:deploy_settings", bind=False, port=port,
                     env={"PYTHONPATH": str(tmp_path)})
    assert s.get_json("/environ")["wsgi.multiprocess"] is True


def test_precedence_command_line_over_environment_over_file(start_server, tmp_path):
    port = free_port()
    (tmp_path / "gunicorn.conf.py").write_text(
        "bind = '127.0.0.1:%d'\nworkers = 3\nraw_env = ['LAYER=file']\nchdir = %r\n" % (port, APPS))
    # $GUNICORN_CMD_ARGS over the file: one worker.
    s = start_server("probe:app", bind=False, port=port, cwd=str(tmp_path),
                     env={"GUNICORN_CMD_ARGS": "--workers 1 -e LAYER=gunicorn"})
    assert s.get_json("/environ")["wsgi.multiprocess"] is False
    assert s.get_json("/osenv?k=LAYER")["value"] == "gunicorn"
    s.stop()
    # $GANTRY_CMD_ARGS over $GUNICORN_CMD_ARGS, the command line over both.
    s = start_server("probe:app", "-e", "LAYER=cli", bind=False, port=port, cwd=str(tmp_path),
                     env={"GUNICORN_CMD_ARGS": "--workers 1 -e LAYER=gunicorn",
                          "GANTRY_CMD_ARGS": "--workers 2 -e LAYER=gantry"})
    assert s.get_json("/environ")["wsgi.multiprocess"] is True
    assert s.get_json("/osenv?k=LAYER")["value"] == "cli"


def test_config_file_named_in_gunicorn_cmd_args(tmp_path):
    cfg = tmp_path / "elsewhere.py"
    cfg.write_text("workers = 4\n")
    out = run_gantry("--print-config", "probe:app", env={"GUNICORN_CMD_ARGS": "-c %s" % cfg})
    assert out.returncode == 0, out.stderr
    assert "\nworkers = 4\n" in out.stdout


def test_the_dockerfile_line_on_the_demo(start_server):
    # gunicorn --bind 0.0.0.0:8000 --workers 3 --worker-tmp-dir /dev/shm --capture-output
    # --access-logfile - myproject.wsgi, with the test's loopback port.
    port = free_port()
    s = start_server("demo.wsgi", "--chdir", DEMO, "--bind", "127.0.0.1:%d" % port, "--workers", "3",
                     "--worker-tmp-dir", "/dev/shm", "--capture-output", "--access-logfile", "-",
                     bind=False, port=port)
    status, _, _ = s.get("/ping/")
    assert status == 200
    assert s.wait_for_output(r'"GET /ping/ HTTP/1.1" 200', stream="stdout"), s.log()
    assert s.wait_for_output(r"--worker-tmp-dir /dev/shm: gantry needs no heartbeat files"), s.log()
    assert until(lambda: s.stderr().count("Booting worker") == 3), s.log()


def test_each_noted_setting_logs_its_line():
    rows = settings_table()
    noted = [(name, flags, text) for name, (flags, form, answer, text) in rows.items()
             if answer == "accepted, noted" and flags]
    assert len(noted) > 30
    args = []
    for name, flags, text in noted:
        flag = [f for f in flags if f.startswith("--")][0]
        args.append(flag)
        if rows[name][1] in ("value", "repeatable"):
            args.append("v-" + name)
    out = run_gantry("--check-config", *args, "probe:app")
    assert out.returncode == 0, out.stderr
    for name, flags, text in noted:
        flag = [f for f in flags if f.startswith("--")][0]
        lines = [l for l in out.stderr.splitlines() if re.search(r"\] %s( v-|:)" % re.escape(flag), l) and text in l]
        assert len(lines) == 1, (flag, out.stderr)


def test_each_refused_setting_stops_gantry_naming_the_alternative():
    rows = settings_table()
    refused = [(name, flags, form, text) for name, (flags, form, answer, text) in rows.items()
               if answer == "refused" and flags]
    assert len(refused) >= 10
    for name, flags, form, text in refused:
        flag = [f for f in flags if f.startswith("--")][0]
        args = [flag, "v-" + name] if form in ("value", "repeatable") else [flag]
        out = run_gantry("--check-config", *args, "probe:app", timeout=30)
        assert out.returncode != 0, flag
        assert flag in out.stderr and text.replace("`", "")[:40] in out.stderr.replace("`", ""), (flag, out.stderr)
    out = run_gantry("-k", "gevent", "probe:app")
    assert out.returncode != 0
    assert "--interface asgi" in out.stderr and "--threads" in out.stderr


def test_refused_setting_in_a_config_file(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text("daemon = True\n")
    out = run_gantry("probe:app", cwd=str(tmp_path))
    assert out.returncode != 0
    assert "--daemon (in gunicorn.conf.py): gantry does not daemonize" in out.stderr


def test_config_file_errors(tmp_path):
    (tmp_path / "raises.py").write_text("workers = 2\nraise RuntimeError('no settings for you')\n")
    out = run_gantry("-c", str(tmp_path / "raises.py"), "probe:app")
    assert out.returncode != 0
    assert "Failed to read config file" in out.stderr and "RuntimeError: no settings for you" in out.stderr
    (tmp_path / "badvalue.py").write_text("preload_app = 'sometimes'\n")
    out = run_gantry("-c", str(tmp_path / "badvalue.py"), "probe:app")
    assert out.returncode != 0
    assert "Invalid value for preload_app" in out.stderr
    out = run_gantry("-c", str(tmp_path / "nosuch.py"), "probe:app")
    assert out.returncode != 0 and "doesn't exist" in out.stderr


def test_check_config(tmp_path):
    ok = run_gantry("--check-config", "probe:app")
    assert ok.returncode == 0, ok.stderr
    bad = run_gantry("--check-config", "broken_import:app")
    assert bad.returncode == 1
    assert "Traceback" in bad.stderr


def test_print_config_is_a_usable_toml_file(start_server, tmp_path):
    port = free_port()
    (tmp_path / "gunicorn.conf.py").write_text("bind = '127.0.0.1:%d'\nworkers = 2\nkeepalive = 7\n" % port)
    out = run_gantry("--print-config", "--chdir", APPS, "probe:app", cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    import tomllib
    settings = tomllib.loads(out.stdout)
    assert settings["workers"] == 2 and settings["keep_alive"] == 7
    assert settings["bind"] == ["127.0.0.1:%d" % port]
    toml = tmp_path / "captured.toml"
    toml.write_text(out.stdout)
    s = start_server(None, "-c", str(toml), bind=False, port=port)
    assert s.get_json("/environ")["wsgi.multiprocess"] is True


def test_reuse_port_lets_two_servers_share_a_port(start_server):
    port = free_port()
    a = start_server("probe:app", "--reuse-port", "-b", "127.0.0.1:%d" % port, bind=False, port=port)
    b = start_server("probe:app", "--reuse-port", "-b", "127.0.0.1:%d" % port, bind=False, port=port)
    a.assert_serving()
    b.assert_serving()
    # Both may be answered by a: b's own line says it bound the port too (it may come later under ASan).
    assert b.wait_for_output(r"Listening at: http://127\.0\.0\.1:%d" % port), b.log()


def test_umask_applies_to_the_unix_socket(start_server, tmp_path):
    path = str(tmp_path / "g.sock")
    s = start_server("probe:app", "-m", "0077", "-b", "unix:" + path, wait=False)
    assert until(lambda: os.path.exists(path)), s.log()
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0


def test_capture_output_sends_prints_to_the_error_log(start_server, tmp_path):
    (tmp_path / "printing.py").write_text(textwrap.dedent('''
        import sys
        def app(environ, start_response):
            print("printed-by-the-app", flush=True)
            sys.stderr.write("stderr-of-the-app\\n")
            sys.stderr.flush()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
    '''))
    errlog = tmp_path / "error.log"
    s = start_server("printing:app", "--pythonpath", str(tmp_path), "--capture-output", "--error-logfile", str(errlog))
    status, _, body = s.get("/")
    assert status == 200
    assert until(lambda: "printed-by-the-app" in errlog.read_text() and "stderr-of-the-app" in errlog.read_text()), \
        errlog.read_text()
    assert "printed-by-the-app" not in s.stdout()


def test_worker_classes(start_server):
    for klass, interface in (("uvicorn.workers.UvicornWorker", "asgi"), ("asgi", "asgi"), ("sync", "auto"),
                             ("gthread", "auto")):
        out = run_gantry("--print-config", "-k", klass, "probe:app")
        assert out.returncode == 0, out.stderr
        assert '\ninterface = "%s"\n' % interface in out.stdout, (klass, out.stdout)
    s = start_server("asgi_probe:app", "-k", "uvicorn.workers.UvicornWorker")
    status, _, _ = s.get("/")
    assert status == 200


def test_no_sendfile_sends_whole_files(start_server, tmp_path):
    import hashlib
    import urllib.parse
    data = os.urandom(3 * 1024 * 1024 + 17)   # several read pieces, an odd tail
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    static = tmp_path / "static"
    static.mkdir()
    (static / "s.bin").write_bytes(data[: 700 * 1024])
    s = start_server("probe:app", "--no-sendfile", "--static", "/s/=%s" % static)
    status, headers, body = s.get("/file?path=" + urllib.parse.quote(str(path)))
    assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(data).digest(), len(body)
    status, headers, body = s.get("/s/s.bin")
    assert status == 200 and body == data[: 700 * 1024], len(body)
    out = run_gantry("--print-config", "--no-sendfile", "probe:app")
    assert "\nsendfile = false\n" in out.stdout


def test_preload_with_a_config_file(start_server, tmp_path):
    """The master's interpreter read the file; with preload_app it loads the app too, after
    applying the file's chdir and raw_env, and the workers fork from it."""
    port = free_port()
    (tmp_path / "gunicorn.conf.py").write_text(
        "bind = '127.0.0.1:%d'\npreload_app = True\nworkers = 2\nchdir = %r\nraw_env = ['PRELOADED=1']\n"
        % (port, APPS))
    s = start_server("probe:app", bind=False, port=port, cwd=str(tmp_path))
    osenv = s.get_json("/osenv?k=PRELOADED")
    assert osenv["value"] == "1" and osenv["cwd"] == APPS
    assert s.get_json("/environ")["wsgi.multiprocess"] is True


def test_hup_with_a_config_file_loads_changed_code(start_server, tmp_path):
    """Without preload the workers import the app after the fork, so HUP loads new code, as
    with gunicorn (the master's interpreter holds only the config module)."""
    import signal
    from conftest import worker_pids
    port = free_port()
    app = tmp_path / "versioned.py"
    app.write_text("def app(e, r):\n    r('200 OK', [])\n    return [b'v1']\n")
    (tmp_path / "gunicorn.conf.py").write_text("bind = '127.0.0.1:%d'\npythonpath = %r\n" % (port, str(tmp_path)))
    s = start_server("versioned:app", bind=False, port=port, cwd=str(tmp_path),
                     env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert s.get("/")[2] == b"v1"
    before = worker_pids(s.pid)
    app.write_text("def app(e, r):\n    r('200 OK', [])\n    return [b'v2']\n")
    s.send(signal.SIGHUP)
    assert until(lambda: worker_pids(s.pid) and not set(worker_pids(s.pid)) & set(before)), s.log()
    assert until(lambda: s.get("/")[2] == b"v2"), s.log()
    assert "already loaded app" not in s.stderr()


def proc_ids(pid):
    """(uid, gid, supplementary groups) of a process, from /proc."""
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return int(fields["Uid"][0]), int(fields["Gid"][0]), sorted(int(g) for g in fields["Groups"])


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
@pytest.mark.parametrize("args, groups", [(["-u", "nobody", "-g", "nogroup"], [65534]),
                                          (["--user", "nobody", "--initgroups"], [65534])])
def test_workers_drop_privileges(start_server, tmp_path, args, groups):
    import pwd
    from conftest import worker_pids
    nobody = pwd.getpwnam("nobody")
    port = free_port()
    sock = tmp_path / "g.sock"
    os.chmod(tmp_path, 0o755)
    s = start_server("probe:app", *args, "-w", "2", "-b", "127.0.0.1:%d" % port, "-b", "unix:%s" % sock,
                     bind=False, port=port)
    s.assert_serving()
    assert until(lambda: len(worker_pids(s.pid)) == 2), s.log()
    assert proc_ids(s.pid)[0] == 0                 # the master keeps root
    for pid in worker_pids(s.pid):
        assert proc_ids(pid) == (nobody.pw_uid, nobody.pw_gid, groups), s.log()
    assert os.stat(sock).st_uid == nobody.pw_uid   # the socket file is the workers'
    assert s.get_json("/osenv?k=HOME")["cwd"] == APPS  # the app loaded as nobody and serves


def test_unknown_user_is_an_error():
    out = run_gantry("-u", "no-such-user-here", "probe:app")
    assert out.returncode != 0 and "no user named 'no-such-user-here'" in out.stderr


HOOKS_CONFIG = '''
import json, os
bind = "127.0.0.1:{port}"
workers = 2
chdir = {apps!r}
OUT = {out!r}

def record(name, **what):
    with open(OUT, "a") as f:
        f.write(json.dumps(dict(hook=name, pid=os.getpid(), **what)) + "\\n")

def on_starting(server):
    record("on_starting", server_pid=server.pid, workers=server.cfg.workers)

def when_ready(server):
    record("when_ready", server_pid=server.pid)
    server.log.info("hooks: ready %s", server.pid)

def pre_fork(server, worker):
    record("pre_fork", age=worker.age)

def post_fork(server, worker):
    record("post_fork", worker_pid=worker.pid, ppid=worker.ppid, age=worker.age)

def post_worker_init(worker):
    record("post_worker_init", worker_pid=worker.pid, age=worker.age)

def child_exit(server, worker):
    record("child_exit", worker_pid=worker.pid)

def nworkers_changed(server, new_value, old_value):
    record("nworkers_changed", new=new_value, old=old_value)

def on_reload(server):
    record("on_reload")

def on_exit(server):
    record("on_exit")
'''


def test_server_hooks_fire_once_per_event_with_what_they_were_given(start_server, tmp_path):
    import json
    import signal
    from conftest import worker_pids
    port = free_port()
    out = tmp_path / "hooks.jsonl"
    (tmp_path / "gunicorn.conf.py").write_text(HOOKS_CONFIG.format(port=port, apps=APPS, out=str(out)))
    s = start_server("probe:app", bind=False, port=port, cwd=str(tmp_path))

    def events(name=None):
        if not out.exists():
            return []
        rows = [json.loads(l) for l in out.read_text().splitlines()]
        return [r for r in rows if name is None or r["hook"] == name]

    assert until(lambda: len(events("post_worker_init")) == 2), events()
    master = s.pid
    assert [(e["server_pid"], e["workers"], e["pid"]) for e in events("on_starting")] == [(master, 2, master)]
    assert [e["pid"] for e in events("when_ready")] == [master]
    assert s.wait_for_output(r"\[INFO\] hooks: ready %d" % master), s.log()
    assert sorted(e["age"] for e in events("pre_fork")) == [1, 2] and all(e["pid"] == master for e in events("pre_fork"))
    workers = worker_pids(master)
    forks = events("post_fork")
    assert sorted(e["worker_pid"] for e in forks) == workers and all(e["pid"] == e["worker_pid"] for e in forks)
    assert all(e["ppid"] == master for e in forks) and sorted(e["age"] for e in forks) == [1, 2]
    assert sorted(e["worker_pid"] for e in events("post_worker_init")) == workers

    s.send(signal.SIGTTIN)
    assert until(lambda: len(events("nworkers_changed")) == 1 and len(events("post_worker_init")) == 3), events()
    assert events("nworkers_changed")[0]["new"] == 3 and events("nworkers_changed")[0]["old"] == 2

    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    assert until(lambda: [e["worker_pid"] for e in events("child_exit")] == [victim]), events()
    assert until(lambda: len(events("post_worker_init")) == 4), events()

    s.send(signal.SIGHUP)
    assert until(lambda: len(events("on_reload")) == 1), events()
    assert s.stop() == 0
    assert [e["pid"] for e in events("on_exit")] == [master]
    assert len(events("on_starting")) == 1 and len(events("when_ready")) == 1


def test_a_raising_post_fork_fails_the_boot(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text(
        "bind = '127.0.0.1:%d'\nchdir = %r\ndef post_fork(server, worker):\n    raise ValueError('no fork for you')\n"
        % (free_port(), APPS))
    out = run_gantry("probe:app", cwd=str(tmp_path))
    assert out.returncode != 0
    assert "Exception in the post_fork hook" in out.stderr and "ValueError: no fork for you" in out.stderr
    assert "Worker failed to boot" in out.stderr


def test_a_raising_on_starting_stops_the_start(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text(
        "chdir = %r\ndef on_starting(server):\n    raise RuntimeError('not today')\n" % APPS)
    out = run_gantry("probe:app", cwd=str(tmp_path))
    assert out.returncode != 0
    assert "Exception in the on_starting hook" in out.stderr and "RuntimeError: not today" in out.stderr
    assert "Listening at" not in out.stderr
