"""The Python side of one idle WebSocket, alone: an echo app's task waiting in receive() with a
scope like gantry's (RSS per connection over 2,000). The floor under gantry's per-connection
memory that no server-side change removes: `/usr/bin/python3 bench/e2e/ws_python_floor.py`."""
import asyncio, gc, os
def rss():
    for l in open("/proc/self/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])
async def app(scope, receive, send):
    m = await receive()          # connect
    await send({"type": "websocket.accept"})
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect": return
        await send({"type": "websocket.send", "text": m.get("text")})
async def main(n=2000):
    loop = asyncio.get_running_loop()
    hdrs = [(b"host", b"127.0.0.1:8000"), (b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
            (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="), (b"sec-websocket-version", b"13")]
    gc.collect(); before = rss(); keep = []
    for i in range(n):
        futs = []
        scope = {"type": "websocket", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
                 "scheme": "ws", "path": "/echo", "raw_path": b"/echo", "query_string": b"", "root_path": "",
                 "headers": [(a, bytes(b)) for a, b in hdrs], "client": ("127.0.0.1", 40000 + i), "server": ("127.0.0.1", 8000),
                 "subprotocols": [], "state": {}, "extensions": {"websocket.http.response": {}}}
        q = [{"type": "websocket.connect"}]
        async def receive(q=q, futs=futs):
            if q: return q.pop()
            f = loop.create_future(); futs.append(f); return await f
        async def send(m): pass
        keep.append((loop.create_task(app(scope, receive, send)), futs))
    await asyncio.sleep(0.1)
    gc.collect()
    print("python side per idle websocket: %.1f KiB" % ((rss() - before) / n))
asyncio.run(main())
