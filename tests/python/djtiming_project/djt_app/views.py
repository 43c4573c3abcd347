import time

from django.http import HttpResponse
from django.views import View

from .models import Book

SLOW_VIEW = 0.200


def ping(request):
    return HttpResponse("ok")


def slow(request):
    time.sleep(SLOW_VIEW)
    return HttpResponse("slow")


def books_n_plus_one(request):
    # No select_related: one query for the books, then one per book.author.
    return HttpResponse(",".join(book.author.name for book in Book.objects.order_by("id")))


def books_joined(request):
    names = [book.author.name for book in Book.objects.select_related("author").order_by("id")]
    return HttpResponse(",".join(names))


def boom(request):
    raise RuntimeError("deliberate failure")


class ClassView(View):
    def get(self, request):
        return HttpResponse("class")


def nested(request):
    # A handler run inside a view (Django's test Client): its work is part of
    # this request, but its own chain and view are not this request's.
    from django.test import Client
    return HttpResponse(Client().get("/books/").content)
