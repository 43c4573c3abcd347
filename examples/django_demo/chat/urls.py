from django.urls import path

from . import views

app_name = "chat"

urlpatterns = [
    path("<slug:room>/", views.room, name="room"),
]
