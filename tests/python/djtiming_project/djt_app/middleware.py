import time

from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpResponse
from django.utils.decorators import async_only_middleware

# Only /slow/ sleeps, so other requests measure the plain stack.
SLOW_CALL = 0.010
SLOW_PROCESS_VIEW = 0.010
SLOW_PROCESS_EXCEPTION = 0.010


class SlowMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/slow/":
            time.sleep(SLOW_CALL)
        if request.path == "/short/":  # answers itself: nothing inside runs
            time.sleep(SLOW_CALL)
            return HttpResponse("short")
        return self.get_response(request)

    def process_view(self, request, view, args, kwargs):
        if request.path == "/slow/":
            time.sleep(SLOW_PROCESS_VIEW)
        return None

    def process_exception(self, request, exception):
        if request.path == "/rescued/":  # turns the view's exception into a 200
            time.sleep(SLOW_PROCESS_EXCEPTION)
            return HttpResponse("rescued")
        return None


def function_middleware(get_response):
    def middleware(request):
        response = get_response(request)
        response["X-Function-Middleware"] = "1"
        return response
    return middleware


class NotUsedMiddleware:
    def __init__(self, get_response):
        raise MiddlewareNotUsed()


@async_only_middleware
def async_only(get_response):
    """Not in djt_settings.MIDDLEWARE: a test puts it in a chain of its own."""
    async def middleware(request):
        response = await get_response(request)
        response["X-Async-Only"] = "1"
        return response
    return middleware
