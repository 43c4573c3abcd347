"""Django Channels consumers, served by demo/asgi_channels.py under ws/ (see chat/routing.py).

Both are async consumers: they run on the server's event loop, with no thread per connection.
Each one's first message says which worker process it landed on (`pid`), so a test can tell
when a broadcast crossed processes (only a shared channel layer, Redis's, does that)."""
import json
import os

from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer


def _username(scope):
    """The logged-in user's name from AuthMiddlewareStack's scope["user"] (the session cookie's),
    or None for an anonymous client."""
    user = scope.get("user")
    return user.username if user is not None and user.is_authenticated else None


class EchoConsumer(AsyncWebsocketConsumer):
    """ws/echo/: first a JSON hello saying who is logged in, then every message back as it came."""

    async def connect(self):
        await self.accept()
        await self.send(text_data=json.dumps({"user": _username(self.scope), "pid": os.getpid()}))

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is not None:
            await self.send(text_data=text_data)
        else:
            await self.send(bytes_data=bytes_data)


class ChatConsumer(AsyncJsonWebsocketConsumer):
    """ws/chat/<room>/: a chat room. Joining puts the connection in the room's group (before the
    "joined" message, so whoever has seen it will get every later message); each JSON message
    {"message": text} goes to everyone in the room, the sender included, with the sender's name."""

    async def connect(self):
        self.room = "chat-%s" % self.scope["url_route"]["kwargs"]["room"]
        await self.channel_layer.group_add(self.room, self.channel_name)
        await self.accept()
        await self.send_json({"joined": self.room, "user": _username(self.scope), "pid": os.getpid()})

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.room, self.channel_name)

    async def receive_json(self, content, **kwargs):
        await self.channel_layer.group_send(self.room, {
            "type": "chat.message",
            "message": str(content.get("message", "")),
            "user": _username(self.scope),
            "pid": os.getpid(),
        })

    async def chat_message(self, event):
        """A group message (type "chat.message"), from this worker or, with Redis, another one."""
        await self.send_json({"message": event["message"], "user": event["user"], "from_pid": event["pid"]})
