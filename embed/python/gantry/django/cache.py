"""A Django cache backend on gantry's store:

    CACHES = {"default": {"BACKEND": "gantry.django.cache.GantryCache"}}

Inside gantry all workers of the server share one store in shared memory, so `cache.set` in one
worker is a hit in every other one, and `@cache_page`, `{% cache %}` fragments and the low-level
API need no Redis or memcached. A server started with `--cache redis://...` puts Redis behind that
store, and the cache is shared by every server using that Redis: reads try the server's store,
then Redis; writes go to both; add and incr are atomic in Redis. Redis down, the server's store
alone serves. Outside the server (manage.py, tests run with plain python) a process-local store
stands in, as LocMemCache would.

Semantics are Django's (BaseCache): timeouts (None = forever, 0 = not stored), versions, key
prefixes and KEY_FUNCTION, get/set/add/delete/get_many/set_many/delete_many/incr/decr/touch/
has_key/clear. LOCATION names the namespace: clear() empties that namespace only.

Values: ints are kept as decimal text so incr/decr are atomic in the store across workers; bytes
and str are kept as they are; anything else is pickled, as LocMemCache does.
"""
import functools
import pickle

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache, default_key_func

from gantry import cache as _gantry_cache

_PICKLED, _INT, _BYTES, _STR = 0, 1, 2, 3


def _encode(value):
    kind = type(value)
    if kind is int:
        return str(value), _INT
    if kind is bytes:
        return value, _BYTES
    if kind is str:
        return value, _STR
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL), _PICKLED


def _decode(data, flags):
    if flags == _STR:
        return data.decode()
    if flags == _BYTES:
        return data
    if flags == _INT:
        return int(data)
    return pickle.loads(data)


class GantryCache(BaseCache):
    def __init__(self, location, params):
        super().__init__(params)
        self._namespace = "dj:%s:" % (location or "default")
        native = getattr(_gantry_cache, "_native", None)
        if native is not None and native.available() and self.key_func is default_key_func:
            # Inside gantry, with Django's default key function: get and set run in C, one call
            # each (the methods below stay the reference and serve every other case).
            core = native.BackendCore(self._namespace, self.key_prefix, self.version, self.default_timeout,
                                      DEFAULT_TIMEOUT, self.validate_key,
                                      functools.partial(pickle.dumps, protocol=pickle.HIGHEST_PROTOCOL), pickle.loads)
            self.get = core.get
            self.set = core.set

    @property
    def _store(self):
        return _gantry_cache.tiered_store()

    def _ttl(self, timeout):
        """Seconds to keep, None for forever; 0 or less means "not stored"."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return timeout

    def _key(self, key, version):
        key = self.make_key(key, version=version)
        self.validate_key(key)
        return self._namespace + key

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        k = self._key(key, version)
        ttl = self._ttl(timeout)
        data, flags = _encode(value)
        if ttl is not None and ttl <= 0:
            # Django: add() with timeout 0 reports success only if the key was absent, and stores nothing.
            return not self._store.contains(k)
        return self._store.add(k, data, flags, ttl)

    def get(self, key, default=None, version=None):
        item = self._store.get(self._key(key, version))
        if item is None:
            return default
        return _decode(*item)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        k = self._key(key, version)
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            self._store.delete(k)
            return
        data, flags = _encode(value)
        if not self._store.set(k, data, flags, ttl):
            self._store.delete(k)  # too large for the store: like memcached, the key is just absent

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        k = self._key(key, version)
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            return self._store.delete(k)
        return self._store.touch(k, ttl)

    def delete(self, key, version=None):
        return self._store.delete(self._key(key, version))

    def has_key(self, key, version=None):
        return self._store.contains(self._key(key, version))

    def incr(self, key, delta=1, version=None):
        k = self._key(key, version)
        value = self._store.incr(k, delta)
        if value is not None:
            return value
        item = self._store.get(k)
        if item is None:
            raise ValueError("Key '%s' not found" % key)
        # Not kept as an int (a float, a Decimal, a str...): Python decides, as LocMemCache does.
        new_value = _decode(*item) + delta
        ttl = self._store.ttl(k)
        if ttl == -1.0:
            raise ValueError("Key '%s' not found" % key)
        data, flags = _encode(new_value)
        self._store.set(k, data, flags, ttl)
        return new_value

    def get_many(self, keys, version=None):
        keys = list(keys)
        items = self._store.get_many([self._key(key, version) for key in keys])  # one Redis round trip
        return {key: _decode(*item) for key, item in zip(keys, items) if item is not None}

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            self.delete_many(data, version=version)
            return []
        entries = []
        for key, value in data.items():
            encoded, flags = _encode(value)
            entries.append((self._key(key, version), encoded, flags, ttl))
        self._store.set_many(entries)  # a value too large for the store is just absent, as in set()
        return []

    def delete_many(self, keys, version=None):
        self._store.delete_many([self._key(key, version) for key in keys])

    def clear(self):
        self._store.erase_prefix(self._namespace)
