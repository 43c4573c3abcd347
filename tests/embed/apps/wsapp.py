"""ASGI WebSocket apps for tests/embed/asgi/websocket_exchange_test.cpp, one per path. What an app
observes (the awaitable types receive() and send() return, the messages it got, the exceptions it
caught) goes into RESULTS as text for the test to read; the test plays the connection."""
import asyncio
import json

RESULTS = []


def note(*parts):
    RESULTS.append(" ".join(str(p) for p in parts))


def plain(value):
    """A scope value as JSON can hold it: bytes as latin-1 text, tuples as lists."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


async def echo(scope, receive, send):
    """Accepts, then sends each message back as it came (text as text, bytes as bytes)."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        awaitable = receive()
        note("receive", type(awaitable).__name__)
        m = await awaitable
        if m["type"] == "websocket.disconnect":
            note("disconnect", m["code"], repr(m["reason"]))
            return
        note("got", sorted(m))
        if "text" in m:
            await send({"type": "websocket.send", "text": m["text"]})
        else:
            await send({"type": "websocket.send", "bytes": m["bytes"]})


async def listen(scope, receive, send):
    """Accepts, then notes what it receives until the disconnect."""
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        awaitable = receive()
        m = await awaitable
        note(type(awaitable).__name__, m["type"], m.get("text", m.get("bytes")), m.get("code"))
        if m["type"] == "websocket.disconnect":
            return


async def scope_app(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps(plain(scope))})
    await send({"type": "websocket.close"})


async def subprotocol(scope, receive, send):
    """Accepts the client's last subprotocol, with extra headers."""
    await receive()
    await send({"type": "websocket.accept", "subprotocol": scope["subprotocols"][-1],
                "headers": [(b"x-extra", b"1"), [b"set-cookie", b"a=b"]]})
    await send({"type": "websocket.close", "code": 4001, "reason": "bye \u00e9"})


async def close_before_accept(scope, receive, send):
    await receive()
    await send({"type": "websocket.close"})
    m = await receive()
    note(m["type"], m["code"])


async def deny(scope, receive, send):
    """Denies the handshake with a response of its own (the websocket.http.response extension)."""
    await receive()
    assert "websocket.http.response" in scope["extensions"]
    await send({"type": "websocket.http.response.start", "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Basic")]})
    await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"entry"})


async def flood(scope, receive, send):
    """Three sends of 8 bytes each; the test's outbox holds 16."""
    await receive()
    await send({"type": "websocket.accept"})
    for i in range(1, 4):
        awaitable = send({"type": "websocket.send", "bytes": b"%08d" % i})
        note(type(awaitable).__name__)
        await awaitable
        note("sent", i)
    await send({"type": "websocket.close"})


async def flood_gone(scope, receive, send):
    """Sends until the outbox is full; its client leaves meanwhile."""
    await receive()
    await send({"type": "websocket.accept"})
    try:
        while True:
            await send({"type": "websocket.send", "bytes": b"12345678"})
            note("sent")
    except OSError as e:
        note(type(e).__name__)
        raise


async def cancel_receive(scope, receive, send):
    """A receive() abandoned by a timeout: the message it would have got goes to the next one."""
    await receive()
    await send({"type": "websocket.accept"})
    try:
        await asyncio.wait_for(receive(), 0)
    except asyncio.TimeoutError:
        note("timed out")
    m = await receive()
    note(m["type"], m["text"])
    await send({"type": "websocket.close"})


async def raise_before(scope, receive, send):
    await receive()
    raise ValueError("broken before accept")


async def raise_after(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    raise ValueError("broken after accept")


async def send_after_disconnect(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    m = await receive()
    note(m["type"], m["code"])
    try:
        await send({"type": "websocket.send", "text": "too late"})
    except OSError as e:
        note(type(e).__name__, isinstance(e, OSError))
        raise  # ends the task: not an error once the client has gone


async def return_without_handshake(scope, receive, send):
    await receive()


async def return_open(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})


async def attempt(send, message):
    """Sends `message`; notes the exception it raised, or "ok"."""
    try:
        await send(message)
        note("ok")
    except Exception as e:
        note(type(e).__name__, e)


async def out_of_order(scope, receive, send):
    await receive()
    await attempt(send, {"type": "websocket.send", "text": "before accept"})
    await attempt(send, {"type": "websocket.http.response.body", "body": b"x"})
    await attempt(send, {"type": "websocket.accept"})
    await attempt(send, {"type": "websocket.accept"})
    await attempt(send, {"type": "websocket.http.response.start", "status": 403})
    await attempt(send, {"type": "websocket.close"})
    await attempt(send, {"type": "websocket.send", "text": "after close"})
    await attempt(send, {"type": "websocket.close"})


async def out_of_order_denial(scope, receive, send):
    await receive()
    await attempt(send, {"type": "websocket.http.response.start", "status": 404})
    await attempt(send, {"type": "websocket.accept"})
    await attempt(send, {"type": "websocket.http.response.body"})
    await attempt(send, {"type": "websocket.send", "text": "after the denial"})


async def invalid(scope, receive, send):
    await receive()
    await attempt(send, {"type": "websocket.accept", "headers": [(b"x-a", b"1\r\nx-b: 2")]})
    await attempt(send, {"type": "websocket.accept", "headers": [(b"bad name", b"1")]})
    await attempt(send, {"type": "websocket.accept", "headers": [(b"sec-websocket-protocol", b"chat")]})
    await attempt(send, {"type": "websocket.accept", "subprotocol": "a b"})
    await attempt(send, {"type": "websocket.accept", "subprotocol": b"chat"})
    await attempt(send, {"type": "websocket.accept", "subprotocol": None, "headers": None})
    await attempt(send, {"type": "websocket.send", "text": "t", "bytes": b"b"})
    await attempt(send, {"type": "websocket.send", "text": None, "bytes": None})
    await attempt(send, {"type": "websocket.send", "text": b"bytes as text"})
    await attempt(send, {"type": "websocket.send", "bytes": "text as bytes"})
    await attempt(send, {"type": "websocket.send", "text": "\ud800"})
    await attempt(send, {"type": "websocket.send", "bytes": None, "text": "ok"})
    await attempt(send, {"type": "websocket.close", "code": 1005})
    await attempt(send, {"type": "websocket.close", "code": "1000"})
    await attempt(send, {"type": "websocket.close", "reason": "r" * 124})
    await attempt(send, {"type": "websocket.close", "reason": 5})
    await attempt(send, {"type": "websocket.nonsense"})
    await attempt(send, {"type": "websocket.close", "code": 3000, "reason": None})


async def invalid_denial(scope, receive, send):
    await receive()
    await attempt(send, {"type": "websocket.http.response.start", "status": 101})
    await attempt(send, {"type": "websocket.http.response.start", "status": "403"})
    await attempt(send, {"type": "websocket.http.response.start", "status": 403, "headers": [(b"x", b"a\nb")]})
    await attempt(send, {"type": "websocket.http.response.start", "status": 403})
    await attempt(send, {"type": "websocket.http.response.body", "body": "text"})
    await attempt(send, {"type": "websocket.http.response.body", "body": memoryview(b"forbidden")})


APPS = {
    "/echo": echo,
    "/listen": listen,
    "/scope": scope_app,
    "/subprotocol": subprotocol,
    "/close-before-accept": close_before_accept,
    "/deny": deny,
    "/flood": flood,
    "/flood-gone": flood_gone,
    "/cancel-receive": cancel_receive,
    "/raise-before": raise_before,
    "/raise-after": raise_after,
    "/send-after-disconnect": send_after_disconnect,
    "/return-without-handshake": return_without_handshake,
    "/return-open": return_open,
    "/out-of-order": out_of_order,
    "/out-of-order-denial": out_of_order_denial,
    "/invalid": invalid,
    "/invalid-denial": invalid_denial,
}


async def channels(scope, receive, send):
    import channelsapp  # Django and Channels only for the tests that use them
    await channelsapp.application(scope, receive, send)


APPS["/channels"] = channels


async def app(scope, receive, send):
    assert scope["type"] == "websocket"
    name = "/" + scope["path"].split("/")[1]
    await APPS[name](scope, receive, send)
