"""gantry.django.cache.GantryCache checked the way Django's own cache tests (tests/cache/tests.py,
BaseCacheTests) check a backend, with Debian's Django 3.2.

Run with plain python3 it exercises the process-local stand-in store. The same file runs inside
the server (tests/e2e/test_cache.py), where GANTRY_EXPECT_SHARED_STORE=1 makes it insist on
the server's shared store, so the same semantics are checked on the native path; and inside a
server started with --cache redis:// (GANTRY_EXPECT_REDIS_TIER=1), where every operation also goes
through Redis.
"""
import os
import sys
import time
import uuid
import warnings
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "embed" / "python"))

from django.core.cache.backends.base import CacheKeyWarning  # noqa: E402

from gantry import cache as gantry_cache  # noqa: E402
from gantry.django.cache import GantryCache  # noqa: E402


def make(**params):
    return GantryCache("test-%s" % uuid.uuid4().hex, params)


@pytest.fixture
def cache():
    c = make()
    yield c
    c.clear()


def test_store_is_the_expected_one():
    expect_shared = os.environ.get("GANTRY_EXPECT_SHARED_STORE") == "1"
    assert gantry_cache.is_shared() == expect_shared
    # Inside gantry, get and set are the native ones (with Django's default key function).
    c = make()
    assert (type(c.get).__name__ == "builtin_function_or_method") == expect_shared
    custom = make(KEY_FUNCTION=lambda key, prefix, version: key)
    assert type(custom.get).__name__ == "method"
    assert gantry_cache.has_redis_tier() == (os.environ.get("GANTRY_EXPECT_REDIS_TIER") == "1")


def test_simple(cache):
    cache.set("key", "value")
    assert cache.get("key") == "value"


def test_default_used_when_none_is_set(cache):
    cache.set("key_default_none", None)
    assert cache.get("key_default_none", default="default") is None  # None is a value, not a miss


def test_add(cache):
    assert cache.add("addkey1", "value") is True
    assert cache.add("addkey1", "newvalue") is False
    assert cache.get("addkey1") == "value"


def test_prefix_and_namespaces_are_separate():
    a, b = make(KEY_PREFIX="a"), make(KEY_PREFIX="b")
    a.set("somekey", "value")
    assert not b.has_key("somekey")
    a.clear()
    b.clear()


def test_non_existent(cache):
    assert cache.get("does_not_exist") is None
    assert cache.get("does_not_exist", "bang!") == "bang!"


def test_get_many(cache):
    cache.set_many({"a": "a", "b": "b", "c": "c", "d": "d"})
    assert cache.get_many(["a", "c", "d"]) == {"a": "a", "c": "c", "d": "d"}
    assert cache.get_many(["a", "b", "e"]) == {"a": "a", "b": "b"}
    assert cache.get_many(iter(["a", "b", "e"])) == {"a": "a", "b": "b"}


def test_delete(cache):
    cache.set_many({"key1": "spam", "key2": "eggs"})
    assert cache.delete("key1") is True
    assert cache.get("key1") is None
    assert cache.get("key2") == "eggs"
    assert cache.delete("nonexistent") is False


def test_has_key_and_in(cache):
    cache.set("hello1", "goodbye1")
    assert cache.has_key("hello1")
    assert not cache.has_key("goodbye1")
    assert "hello1" in cache
    cache.set("no_expiry", "here", None)
    assert cache.has_key("no_expiry")
    cache.set("null", None)
    assert cache.has_key("null")


def test_incr_decr(cache):
    cache.set("answer", 41)
    assert cache.incr("answer") == 42
    assert cache.get("answer") == 42
    assert cache.incr("answer", 10) == 52
    assert cache.incr("answer", -10) == 42
    assert cache.decr("answer") == 41
    assert cache.decr("answer", 10) == 31
    assert cache.decr("answer", -10) == 41
    with pytest.raises(ValueError):
        cache.incr("does_not_exist")
    with pytest.raises(ValueError):
        cache.decr("does_not_exist")
    cache.set("null", None)
    with pytest.raises(TypeError):
        cache.incr("null")


def test_incr_keeps_types_python_would_give(cache):
    cache.set("f", 1.5)
    assert cache.incr("f") == 2.5
    cache.set("d", Decimal("1.1"))
    assert cache.incr("d") == Decimal("2.1")
    cache.set("b", True)
    assert cache.incr("b") == 2
    cache.set("big", 2 ** 63 - 1)
    assert cache.incr("big") == 2 ** 63  # past the store's integers: Python carries on
    assert cache.incr("big") == 2 ** 63 + 1


def test_incr_keeps_the_timeout(cache):
    cache.set("n", 1, 1)
    cache.incr("n")
    time.sleep(1.2)
    assert cache.get("n") is None


def test_data_types(cache):
    stuff = {
        "string": "this is a string",
        "int": 42,
        "bool": True,
        "list": [1, 2, 3, 4],
        "tuple": (1, 2, 3, 4),
        "dict": {"A": 1, "B": 2},
        "function": len,
        "class": Decimal,
        "bytes": b"\x00\xff binary",
        "float": 0.5,
        "none": None,
        "unicode": "ŠĐĆŽćžšđ 中文",
    }
    for key, value in stuff.items():
        cache.set(key, value)
    for key, value in stuff.items():
        got = cache.get(key)
        assert got == value and type(got) is type(value), key


def test_expiration(cache):
    cache.set("expire1", "very quickly", 1)
    cache.set("expire2", "very quickly", 1)
    cache.set("expire3", "very quickly", 1)
    time.sleep(1.2)
    assert cache.get("expire1") is None
    assert cache.add("expire2", "newvalue") is True
    assert cache.get("expire2") == "newvalue"
    assert not cache.has_key("expire3")


def test_touch(cache):
    cache.set("expire1", "very quickly", timeout=1)
    assert cache.touch("expire1", timeout=4) is True
    time.sleep(1.2)
    assert cache.has_key("expire1")
    cache.set("expire2", "very quickly", timeout=1)
    assert cache.touch("expire2", timeout=None) is True
    time.sleep(1.2)
    assert cache.has_key("expire2")
    assert cache.touch("nonexistent") is False
    cache.set("zero", "x")
    assert cache.touch("zero", 0) is True
    assert not cache.has_key("zero")


def test_unicode_keys_and_values(cache):
    stuff = {
        "ascii": "ascii_value",
        "unicode_ascii": "Iñtërnâtiônàlizætiøn1",
        "Iñtërnâtiônàlizætiøn": "Iñtërnâtiônàlizætiøn2",
        "ascii2": {"x": 1},
    }
    for key, value in stuff.items():
        cache.set(key, value)
        assert cache.get(key) == value
        cache.delete(key)
        cache.add(key, value)
        assert cache.get(key) == value
    cache.set_many(stuff)
    for key, value in stuff.items():
        assert cache.get(key) == value


def test_set_many_expiration_and_delete_many(cache):
    assert cache.set_many({"key1": "spam", "key2": "eggs"}, 1) == []
    time.sleep(1.2)
    assert cache.get("key1") is None
    cache.set_many({"key1": "spam", "key2": "eggs", "key3": "ham"})
    cache.delete_many(["key1", "key2"])
    assert cache.get("key1") is None and cache.get("key2") is None
    assert cache.get("key3") == "ham"


def test_clear_only_this_namespace(cache):
    other = make()
    cache.set_many({"key1": "spam", "key2": "eggs"})
    other.set("key1", "kept")
    cache.clear()
    assert cache.get("key1") is None and cache.get("key2") is None
    assert other.get("key1") == "kept"
    other.clear()


def test_long_forever_zero_and_float_timeouts(cache):
    cache.set("key1", "eggs", 60 * 60 * 24 * 30 + 1)  # more than memcached's 30 days
    assert cache.get("key1") == "eggs"
    assert cache.add("key2", "ham", 60 * 60 * 24 * 30 + 1) is True
    cache.set("forever", "ham", None)
    assert cache.get("forever") == "ham"
    assert cache.add("forever", "new", None) is False
    cache.set("zero", "ham", 0)
    assert cache.get("zero") is None
    assert cache.add("zero2", "ham", 0) is True
    assert cache.get("zero2") is None
    cache.set("float", "spam", 1.5)
    assert cache.get("float") == "spam"
    cache.set("neg", "x", -1)
    assert cache.get("neg") is None


def test_default_timeout_from_params():
    c = make(TIMEOUT=1)
    c.set("k", "v")
    time.sleep(1.2)
    assert c.get("k") is None
    forever = make(TIMEOUT=None)
    forever.set("k", "v")
    assert forever.get("k") == "v"
    forever.clear()


def test_versioning(cache):
    cache.set("answer1", 42)
    assert cache.get("answer1") == 42
    assert cache.get("answer1", version=1) == 42
    assert cache.get("answer1", version=2) is None
    cache.set("answer2", 42, version=2)
    assert cache.get("answer2") is None
    assert cache.get("answer2", version=2) == 42
    v2 = make(VERSION=2)
    v2.set("k", "two")
    assert v2.get("k") == "two"
    assert v2.get("k", version=1) is None
    v2.clear()


def test_incr_decr_version(cache):
    cache.set("answer", 42, version=2)
    assert cache.incr_version("answer", version=2) == 3
    assert cache.get("answer", version=2) is None
    assert cache.get("answer", version=3) == 42
    assert cache.decr_version("answer", version=3) == 2
    assert cache.get("answer", version=2) == 42
    with pytest.raises(ValueError):
        cache.incr_version("does_not_exist")


def test_custom_key_function():
    c = make(KEY_FUNCTION=lambda key, prefix, version: "custom-%s-%s" % (version, key))
    c.set("k", "v")
    assert c.get("k") == "v"
    plain = GantryCache(c._namespace[3:-1], {})
    assert plain.get("k") is None  # a different key function is a different key
    c.clear()


def test_get_or_set(cache):
    assert cache.get_or_set("projector", 42) == 42
    assert cache.get("projector") == 42
    assert cache.get_or_set("null", None) is None
    assert cache.get_or_set("callable", lambda: "called") == "called"
    assert cache.get_or_set("callable", lambda: "again") == "called"


def test_invalid_keys_warn_like_other_backends(cache):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache.set("a" * 251, "value")
    assert any(issubclass(w.category, CacheKeyWarning) for w in caught)


def test_large_value_round_trips(cache):
    big = os.urandom(256 * 1024)
    cache.set("big", big)
    assert cache.get("big") == big


def test_purge_api_validates_urls():
    with pytest.raises(ValueError):
        gantry_cache.purge("/relative/path")
    assert gantry_cache.purge("http://example.com/never-cached") == 0
    assert isinstance(gantry_cache.stats()["entries"], int)
