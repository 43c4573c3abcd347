from django.shortcuts import render


def room(request, room):
    """A page that joins the chat room over a WebSocket (demo/asgi_channels.py must serve it)."""
    return render(request, "chat/room.html", {"room": room})
