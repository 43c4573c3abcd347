"""gantry.django_timing against real Django 3.2, in process, through Django's
WSGI handler (and its test Client where the exception path is concerned), and its ASGI handler."""
import os
import subprocess
import sys
import threading
from pathlib import Path
from time import perf_counter_ns
from wsgiref.util import setup_testing_defaults

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "embed" / "python"))
sys.path.insert(0, str(HERE / "djtiming_project"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djt_settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.handlers import base as django_base  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from djt_app import middleware as djt_middleware  # noqa: E402
from djt_app import views as djt_views  # noqa: E402
from djt_app.models import Author, Book  # noqa: E402
from gantry import django_timing  # noqa: E402

N_BOOKS = 5
# MiddlewareNotUsed removes a middleware from Django's chain, so from the record too.
EXPECTED_MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("NotUsedMiddleware")]


@pytest.fixture(scope="module", autouse=True)
def database():
    call_command("migrate", run_syncdb=True, verbosity=0)
    for i in range(N_BOOKS):
        # One author per book: every book.author access is a distinct row.
        Book.objects.create(title=f"b{i}", author=Author.objects.create(name=f"a{i}"))


@pytest.fixture
def handler():
    django_timing.enable()
    django_timing.take()  # nothing left over from an earlier test
    return WSGIHandler()


def call(handler, path, headers_out=None):
    """One request through the WSGI handler: (status, body, wall seconds around it);
    the response headers are appended to headers_out if given."""
    environ = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = path
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)
        if headers_out is not None:
            headers_out.extend(headers)

    t0 = perf_counter_ns()
    result = handler(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        result.close()
    return statuses[0], body, (perf_counter_ns() - t0) / 1e9


def test_middleware_names_order_and_times_fit_in_the_wall_time(handler):
    status, body, wall = call(handler, "/ping/")
    assert status.startswith("200") and body == b"ok"
    record = django_timing.take()
    assert [name for name, _ in record["middleware"]] == EXPECTED_MIDDLEWARE
    assert all(isinstance(s, float) and s >= 0 for _, s in record["middleware"])
    view_name, view_seconds = record["view"]
    assert view_name == "djt_app.views.ping"
    assert view_seconds >= 0
    assert sum(s for _, s in record["middleware"]) + view_seconds <= wall
    assert record["db"] == {"queries": 0, "seconds": 0.0, "repeated": 0}


def test_middleware_time_is_exclusive_and_includes_its_hooks(handler):
    status, _, wall = call(handler, "/slow/")
    assert status.startswith("200")
    record = django_timing.take()
    times = dict(record["middleware"])
    slow_mw = times["djt_app.middleware.SlowMiddleware"]
    own = djt_middleware.SLOW_CALL + djt_middleware.SLOW_PROCESS_VIEW
    # Its __call__ sleep and its process_view sleep are its own time...
    assert slow_mw >= own
    # ...but the view it wraps (a 200 ms sleep) is not.
    assert slow_mw < djt_views.SLOW_VIEW / 2
    assert record["view"][0] == "djt_app.views.slow"
    assert record["view"][1] >= djt_views.SLOW_VIEW
    # The outer middleware did not get the inner ones' time either.
    for name in EXPECTED_MIDDLEWARE:
        if name != "djt_app.middleware.SlowMiddleware":
            assert times[name] < own, name
    assert sum(times.values()) + record["view"][1] <= wall


def test_n_plus_one_is_reported(handler):
    status, body, wall = call(handler, "/books/")
    assert status.startswith("200")
    assert body.decode() == ",".join(f"a{i}" for i in range(N_BOOKS))
    db = django_timing.take()["db"]
    # 1 query for the books + N identical "SELECT ... author WHERE id = %s":
    # N+1 queries, 2 distinct SQL texts, so N-1 repeated.
    assert db["queries"] == N_BOOKS + 1
    assert db["repeated"] == N_BOOKS - 1
    assert 0 < db["seconds"] <= wall


def test_select_related_has_no_repeats(handler):
    call(handler, "/books-joined/")
    assert django_timing.take()["db"]["queries"] == 1
    call(handler, "/books-joined/")
    call(handler, "/books-joined/")
    # Records do not accumulate across requests that were not taken.
    db = django_timing.take()["db"]
    assert (db["queries"], db["repeated"]) == (1, 0)


def test_take_resets(handler):
    assert django_timing.take() is None
    call(handler, "/ping/")
    assert django_timing.take() is not None
    assert django_timing.take() is None


def test_record_is_per_thread(handler):
    records = {}

    def worker():
        call(handler, "/books/")
        records["worker"] = django_timing.take()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert django_timing.take() is None  # nothing ran on this thread
    assert records["worker"]["db"]["queries"] == N_BOOKS + 1


def test_exception_in_view_still_yields_a_record(handler):
    status, _, _ = call(handler, "/boom/")
    assert status.startswith("500")
    record = django_timing.take()
    assert record["view"][0] == "djt_app.views.boom"
    assert [name for name, _ in record["middleware"]] == EXPECTED_MIDDLEWARE


def test_exception_reraised_by_test_client_still_yields_a_record(handler):
    with pytest.raises(RuntimeError, match="deliberate failure"):
        Client().get("/boom/")
    record = django_timing.take()
    assert record["view"][0] == "djt_app.views.boom"
    assert len(record["middleware"]) == len(EXPECTED_MIDDLEWARE)


def test_class_based_view_is_named_by_its_class(handler):
    call(handler, "/class/")
    assert django_timing.take()["view"][0] == "djt_app.views.ClassView"


def test_resolver_404_has_middleware_but_no_view(handler):
    status, _, _ = call(handler, "/nowhere/")
    assert status.startswith("404")
    record = django_timing.take()
    assert record["view"] is None
    assert [name for name, _ in record["middleware"]] == EXPECTED_MIDDLEWARE


def test_enable_twice_is_harmless(handler):
    django_timing.enable()
    django_timing.enable()
    second = WSGIHandler()
    call(second, "/books/")
    record = django_timing.take()
    # Wrapped once: each middleware listed once, the queries counted once.
    assert [name for name, _ in record["middleware"]] == EXPECTED_MIDDLEWARE
    assert record["db"]["queries"] == N_BOOKS + 1


def test_disable_restores_django_and_untimed_handlers_record_nothing(handler):
    try:
        django_timing.disable()
        assert not django_timing.is_enabled()
        assert django_base.BaseHandler.load_middleware.__module__ == "django.core.handlers.base"
        plain = WSGIHandler()
        status, body, _ = call(plain, "/books/")
        assert status.startswith("200") and body
        assert django_timing.take() is None
        # No execute wrapper of ours was left on the connection.
        from django.db import connection
        assert connection.execute_wrappers == []
    finally:
        django_timing.enable()


def test_queries_outside_a_request_are_not_recorded(handler):
    call(handler, "/ping/")
    list(Book.objects.all())  # after the chain returned: not this request's
    assert django_timing.take()["db"]["queries"] == 0


def test_enable_before_settings_then_app_import_like_the_server(tmp_path):
    """The server's order: enable() first, then the app module picks its settings
    and builds the WSGI handler at import (get_wsgi_application())."""
    script = tmp_path / "server_like.py"
    script.write_text(f"""
import io, os, sys
sys.path[:0] = [{str(HERE.parent.parent / "embed" / "python")!r}, {str(HERE / "djtiming_project")!r}]
from gantry import django_timing
django_timing.enable()
django_timing.enable()
from django.conf import settings
assert not settings.configured
os.environ["DJANGO_SETTINGS_MODULE"] = "djt_settings"
from django.core.wsgi import get_wsgi_application
application = get_wsgi_application()
from django.core.management import call_command
call_command("migrate", run_syncdb=True, verbosity=0)
from djt_app.models import Author, Book
for i in range(3):
    Book.objects.create(title=str(i), author=Author.objects.create(name=str(i)))
environ = {{"REQUEST_METHOD": "GET", "PATH_INFO": "/books/", "SERVER_NAME": "t", "SERVER_PORT": "80",
           "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr}}
result = application(environ, lambda status, headers, exc_info=None: None)
b"".join(result)
result.close()
record = django_timing.take()
print(record["view"][0], record["db"]["queries"], record["db"]["repeated"], len(record["middleware"]))
""")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["djt_app.views.books_n_plus_one", "4", "2",
                                  str(len(EXPECTED_MIDDLEWARE))]


def test_middleware_that_answers_itself(handler):
    status, body, wall = call(handler, "/short/")
    assert status.startswith("200") and body == b"short"
    record = django_timing.take()
    assert record["view"] is None
    times = dict(record["middleware"])
    assert list(times) == EXPECTED_MIDDLEWARE  # the full chain, in order, even if not reached
    assert djt_middleware.SLOW_CALL <= times["djt_app.middleware.SlowMiddleware"] <= wall
    inner = EXPECTED_MIDDLEWARE[EXPECTED_MIDDLEWARE.index("djt_app.middleware.SlowMiddleware") + 1:]
    assert all(times[name] == 0.0 for name in inner)


def test_atomic_requests_view_and_queries(handler):
    from django.db import connection
    connection.settings_dict["ATOMIC_REQUESTS"] = True
    try:
        call(handler, "/books/")
        call(handler, "/books/")  # a new atomic wrapper per request: still the same name
    finally:
        connection.settings_dict["ATOMIC_REQUESTS"] = False
    record = django_timing.take()
    assert record["view"][0] == "djt_app.views.books_n_plus_one"
    # On sqlite, transaction.atomic runs "BEGIN" through the cursor: one more
    # query, distinct, so repeated is unchanged. COMMIT goes through the
    # connection, not a cursor, and is not counted.
    assert record["db"]["queries"] == N_BOOKS + 2
    assert record["db"]["repeated"] == N_BOOKS - 1


def test_an_async_only_middleware_in_a_sync_chain_is_timed_too(handler):
    from django.test import override_settings
    # Above an async-only middleware Django runs every async-capable middleware
    # (SecurityMiddleware would be one) async too: only sync-only ones stay sync.
    # The async layers (run through async_to_sync, in a copy of this context) are timed as well.
    chain = [
        "djt_app.middleware.function_middleware",
        "djt_app.middleware.async_only",
        "django.middleware.common.CommonMiddleware",
    ]
    with override_settings(MIDDLEWARE=chain):
        mixed = WSGIHandler()
        headers = []
        status, body, wall = call(mixed, "/books/", headers)
    assert status.startswith("200") and body
    assert ("X-Async-Only", "1") in headers  # it did run
    record = django_timing.take()
    assert [name for name, _ in record["middleware"]] == chain
    assert all(s >= 0 for _, s in record["middleware"])
    assert record["view"][0] == "djt_app.views.books_n_plus_one"
    # The inner layers ran on this thread again (asgiref's thread_sensitive): all counted.
    assert record["db"]["queries"] == N_BOOKS + 1
    assert sum(s for _, s in record["middleware"]) + record["view"][1] <= wall


def _asgi_call(handler, path):
    """One request through Django's ASGIHandler, in the running loop; the record is taken when
    the last body message is sent (in the request task's context, as gantry's send does):
    (status, body, record)."""
    import asyncio
    out = {"body": b""}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        else:
            out["body"] += message.get("body", b"")
            if not message.get("more_body", False):
                out["record"] = django_timing.take()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1),
             "server": ("testserver", 80)}

    async def run():
        await handler(scope, receive, send)
        return out["status"], out["body"], out.get("record")
    return asyncio.ensure_future(run())


def test_an_asgi_chain_times_each_interleaved_request_apart():
    import asyncio
    from django.core.handlers.asgi import ASGIHandler
    django_timing.enable()
    handler = ASGIHandler()
    paths = ["/books/", "/ping/", "/books-joined/", "/slow/"] * 3
    expected = {"/books/": ("djt_app.views.books_n_plus_one", N_BOOKS + 1),
                "/ping/": ("djt_app.views.ping", 0),
                "/books-joined/": ("djt_app.views.books_joined", 1),
                "/slow/": ("djt_app.views.slow", 0)}

    async def all_at_once():
        return await asyncio.gather(*[_asgi_call(handler, p) for p in paths])

    results = asyncio.run(all_at_once())
    for path, (status, body, record) in zip(paths, results):
        assert status == 200 and body
        assert record is not None, path
        assert [name for name, _ in record["middleware"]] == EXPECTED_MIDDLEWARE
        assert all(s >= 0 for _, s in record["middleware"])
        view, queries = expected[path]
        assert record["view"][0] == view
        assert record["db"]["queries"] == queries, (path, record)
    slow = [record for path, (_, _, record) in zip(paths, results) if path == "/slow/"]
    assert all(r["view"][1] >= djt_views.SLOW_VIEW for r in slow)
    assert django_timing.take() is None  # each record was taken in its own task's context


def test_handler_run_inside_a_view(handler):
    status, body, wall = call(handler, "/nested/")
    assert status.startswith("200")
    assert body.decode() == ",".join(f"a{i}" for i in range(N_BOOKS))
    record = django_timing.take()
    assert [name for name, _ in record["middleware"]] == EXPECTED_MIDDLEWARE
    view_name, view_seconds = record["view"]
    assert view_name == "djt_app.views.nested"
    assert record["db"]["queries"] == N_BOOKS + 1  # the inner request's queries ran in this one
    assert sum(s for _, s in record["middleware"]) + view_seconds <= wall
    assert django_timing.take() is None


def test_process_exception_hook_is_its_middlewares_time(handler):
    status, body, wall = call(handler, "/rescued/")
    assert status.startswith("200") and body == b"rescued"
    record = django_timing.take()
    times = dict(record["middleware"])
    assert times["djt_app.middleware.SlowMiddleware"] >= djt_middleware.SLOW_PROCESS_EXCEPTION
    assert record["view"][0] == "djt_app.views.boom"
    assert record["view"][1] < djt_middleware.SLOW_PROCESS_EXCEPTION  # the hook ran after it
    assert sum(times.values()) + record["view"][1] <= wall
