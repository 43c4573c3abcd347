"""The Django demo with Django Channels (`demo.asgi_channels:application`: ProtocolTypeRouter with
Django's HTTP app and AuthMiddlewareStack around the chat app's consumers) end to end, with the
websockets client: the echo consumer, the logged-in user read from the session, a chat room's group
broadcast with the in-memory channel layer on one worker, and with Redis's (channels_redis, a
redis-server started here) across two workers."""
import asyncio
import json
import os
import re
import subprocess

import pytest
import requests
import websockets

from conftest import APPS, IO_TIMEOUT, ServerFactory

DEMO = os.environ.get("GANTRY_E2E_DJANGO_DEMO") or os.path.abspath(
    os.path.join(APPS, os.pardir, os.pardir, "examples", "django_demo"))
CHANNELS = ("demo.asgi_channels:application", "--interface", "asgi", "--chdir")
USER, PASSWORD = "ws-e2e-user", "ws-e2e-password-7f3a"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=IO_TIMEOUT * 12))


@pytest.fixture(scope="module")
def demo_ready():
    if not os.path.isdir(DEMO):
        pytest.skip("no Django demo at %s" % DEMO)
    out = subprocess.run(["sh", os.path.join(DEMO, "setup.sh")], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, "setup.sh failed:\n%s\n%s" % (out.stdout, out.stderr)
    # A staff user, so the admin's login view logs it in (the demo has no other login view).
    make_user = ("from django.contrib.auth.models import User\n"
                 "u, _ = User.objects.get_or_create(username=%r)\n"
                 "u.is_staff = True\nu.set_password(%r)\nu.save()\n" % (USER, PASSWORD))
    out = subprocess.run(["/usr/bin/python3", "manage.py", "shell", "-c", make_user], cwd=DEMO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return DEMO


@pytest.fixture(scope="module")
def dj(demo_ready, tmp_path_factory):
    factory = ServerFactory(tmp_path_factory)
    yield factory(*CHANNELS, demo_ready, workers=1, env={"DJANGO_DEBUG": "0"})
    factory.teardown()


def ws_connect(server, path, cookie=None):
    headers = [("Cookie", cookie)] if cookie else None
    return websockets.connect("ws://%s:%d%s" % (server.host, server.port, path), extra_headers=headers,
                              ping_interval=None, open_timeout=IO_TIMEOUT)


def log_in(server):
    """Logs in through the admin's login view (CSRF token and all); the session cookie."""
    s = requests.Session()
    page = s.get(server.url + "/admin/login/", timeout=IO_TIMEOUT)
    assert page.status_code == 200
    r = s.post(server.url + "/admin/login/", timeout=IO_TIMEOUT, allow_redirects=False,
               data={"username": USER, "password": PASSWORD, "next": "/admin/",
                     "csrfmiddlewaretoken": s.cookies["csrftoken"]})
    assert r.status_code == 302 and "sessionid" in s.cookies, (r.status_code, r.text[:300])
    return "sessionid=%s" % s.cookies["sessionid"]


async def join(server, room, cookie=None):
    """A client in `room`, after its "joined" message (it is in the group from then on)."""
    c = await ws_connect(server, "/ws/chat/%s/" % room, cookie)
    hello = json.loads(await c.recv())
    assert hello["joined"] == "chat-%s" % room
    c.pid, c.user = hello["pid"], hello["user"]
    return c


def test_http_is_still_django(dj):
    r = requests.get(dj.url + "/api/products/", timeout=IO_TIMEOUT)
    assert r.status_code == 200 and r.json()["count"] >= 3
    page = requests.get(dj.url + "/chat/lobby/", timeout=IO_TIMEOUT)
    assert page.status_code == 200 and 'id="chat-log"' in page.text and "/ws/chat/" in page.text


def test_the_echo_consumer(dj):
    async def client():
        async with ws_connect(dj, "/ws/echo/") as c:
            hello = json.loads(await c.recv())
            assert hello["user"] is None and hello["pid"] > 0  # nobody logged in
            for message in ("hello", "héllo ✓", b"\x00bytes\xff"):
                await c.send(message)
                assert await c.recv() == message
    run(client())


def test_an_unrouted_websocket_path_is_refused(dj):
    async def client():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            async with ws_connect(dj, "/ws/nowhere/"):
                pass
        return e.value.status_code
    # URLRouter raises for a path it has no route for, before any accept: a 500.
    assert run(client()) == 500
    assert dj.wait_for_output(r"No route found for path"), dj.log()


def test_the_consumer_sees_the_sessions_user(dj):
    cookie = log_in(dj)

    async def client():
        async with ws_connect(dj, "/ws/echo/", cookie) as c:
            assert json.loads(await c.recv())["user"] == USER
        a = await join(dj, "auth-room", cookie)
        b = await join(dj, "auth-room")
        assert a.user == USER and b.user is None
        await a.send(json.dumps({"message": "signed"}))
        got = [json.loads(await c.recv()) for c in (a, b)]
        assert got == [{"message": "signed", "user": USER, "from_pid": a.pid}] * 2
        await asyncio.gather(a.close(), b.close())
    run(client())


def test_a_broadcast_reaches_everyone_in_the_room_and_no_one_else(dj):
    async def client():
        a, b = await join(dj, "lobby"), await join(dj, "lobby")
        other = await join(dj, "elsewhere")
        await a.send(json.dumps({"message": "hello room"}))
        for c in (a, b):  # the sender too
            assert json.loads(await c.recv()) == {"message": "hello room", "user": None, "from_pid": a.pid}
        await b.send(json.dumps({"message": "and back"}))
        for c in (a, b):
            assert json.loads(await c.recv())["message"] == "and back"
        # The other room's client: its own message is the first it gets (had the lobby's reached
        # it, they were queued before this one).
        await other.send(json.dumps({"message": "only here"}))
        assert json.loads(await other.recv())["message"] == "only here"
        await asyncio.gather(a.close(), b.close(), other.close())
    run(client())


@pytest.fixture
def redis_url(tmp_path):
    from test_cache import RedisServer
    r = RedisServer(tmp_path)
    yield "redis://127.0.0.1:%d/0" % r.port
    r.stop()


def test_the_redis_layer_broadcasts_across_workers(demo_ready, start_server, redis_url):
    s = start_server(*CHANNELS, demo_ready, workers=2, env={"DJANGO_DEBUG": "0", "DEMO_CHANNEL_LAYER": redis_url})

    async def client():
        clients = []
        try:
            # New connections until both workers hold some (the kernel picks who accepts).
            while len({c.pid for c in clients}) < 2:
                assert len(clients) < 64, "one worker took every connection"
                clients.append(await join(s, "shared"))
            sender = clients[0]
            await sender.send(json.dumps({"message": "to both workers"}))
            got = [json.loads(await c.recv()) for c in clients]
            assert got == [{"message": "to both workers", "user": None, "from_pid": sender.pid}] * len(clients)
        finally:
            await asyncio.gather(*(c.close() for c in clients))
    run(client())
    assert not re.search(r"Traceback", s.stderr()), s.log()
