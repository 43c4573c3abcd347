"""The server's response cache and shared store, from Python.

    from gantry import cache
    cache.purge("https://example.com/blog/")          # that URL's cached page, every variant
    cache.purge_prefix("https://example.com/blog/")   # every cached page under it
    cache.stats()                                     # entries, bytes, hits, misses, ...

Inside gantry every worker of the server shares one store, so a purge from any worker is seen by
all at once. Outside the server (manage.py, plain python) a process-local store stands in.
"""
from urllib.parse import urlsplit

try:
    import _gantry_cache as _native
except ImportError:  # not running inside gantry
    _native = None

from gantry._local_store import LocalStore

_local = None


def store():
    """The store this process uses: the server's shared one, or a process-local stand-in."""
    global _local
    if _native is not None and _native.available():
        return _native
    if _local is None:
        _local = LocalStore()
    return _local


def tiered_store():
    """The store Django's cache backend uses: inside gantry, the shared store with, when the server
    runs with --cache redis://..., the Redis tier behind it (shared by every server on that Redis);
    outside the server, the process-local stand-in."""
    if _native is not None and _native.available():
        return _native.tiered
    return store()


def has_redis_tier():
    """True inside a gantry started with --cache redis://...: the Django backend reaches Redis too."""
    return is_shared() and _native.tiered.redis()


def is_shared():
    """True inside gantry, where the store is shared by all workers."""
    return _native is not None and _native.available()


_PAGE = "gantry:page:GET "
_VARY = "gantry:vary:GET "


def _normalise(url):
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError("purge needs an absolute URL such as https://example.com/path, got %r" % (url,))
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return "%s://%s%s" % (parts.scheme.lower(), parts.netloc.lower(), target)


def purge(url):
    """Forget the cached page at `url` (absolute: scheme, host, path, query), in every variant.
    Returns how many stored entries went."""
    full = _normalise(url)
    s = store()
    n = s.erase_prefix(_PAGE + full + "\n")
    n += int(s.delete(_VARY + full))
    # A page stored without Vary has no "\n" after the URL: its key is the URL alone.
    n += int(s.delete(_PAGE + full))
    _publish(["=" + _PAGE + full, "=" + _VARY + full, _PAGE + full + "\n"])
    return n


def purge_prefix(url_prefix):
    """Forget every cached page whose URL starts with `url_prefix` (absolute, e.g.
    "https://example.com/blog/"). Returns how many stored entries went."""
    full = _normalise(url_prefix)
    s = store()
    n = s.erase_prefix(_PAGE + full) + s.erase_prefix(_VARY + full)
    _publish([_PAGE + full, _VARY + full])
    return n


def _publish(patterns):
    """With a Redis tier: remove from Redis too and tell every other server."""
    if is_shared():
        _native.publish_purge(patterns)


def stats():
    """The store's counters: entries, bytes_used, capacity, hits, misses, evictions, wipes."""
    return store().stats()
