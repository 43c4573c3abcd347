"""GantryCache (Django's cache API) across machines: two gantry servers, each with its own shared
store (separate processes), sharing one real redis-server through --cache redis://. What one
server's app sets, deletes, increments or adds, the other's app sees; with Redis gone, each
server's own store serves and no view fails."""
import json
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import SANITIZE, until
from test_cache import RedisServer

APP = "cache_app:app"  # /dj/set, /dj/get, /dj/incr, /dj/add, /dj/delete, /dj/selftest


@pytest.fixture
def redis_server(tmp_path):
    r = RedisServer(tmp_path)
    yield r
    r.stop()


@pytest.fixture
def servers(start_server, redis_server):
    url = "redis://127.0.0.1:%d/0" % redis_server.port
    a = start_server(APP, "--cache", url, workers=2)
    b = start_server(APP, "--cache", url, workers=2)
    return a, b


def dj(server, op, **params):
    """One call of a cache view; (status, its JSON)."""
    status, _, body = server.get("/dj/%s?%s" % (op, urllib.parse.urlencode(params)))
    return status, json.loads(body)


def value_on(server, key):
    status, got = dj(server, "get", k=key)
    assert status == 200, got
    return got["value"]


def fresh_key():
    return "k-" + uuid.uuid4().hex


def test_a_value_set_on_one_server_is_read_on_the_other(servers):
    a, b = servers
    key = fresh_key()
    assert value_on(b, key) is None
    assert dj(a, "set", k=key, v="from A ✓")[0] == 200
    # set() has written Redis before A answered: B's first read finds it there, the next ones
    # in its own store.
    assert value_on(b, key) == "from A ✓"
    assert value_on(b, key) == "from A ✓"


def test_deletes_and_new_values_on_one_server_are_seen_on_the_other(servers):
    a, b = servers
    key = fresh_key()
    dj(a, "set", k=key, v="one")
    assert value_on(b, key) == "one"  # now also in B's own store
    dj(a, "set", k=key, v="two")
    # B drops its copy when Redis's channel tells it (asynchronous: poll).
    assert until(lambda: value_on(b, key) == "two"), value_on(b, key)
    status, deleted = dj(a, "delete", k=key)
    assert status == 200 and deleted["deleted"] is True
    assert until(lambda: value_on(b, key) is None), value_on(b, key)
    assert value_on(a, key) is None
    assert dj(b, "delete", k=key)[1]["deleted"] is False


def test_increments_from_both_servers_add_up_exactly(servers):
    a, b = servers
    key = fresh_key()
    assert dj(a, "incr", k=key)[0] == 404  # Django's ValueError for a missing key
    dj(a, "set", k=key, v="0", int=1)
    assert value_on(b, key) == 0  # B holds a copy: its increments must still go to Redis
    calls = [a, b] * 30
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda s: dj(s, "incr", k=key), calls))
    assert all(status == 200 for status, _ in results), results
    values = sorted(got["value"] for _, got in results)
    assert values == list(range(1, len(calls) + 1))  # no increment lost, none counted twice
    assert until(lambda: value_on(a, key) == len(calls) and value_on(b, key) == len(calls))


def test_add_on_both_servers_exactly_one_wins(servers):
    a, b = servers
    for _ in range(10):
        key = fresh_key()
        with ThreadPoolExecutor(max_workers=2) as pool:
            added = list(pool.map(lambda s: dj(s[0], "add", k=key, v=s[1])[1]["added"], [(a, "A"), (b, "B")]))
        assert sorted(added) == [False, True], added
        winner = "A" if added[0] else "B"
        assert value_on(a, key) == winner and value_on(b, key) == winner


def test_redis_killed_mid_test_views_keep_answering_from_each_servers_store(servers, redis_server):
    a, b = servers
    kept, counter, in_redis_only = fresh_key(), fresh_key(), fresh_key()
    dj(a, "set", k=kept, v="kept")
    dj(a, "set", k=counter, v="10", int=1)
    dj(b, "set", k=in_redis_only, v="x")
    assert value_on(b, kept) == "kept"
    redis_server.stop()
    # Every view answers (a cache may forget, it may not fail): 200s, from each server's own store.
    for server in (a, b):
        for _ in range(5):  # past the breaker's first failures
            assert value_on(server, kept) == "kept"
    assert value_on(a, in_redis_only) is None  # only Redis had it: a miss, not an error
    status, got = dj(a, "incr", k=counter)
    assert status == 200 and got["value"] == 11
    key = fresh_key()
    assert dj(a, "set", k=key, v="while down")[0] == 200
    assert value_on(a, key) == "while down"
    assert dj(a, "add", k=key, v="again")[1]["added"] is False
    assert dj(b, "add", k=fresh_key(), v="new")[1]["added"] is True
    assert dj(a, "delete", k=key)[1]["deleted"] is True
    assert value_on(a, key) is None


def test_the_django_backend_suite_passes_with_a_redis_tier(start_server, redis_server):
    s = start_server(APP, "--cache", "redis://127.0.0.1:%d/0" % redis_server.port, workers=2)
    # The suite sleeps through its expiry checks: some seconds (more under ASan).
    status, _, body = s.get("/dj/selftest?redis=1", timeout=300 if SANITIZE else 90)
    result = json.loads(body)
    assert status == 200 and result["exit"] == 0, result["output"]
