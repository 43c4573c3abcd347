from django.urls import path

from . import views

urlpatterns = [
    path("ping/", views.ping),
    path("slow/", views.slow),
    path("books/", views.books_n_plus_one),
    path("books-joined/", views.books_joined),
    path("boom/", views.boom),
    path("rescued/", views.boom),
    path("class/", views.ClassView.as_view()),
    path("nested/", views.nested),
]
