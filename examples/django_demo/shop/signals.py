"""Django's request_finished, observed: when DEMO_FINISHED_LOG names a file, each request's end is
appended to it as "finished db_open=<bool>" - whether this thread's default database connection
is still open once Django's own receiver (close_old_connections, connected before this one) ran.
A server that loses request_finished (a client leaving mid-response under ASGI) leaks that
connection; the end-to-end tests read the file to prove gantry does not."""
import os
import threading

from django.core.signals import request_finished
from django.db import connections

_lock = threading.Lock()


def note(line):
    path = os.environ.get("DEMO_FINISHED_LOG")
    if not path:
        return
    with _lock, open(path, "a") as f:
        f.write(line + "\n")


def _on_request_finished(sender, **kwargs):
    if os.environ.get("DEMO_FINISHED_LOG"):
        note("finished db_open=%s" % (connections["default"].connection is not None))


def connect():
    request_finished.connect(_on_request_finished, dispatch_uid="shop.signals")
