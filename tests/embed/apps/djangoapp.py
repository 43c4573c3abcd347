"""Fixture: a one-file Django project (Debian's Django 3.2), reached through testapp's /django/."""
import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="gantry-tests",
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def index(request):
    return HttpResponse("hello from django", content_type="text/plain")


@csrf_exempt
def form(request):
    return JsonResponse({"method": request.method, "post": request.POST.dict(),
                         "query": request.GET.dict(), "path": request.path})


@csrf_exempt
def upload(request):
    return JsonResponse({"size": len(request.body), "head": request.body[:5].decode()})


def stream(request):
    return StreamingHttpResponse(iter([b"a", b"b", b"c"]), content_type="text/plain")


urlpatterns = [
    path("django/", index),
    path("django/form", form),
    path("django/upload", upload),
    path("django/stream", stream),
]

application = get_wsgi_application()
