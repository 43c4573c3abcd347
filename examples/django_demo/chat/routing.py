"""WebSocket URLs (Channels' URLRouter), next to Django's HTTP ones in demo/urls.py."""
from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/echo/", consumers.EchoConsumer.as_asgi()),
    path("ws/chat/<slug:room>/", consumers.ChatConsumer.as_asgi()),
]
