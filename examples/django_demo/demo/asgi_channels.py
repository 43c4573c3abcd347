"""ASGI entry point with Django Channels: HTTP goes to Django (as in demo/asgi.py), WebSocket to
the chat app's consumers, with the session's user in scope["user"] (AuthMiddlewareStack reads the
session cookie). The channel layer is in demo/settings.py (CHANNEL_LAYERS: in-memory, or Redis
with DEMO_CHANNEL_LAYER=redis://...).

    gantry --chdir examples/django_demo --interface asgi demo.asgi_channels:application
"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

# First: it sets Django up (the app registry) before the consumers and their models are imported.
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_application,
    "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
})
