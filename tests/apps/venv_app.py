"""Fixture app for --virtualenv: imports a module that exists only in the test's venv, and django."""
import json
import sys

import django
import venv_only_module


def app(environ, start_response):
    body = json.dumps({
        "venv_marker": venv_only_module.MARKER,
        "venv_module_file": venv_only_module.__file__,
        "django": django.get_version(),
        "prefix": sys.prefix,
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
