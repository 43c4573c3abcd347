"""A WSGI app that times Django's cache API inside a gantry worker: GantryCache (the server's shared
store) against LocMemCache, get and set of 1 KB values. GET / answers the microseconds per call as
JSON. Used by cache_compare.py."""
import json
import os
import timeit

import django
from django.conf import settings

if not settings.configured:
    settings.configure(USE_TZ=True)
    django.setup()

from django.core.cache.backends.locmem import LocMemCache  # noqa: E402

from gantry.django.cache import GantryCache  # noqa: E402

VALUE = os.urandom(512).hex()  # 1 KB of text, the common case (rendered fragments, JSON)


def per_call_us(cache):
    keys = ["key-%d" % i for i in range(100)]
    for k in keys:
        cache.set(k, VALUE)
    n = 20000
    get = min(timeit.repeat(lambda: [cache.get(k) for k in keys], number=n // 100, repeat=5)) / n * 1e6
    set_ = min(timeit.repeat(lambda: [cache.set(k, VALUE) for k in keys], number=n // 100, repeat=5)) / n * 1e6
    assert cache.get(keys[0]) == VALUE
    return {"get": get, "set": set_}


def app(environ, start_response):
    result = {"gantry": per_call_us(GantryCache("bench", {})), "locmem": per_call_us(LocMemCache("bench", {}))}
    body = json.dumps(result).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
