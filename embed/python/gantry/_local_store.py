"""A process-local stand-in for the server's shared store, with the same operations as the
native `_gantry_cache` module. Used when gantry.cache runs outside the server (manage.py, tests
run with plain python): there it behaves like Django's LocMemCache, one store per process."""
import threading
import time
from collections import OrderedDict

_MAX_ENTRIES = 10000


class LocalStore:
    def __init__(self):
        self._data = OrderedDict()  # key -> (value bytes, flags, expires or None)
        self._lock = threading.Lock()
        self._hits = self._misses = self._evictions = 0

    def available(self):
        return False

    def _live(self, key, now):
        item = self._data.get(key)
        if item is None:
            return None
        if item[2] is not None and item[2] <= now:
            del self._data[key]
            return None
        return item

    @staticmethod
    def _expires(ttl):
        return None if ttl is None else time.monotonic() + ttl

    @staticmethod
    def _bytes(v):
        return v.encode() if isinstance(v, str) else bytes(v)

    def get(self, key):
        with self._lock:
            item = self._live(key, time.monotonic())
            if item is None:
                self._misses += 1
                return None
            self._hits += 1
            self._data.move_to_end(key)
            return item[0], item[1]

    def set(self, key, value, flags, ttl):
        with self._lock:
            self._data[key] = (self._bytes(value), flags, self._expires(ttl))
            self._data.move_to_end(key)
            while len(self._data) > _MAX_ENTRIES:
                self._data.popitem(last=False)
                self._evictions += 1
            return True

    def add(self, key, value, flags, ttl):
        with self._lock:
            if self._live(key, time.monotonic()) is not None:
                return False
        return self.set(key, value, flags, ttl)

    def delete(self, key):
        with self._lock:
            return self._live(key, time.monotonic()) is not None and self._data.pop(key, None) is not None

    def contains(self, key):
        with self._lock:
            return self._live(key, time.monotonic()) is not None

    def touch(self, key, ttl):
        with self._lock:
            item = self._live(key, time.monotonic())
            if item is None:
                return False
            self._data[key] = (item[0], item[1], self._expires(ttl))
            return True

    def ttl(self, key):
        with self._lock:
            item = self._live(key, time.monotonic())
            if item is None:
                return -1.0
            return None if item[2] is None else max(0.0, item[2] - time.monotonic())

    def incr(self, key, delta):
        with self._lock:
            item = self._live(key, time.monotonic())
            if item is None:
                return None
            try:
                text = item[0].decode("ascii")
                if text.strip() != text or not text.lstrip("-").isdigit():
                    return None
                value = int(text) + delta
            except (UnicodeDecodeError, ValueError):
                return None
            if not -(2 ** 63) <= value < 2 ** 63:
                return None
            self._data[key] = (str(value).encode(), item[1], item[2])
            return value

    def get_many(self, keys):
        return [self.get(k) for k in keys]

    def set_many(self, entries):
        return sum(1 for key, value, flags, ttl in entries if self.set(key, value, flags, ttl))

    def delete_many(self, keys):
        return sum(1 for k in keys if self.delete(k))

    def erase_prefix(self, prefix):
        prefix = self._bytes(prefix).decode("utf-8", "surrogateescape") if isinstance(prefix, bytes) else prefix
        with self._lock:
            doomed = [k for k in self._data if k.startswith(prefix)]
            for k in doomed:
                del self._data[k]
            return len(doomed)

    def stats(self):
        with self._lock:
            return {"entries": len(self._data), "bytes_used": sum(len(v[0]) for v in self._data.values()),
                    "capacity": 0, "hits": self._hits, "misses": self._misses,
                    "evictions": self._evictions, "wipes": 0}
