"""URL configuration for the demo project."""
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("chat/", include("chat.urls")),
    path("", include("shop.urls")),
]

# Serves /static/ from the app folders only when DEBUG is on (it is a no-op
# otherwise); in production the server (gantry's static middleware) does it.
urlpatterns += staticfiles_urlpatterns()
