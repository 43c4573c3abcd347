"""Fixture app that cannot be imported: the server must report the traceback and exit."""

raise ImportError("broken_import fixture: deliberate import-time failure")


def app(environ, start_response):  # never reached
    start_response("200 OK", [])
    return [b""]
