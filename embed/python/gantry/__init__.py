"""gantry: the Python side of the gantry application server.

The server puts this package on sys.path itself; apps need no install step.
"""
__version__ = "0.1.0"

# threading.main_thread() is whichever thread first imports threading, and asyncio and uvloop set
# up their signal wake-up only on "the main thread". This package is imported on the process's
# main thread; without this, an app that imports nothing under --interface asgi had asyncio (and
# threading) first imported on the event loop's thread, and uvloop failed there with
# "set_wakeup_fd only works in main thread".
import threading  # noqa: E402,F401
