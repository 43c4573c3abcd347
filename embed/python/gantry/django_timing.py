"""Per-request timing inside Django (`--timing full`): each Django middleware,
the view, and the database.

    from gantry import django_timing
    django_timing.enable()      # before the handler is built (get_wsgi_application(), get_asgi_application())
    ...                         # a request runs through the handler in this context
    django_timing.take()        # -> {"middleware": [(path, s), ...], "view": (name, s) | None,
                                #     "db": {"queries": n, "seconds": s, "repeated": r}} | None

How: enable() patches django.core.handlers.base, never the user's settings.
While BaseHandler.load_middleware builds a chain (sync for WSGI, async for ASGI), every layer it
wraps with convert_exception_to_response (each middleware instance, and the innermost
_get_response / _get_response_async) gets that function's wrapper (sync or async, as Django
would) with a timer fused in; the settings path of each
middleware comes from the import_string call that loaded it, so names are
exactly the entries of settings.MIDDLEWARE. A middleware's time is exclusive:
its time inside minus the time of the layer it called. Its process_view /
process_template_response / process_exception hooks (run by Django from the
innermost layer) are added to its own time. The view is timed by wrapping
what make_view_atomic returns (so a transaction commit under ATOMIC_REQUESTS
counts as view time). Database queries are counted by an execute_wrapper put on
each connection object when it connects; it records only while a timed chain
runs in its context.

The request's record lives in a contextvars.ContextVar, not in the thread: under ASGI many
requests interleave on the loop thread, each in its own task (its own context), and the sync
code Django runs for them in a thread (sync views, sync middleware hooks, sync_to_async from an
async view) runs in a copy of that context, so it sees the same record. A WSGI thread has a
context of its own, which serves the same way. An async chain's times are wall-clock times
within the request: a middleware's includes its awaits, during which other requests ran.
take_raw() takes the record finished in the caller's context: the WSGI executor calls it on
the request's thread after the iterable's close(); the ASGI executor calls it from the app's
send() of the response's last message, which runs in the app task's context.

`repeated` is queries minus distinct SQL texts (parameters not included): a loop
that reads a ForeignKey of N rows without select_related runs the same
"SELECT ... WHERE id = %s" N times, so N+1 queries give repeated == N-1.
executemany() counts as one query.

A chain that mixes both (an async-only middleware in a WSGI chain, a sync-only one in an ASGI
chain) has each layer timed in its own mode: Django's async_to_sync / sync_to_async between them
carry the context along. Not timed: queries run after the chain returned, e.g. while a
StreamingHttpResponse body is iterated.

The per-request work is two perf_counter_ns() calls and an integer addition
per layer, hook and view, plus one small record; names and seconds are only
built in take(). Measured on Django's default stack (7 middleware): ~0.2 us per
layer over Django's own wrapper, ~1.5 us for take(), ~4 us per request in all
(tests/python/djtiming_project/bench_overhead.py).
"""
import asyncio
import contextvars
import threading
from functools import wraps
from time import perf_counter_ns

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers import base as _base
from django.core.handlers.exception import response_for_exception
from django.db import connections
from django.db.backends.signals import connection_created

__all__ = ["enable", "disable", "take", "is_enabled"]


class _State(threading.local):
    build = None   # _Build while load_middleware builds a chain on this thread


_tl = _State()
_active = contextvars.ContextVar("gantry_django_timing_active", default=None)  # the running request's _Record
_done = contextvars.ContextVar("gantry_django_timing_done", default=None)      # the last finished one, until take()


class _Chain:
    """One built middleware chain. Layer 0 is the innermost _get_response; layer i
    (i >= 1) is a middleware whose get_response is layer i-1."""
    __slots__ = ("names", "index", "out")

    def __init__(self):
        self.names = [None]
        self.index = {}  # id(middleware instance) -> layer index, for its hooks
        self.out = ()    # (name, i) outermost first, set when the build is over

    def finish(self):
        self.out = tuple((self.names[i], i) for i in range(len(self.names) - 1, 0, -1))


class _Build:
    __slots__ = ("chain", "path")

    def __init__(self):
        self.chain = _Chain()
        self.path = None


class _Record:
    # ns[i]: layer i's inclusive time; ns[n + i]: time in layer i's middleware hooks.
    # Exclusive times are only worked out in take().
    __slots__ = ("chain", "ns", "view", "view_ns", "queries", "db_ns", "sqls")

    def __init__(self, chain):
        self.chain = chain
        self.ns = [0] * (2 * len(chain.names))
        self.view = None
        self.view_ns = 0
        self.queries = 0
        self.db_ns = 0
        self.sqls = None  # distinct SQL texts, made at the first query


def _db_wrapper(execute, sql, params, many, context):
    rec = _active.get()
    if rec is None:
        return execute(sql, params, many, context)
    t0 = perf_counter_ns()
    try:
        return execute(sql, params, many, context)
    finally:
        rec.db_ns += perf_counter_ns() - t0
        rec.queries += 1
        if rec.sqls is None:
            rec.sqls = {sql}
        else:
            rec.sqls.add(sql)


def _add_db_wrapper(connection):
    if _db_wrapper not in connection.execute_wrappers:
        # First in the list = outermost: the user's own wrappers' time counts as query time.
        connection.execute_wrappers.insert(0, _db_wrapper)


def _on_connection_created(sender, connection, **kwargs):
    _add_db_wrapper(connection)


def _timed_layer(chain, idx, get_response):
    # Django's own convert_exception_to_response (sync branch) with the timer
    # fused in: one Python frame per layer, as without timing, instead of two.
    @wraps(get_response)
    def layer(request):
        rec = _active.get()
        outermost = rec is None
        if outermost:
            rec = _Record(chain)
            token = _active.set(rec)
            _done.set(None)
        elif rec.chain is not chain:  # another handler called from inside a view: not ours
            try:
                return get_response(request)
            except Exception as exc:
                return response_for_exception(request, exc)
        t0 = perf_counter_ns()
        try:
            response = get_response(request)
        except Exception as exc:
            response = response_for_exception(request, exc)
        finally:
            rec.ns[idx] += perf_counter_ns() - t0
            if outermost:
                _active.reset(token)
                _done.set(rec)
        return response
    return layer


def _timed_layer_async(chain, idx, get_response):
    # The same for the async branch (an ASGI chain).
    @wraps(get_response)
    async def layer(request):
        rec = _active.get()
        outermost = rec is None
        if outermost:
            rec = _Record(chain)
            token = _active.set(rec)
            _done.set(None)
        elif rec.chain is not chain:
            try:
                return await get_response(request)
            except Exception as exc:
                return await sync_to_async(response_for_exception, thread_sensitive=False)(request, exc)
        t0 = perf_counter_ns()
        try:
            response = await get_response(request)
        except Exception as exc:
            response = await sync_to_async(response_for_exception, thread_sensitive=False)(request, exc)
        finally:
            rec.ns[idx] += perf_counter_ns() - t0
            if outermost:
                _active.reset(token)
                _done.set(rec)
        return response
    return layer


def _timed_hook(chain, idx, method):
    slot = len(chain.names) + idx

    def hook(*args):
        rec = _active.get()
        if rec is None or rec.chain is not chain:
            return method(*args)
        ns = rec.ns
        t0 = perf_counter_ns()
        try:
            return method(*args)
        finally:
            ns[slot] += perf_counter_ns() - t0
    hook.__self__ = _owner(method)  # Django names hooks by __self__ in its error messages
    hook.__wrapped__ = method
    return hook


def _timed_hook_async(chain, idx, method):
    slot = len(chain.names) + idx

    async def hook(*args):
        rec = _active.get()
        if rec is None or rec.chain is not chain:
            return await method(*args)
        ns = rec.ns
        t0 = perf_counter_ns()
        try:
            return await method(*args)
        finally:
            ns[slot] += perf_counter_ns() - t0
    hook.__self__ = _owner(method)
    hook.__wrapped__ = method
    return hook


def _owner(method):
    # A hook's middleware instance: a bound method's __self__, or that of the method an async
    # chain adapted with sync_to_async (whose .func it is).
    owner = getattr(method, "__self__", None)
    if owner is None:
        owner = getattr(getattr(method, "func", None), "__self__", None)
    return owner


def _timed_view(view, callback):
    # `callback` is the resolved view (named in take()); `view` may be its
    # per-request transaction.atomic wrapper.
    def timed(*args, **kwargs):
        rec = _active.get()
        if rec is None or rec.view is not None:  # a view run by a handler inside a view
            return view(*args, **kwargs)
        rec.view = callback
        t0 = perf_counter_ns()
        try:
            return view(*args, **kwargs)
        finally:
            rec.view_ns += perf_counter_ns() - t0
    timed.__wrapped__ = view
    return timed


def _timed_view_async(view, callback):
    # An async view (awaited by an ASGI chain; a WSGI chain runs it with async_to_sync).
    async def timed(*args, **kwargs):
        rec = _active.get()
        if rec is None or rec.view is not None:
            return await view(*args, **kwargs)
        rec.view = callback
        t0 = perf_counter_ns()
        try:
            return await view(*args, **kwargs)
        finally:
            rec.view_ns += perf_counter_ns() - t0
    timed.__wrapped__ = view
    return timed


def _timed_view_for(view, callback):
    return _timed_view_async(view, callback) if asyncio.iscoroutinefunction(view) else _timed_view(view, callback)


_orig = {}


def _import_string(path):
    build = _tl.build
    if build is not None:
        build.path = path
    return _orig["import_string"](path)


def _convert_exception_to_response(get_response):
    build = _tl.build
    if build is None:
        return _orig["convert_exception_to_response"](get_response)
    chain = build.chain
    if build.path is None:  # the first call wraps _get_response itself: layer 0
        idx = 0
    else:
        chain.names.append(build.path)
        idx = len(chain.names) - 1
        chain.index[id(get_response)] = idx
        build.path = None
    if asyncio.iscoroutinefunction(get_response):
        return _timed_layer_async(chain, idx, get_response)
    return _timed_layer(chain, idx, get_response)


def _load_middleware(self, is_async=False):
    build = _Build()
    _tl.build = build
    try:
        _orig["load_middleware"](self, is_async)
    finally:
        _tl.build = None
    chain = build.chain
    chain.finish()
    for attr in ("_view_middleware", "_template_response_middleware", "_exception_middleware"):
        methods = getattr(self, attr)
        for i, method in enumerate(methods):
            idx = chain.index.get(id(_owner(method)))
            if idx is not None:
                timed = _timed_hook_async if asyncio.iscoroutinefunction(method) else _timed_hook
                methods[i] = timed(chain, idx, method)
    self._gantry_timed = True


def _make_view_atomic(self, callback):
    view = _orig["make_view_atomic"](self, callback)
    if not self._gantry_timed:
        return view
    if view is callback:  # no ATOMIC_REQUESTS wrapper: reuse one timer per view
        try:
            return _timed_views[callback]
        except KeyError:
            pass
        except TypeError:  # unhashable callable
            return _timed_view_for(view, callback)
        if len(_timed_views) >= 4096:  # views made per request would grow it forever
            _timed_views.clear()
        # asyncio.iscoroutinefunction costs ~1 us: asked once per view, here.
        timed = _timed_view_for(view, callback)
        _timed_views[callback] = timed
        return timed
    # transaction.atomic made a new wrapper for this request (never for async views).
    return _timed_view_for(view, callback)


_timed_views = {}


def enable():
    """Install the timing. Idempotent. Handlers built before this call stay untimed,
    so call it before the WSGI or ASGI application is created."""
    if _orig:
        return
    _orig["import_string"] = _base.import_string
    _orig["convert_exception_to_response"] = _base.convert_exception_to_response
    _orig["load_middleware"] = _base.BaseHandler.load_middleware
    _orig["make_view_atomic"] = _base.BaseHandler.make_view_atomic
    _base.import_string = _import_string
    _base.convert_exception_to_response = _convert_exception_to_response
    _base.BaseHandler.load_middleware = _load_middleware
    _base.BaseHandler.make_view_atomic = _make_view_atomic
    _base.BaseHandler._gantry_timed = False  # True on handlers whose sync chain is timed
    # The query counter goes on each connection object once, when it connects
    # (before its first query), not per request: adding and removing it on
    # every alias per request cost ~3.5 us, a few % of a tiny view. Outside a
    # request it only passes the call through.
    connection_created.connect(_on_connection_created, dispatch_uid=__name__)
    if settings.configured:  # enable() may come before the app chose its settings
        for connection in connections.all():  # already open on this thread
            if connection.connection is not None:
                _add_db_wrapper(connection)


def disable():
    """Undo enable(): handlers built from now on are plain Django. Handlers built
    while enabled keep timing middleware and views, but queries are no longer
    counted on connections opened from now on, nor on this thread's."""
    if not _orig:
        return
    _base.import_string = _orig["import_string"]
    _base.convert_exception_to_response = _orig["convert_exception_to_response"]
    _base.BaseHandler.load_middleware = _orig["load_middleware"]
    _base.BaseHandler.make_view_atomic = _orig["make_view_atomic"]
    connection_created.disconnect(dispatch_uid=__name__)
    for connection in connections.all() if settings.configured else ():
        # Other threads' connections keep it: it passes calls through, unused.
        while _db_wrapper in connection.execute_wrappers:
            connection.execute_wrappers.remove(_db_wrapper)
    _orig.clear()


def is_enabled():
    return bool(_orig)


_view_names = {}


def _view_name(view):
    try:
        return _view_names[view]
    except KeyError:
        pass
    except TypeError:  # unhashable callable
        return _qualified(view)
    if len(_view_names) >= 4096:  # views made per request would grow it forever
        _view_names.clear()
    name = _view_names[view] = _qualified(view)
    return name


def _qualified(view):
    target = getattr(view, "view_class", None) or view  # class-based views
    if not hasattr(target, "__qualname__"):
        target = type(target)
    module = getattr(target, "__module__", None)
    return f"{module}.{target.__qualname__}" if module else target.__qualname__


def take_raw():
    """take() for the server: the last finished request's record as the raw tuple
    (layers, ns, view_name, view_ns, queries, db_ns, repeated), or None, and resets.
    `layers` is ((name, i), ...) outermost first; a layer's own time is
    ns[i] - ns[i - 1] + ns[n + i] with n = len(ns) // 2 (its inclusive time minus the
    layer it called, plus its hooks). Nothing is built per middleware: the server
    works the numbers out natively, so the cost per request stays a few hundred
    instructions."""
    rec = _done.get()
    if rec is None:
        return None
    _done.set(None)
    sqls = rec.sqls
    return (rec.chain.out, rec.ns, _view_name(rec.view) if rec.view is not None else None, rec.view_ns,
            rec.queries, rec.db_ns, rec.queries - len(sqls) if sqls else 0)


def take():
    """The timing of the last request finished in this context (thread, or ASGI task), as plain data, or None.
    Resets: a second call returns None until another request finishes."""
    raw = take_raw()
    if raw is None:
        return None
    layers, ns, view, view_ns, queries, db_ns, repeated = raw
    n = len(ns) // 2
    # Exclusive: own inclusive time minus the inclusive time of the layer it called
    # (0 when it answered without calling it), plus its hooks' time.
    middleware = [(name, (ns[i] - ns[i - 1] + ns[n + i]) / 1e9) for name, i in layers]
    return {
        "middleware": middleware,
        "view": (view, view_ns / 1e9) if view is not None else None,
        "db": {"queries": queries, "seconds": db_ns / 1e9, "repeated": repeated},
    }
