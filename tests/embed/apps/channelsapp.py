"""A Django Channels 4.0 consumer (Debian's python3-django-channels) behind wsapp's /channels:
echo, a broadcast to its group through the in-memory channel layer, and a refusal before accept.
Django's settings are djangoapp's (one configuration per process), with a channel layer added."""
from django.conf import settings

import djangoapp  # noqa: F401  (configures Django)

settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402

import wsapp  # noqa: E402


class Room(AsyncWebsocketConsumer):
    async def connect(self):
        if self.scope["query_string"] == b"refuse":
            await self.close()
            return
        await self.channel_layer.group_add("room", self.channel_name)
        await self.accept(self.scope["subprotocols"][0] if self.scope["subprotocols"] else None)

    async def receive(self, text_data=None, bytes_data=None):
        if text_data == "broadcast":
            await self.channel_layer.group_send("room", {"type": "room.message", "text": "to all"})
        else:
            await self.send(text_data=text_data, bytes_data=bytes_data)

    async def room_message(self, event):
        await self.send(text_data=event["text"])

    async def disconnect(self, code):
        wsapp.note("channels disconnect", code)
        await self.channel_layer.group_discard("room", self.channel_name)


application = Room.as_asgi()
