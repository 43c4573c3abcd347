from django.http import JsonResponse
from django.urls import path


async def hello(request):
    return JsonResponse({"hello": "world", "path": request.path})


urlpatterns = [path("", hello)]
