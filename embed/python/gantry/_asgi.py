"""The Python side of gantry's ASGI executor: the event loop it runs, how an ASGI app is told
from a WSGI one, what it prepares in the frameworks it knows, the exception a send after the
client left raises (ASGI spec 2.4), and a task's coroutine stack for the --timeout report."""
import asyncio
import inspect
import sys
import traceback


class ClientDisconnected(OSError):
    """Raised by `send` once the client has gone: the app may stop producing. Not logged as an
    error when it ends the app's task."""


def new_loop(kind):
    """The worker's event loop: uvloop when installed ("auto") or required ("uvloop"), else
    asyncio's own."""
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def loop_name(loop):
    module = type(loop).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"


def _is_coroutine_function(f):
    return inspect.iscoroutinefunction(f) or asyncio.iscoroutinefunction(f)


def is_asgi(app):
    """As uvicorn and hypercorn decide: an `async def` callable, or an object whose __call__ is
    one (Django's ASGIHandler, Starlette's apps)."""
    if _is_coroutine_function(app):
        return True
    if inspect.isfunction(app) or inspect.ismethod(app) or inspect.isclass(app):
        return False
    call = getattr(type(app), "__call__", None)
    return call is not None and _is_coroutine_function(call)


def prepare(app):
    """Before the first request: what gantry does for frameworks it knows. Django's ASGIHandler
    (when the app imported it: the app itself, or one that wraps or mounts it) gets its response
    closed when the client leaves mid-response (gantry.django.asgi)."""
    handlers = sys.modules.get("django.core.handlers.asgi")
    if handlers is not None:
        from gantry.django import asgi as django_asgi
        django_asgi.install(handlers.ASGIHandler)


def unsupported_lifespan_message(exc):
    return "ASGI 'lifespan' protocol appears unsupported (%s: %s)" % (type(exc).__name__, exc)


def task_stack(task):
    """Where a suspended task waits, as traceback lines (most recent call last): each coroutine
    of the chain it awaits through, file:line and function, then what the innermost one awaits
    when that is not a plain Future.
    Task.get_stack() gives only the outermost frame of a suspended coroutine: the chain is walked
    through cr_await (gi_yieldfrom for generator-based coroutines) instead."""
    frames, awaitable = [], task.get_coro()
    while awaitable is not None:
        frame = None
        for attr in ("cr_frame", "gi_frame", "ag_frame"):
            frame = getattr(awaitable, attr, None)
            if frame is not None:
                break
        if frame is None:
            break
        frames.append(traceback.FrameSummary(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        inner = None
        for attr in ("cr_await", "gi_yieldfrom", "ag_await"):
            inner = getattr(awaitable, attr, None)
            if inner is not None:
                break
        awaitable = inner
    text = "".join(traceback.format_list(frames))
    if awaitable is not None and type(awaitable).__name__ != "FutureIter":  # a Future says nothing more
        what = repr(awaitable)
        text += "  awaiting %s\n" % (what if len(what) <= 200 else what[:197] + "...")
    return text
