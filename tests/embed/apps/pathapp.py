"""Fixture: reports the interpreter's view of paths, environment and packages."""
import json
import os
import sys


def application(environ, start_response):
    try:
        import venv_only_mod
        venv_mod = venv_only_mod.VALUE
    except ImportError:
        venv_mod = None
    try:
        import django
        django_version = django.get_version()
    except ImportError:
        django_version = None
    body = json.dumps({
        "cwd": os.getcwd(),
        "sys.path": sys.path,
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "executable": sys.executable,
        "env": os.environ.get("GANTRY_CHILD_ENV"),
        "venv_mod": venv_mod,
        "django": django_version,
        "pid": os.getpid(),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
