"""Django's ASGIHandler under gantry: a response is closed, and request_finished sent, also when
the client leaves before the end of it.

Django 3.2's ASGIHandler.send_response closes the response - the streaming iterator's close(),
then the request_finished signal, whose close_old_connections receiver closes the database
connection of the thread that ran the view - only after its last send(). When a send() raises
(gantry's ClientDisconnected once the client has gone, ASGI spec 2.4) or the task is cancelled
(the worker stops), that never runs: the signal is lost and the connection left open, one per
such request (as under gunicorn's uvicorn worker). install() wraps send_response so that an
exception out of it first closes the response, in Django's sync thread as Django itself does,
unless it is already closed (`response.closed`: a Django that closes it itself is not closed twice).
"""
import functools

from asgiref.sync import sync_to_async

__all__ = ["install"]


def install(handler_class):
    """Wraps handler_class.send_response (an ASGIHandler or a subclass). Idempotent."""
    original = handler_class.send_response
    if getattr(original, "_gantry_closes_response", False):
        return

    @functools.wraps(original)
    async def send_response(self, response, send):
        try:
            return await original(self, response, send)
        except BaseException:
            if not getattr(response, "closed", True):
                await sync_to_async(response.close, thread_sensitive=True)()
            raise

    send_response._gantry_closes_response = True
    handler_class.send_response = send_response
