"""The Python side of gantry's ASGI executor: the event loop it runs, how an ASGI app is told
from a WSGI one, what it prepares in the frameworks it knows, and the exception a send after
the client left raises (ASGI spec 2.4)."""
import asyncio
import inspect
import sys


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
