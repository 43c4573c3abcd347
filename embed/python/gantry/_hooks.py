"""The server hooks of a gunicorn config file (the module gantry._config kept as
sys.modules["__config__"]), called at gunicorn's moments with objects that offer what hooks use:
``server.log``, ``server.pid``, ``server.cfg``, ``worker.pid``, ``worker.ppid``, ``worker.age``,
``worker.log``. A hook that raises has its traceback logged; the caller decides the consequence.
"""
import os
import sys
import traceback
import types

import _gantry


class Log:
    """The methods of gunicorn's logger that hooks call, into gantry's error log."""

    def _emit(self, level, msg, args):
        try:
            text = (str(msg) % args) if args else str(msg)
        except Exception:
            text = "%s %r" % (msg, args)
        _gantry.log(level, text)

    def debug(self, msg, *args, **kwargs):
        self._emit("debug", msg, args)

    def info(self, msg, *args, **kwargs):
        self._emit("info", msg, args)

    def warning(self, msg, *args, **kwargs):
        self._emit("warning", msg, args)

    warn = warning

    def error(self, msg, *args, **kwargs):
        self._emit("error", msg, args)

    def critical(self, msg, *args, **kwargs):
        self._emit("critical", msg, args)

    def exception(self, msg, *args, **kwargs):
        self._emit("error", "%s\n%s" % (msg, traceback.format_exc().rstrip()), args)

    def log(self, level, msg, *args, **kwargs):
        names = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}
        self._emit(names.get(level, "info"), msg, args)


LOG = Log()


def _cfg():
    module = sys.modules.get("__config__")
    names = {k: v for k, v in vars(module).items() if not k.startswith("__")} if module else {}
    return types.SimpleNamespace(**names)


class Server:
    def __init__(self, pid, workers):
        self.pid = pid
        self.log = LOG
        self.cfg = _cfg()
        self.num_workers = workers
        self.proc_name = "gantry"


class Worker:
    def __init__(self, pid, ppid, age):
        self.pid = pid
        self.ppid = ppid
        self.age = age
        self.log = LOG
        self.cfg = _cfg()
        self.alive = True
        self.booted = False


_SERVER_ONLY = {"on_starting", "on_reload", "when_ready", "pre_exec", "on_exit"}
_SERVER_WORKER = {"pre_fork", "post_fork", "child_exit", "worker_exit"}
_WORKER_ONLY = {"post_worker_init", "worker_int", "worker_abort"}


def defined(name):
    module = sys.modules.get("__config__")
    return callable(getattr(module, name, None)) if module else False


def call(name, master_pid, workers, worker_pid, worker_age, new_value, old_value):
    """Calls the hook if the config file defines it. Returns True, or False after logging the
    traceback of a hook that raised."""
    module = sys.modules.get("__config__")
    hook = getattr(module, name, None) if module else None
    if not callable(hook):
        return True
    server = Server(master_pid, workers)
    worker = Worker(worker_pid, master_pid, worker_age)
    try:
        if name in _SERVER_ONLY:
            hook(server)
        elif name in _SERVER_WORKER:
            hook(server, worker)
        elif name in _WORKER_ONLY:
            hook(worker)
        elif name == "nworkers_changed":
            hook(server, new_value, old_value)
        return True
    except Exception:
        _gantry.log("error", "Exception in the %s hook (pid %d):\n%s" % (name, os.getpid(),
                                                                       traceback.format_exc().rstrip()))
        return False
