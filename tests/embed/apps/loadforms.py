"""Fixture for load_app's forms: each callable answers with its own name."""


def _app(name):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [name.encode()]
    return app


application = _app("application")
other = _app("other")
not_callable = 42


def factory(*args, **kwargs):
    return _app(f"factory {args!r} {kwargs!r}")


def factory_none():
    return None


class _Holder:
    class inner:
        app = staticmethod(_app("attr"))


holder = _Holder()
