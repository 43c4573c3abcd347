import asyncio
import hashlib
import time

from asgiref.sync import sync_to_async
from django.http import (
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from . import big_page, signals
from .forms import ProductForm
from .models import Product

# /stream/ limits: keep one request from tying up a worker for long.
STREAM_DEFAULT_LINES = 10
STREAM_MAX_LINES = 500
STREAM_LINE_DELAY = 0.01  # seconds; slow enough that clients see chunks arrive


def _products():
    # One query for products+categories, one for all their tags.
    return Product.objects.select_related("category").prefetch_related("tags")


def _product_json(product):
    return {
        "id": product.pk,
        "name": product.name,
        "description": product.description,
        "price": str(product.price),
        "category": {"id": product.category_id, "name": product.category.name,
                     "slug": product.category.slug},
        "tags": [tag.name for tag in product.tags.all()],
        "created": product.created.isoformat(),
        "url": product.get_absolute_url(),
    }


@require_GET
def product_list(request):
    return render(request, "shop/product_list.html", {"products": _products()})


@require_GET
def product_detail(request, pk):
    product = get_object_or_404(_products(), pk=pk)
    return render(request, "shop/product_detail.html", {"product": product})


@require_http_methods(["GET", "POST"])
def product_create(request):
    if request.method == "POST":
        form = ProductForm(request.POST)
        if form.is_valid():
            product = form.save()
            return redirect(product)
        status = 400  # re-rendered with errors
    else:
        form = ProductForm()
        status = 200
    return render(request, "shop/product_form.html", {"form": form}, status=status)


@require_GET
def api_products(request):
    products = _products()
    category = request.GET.get("category")
    if category:
        products = products.filter(category__slug=category)
    return JsonResponse({"count": len(products), "products": [_product_json(p) for p in products]})


@require_GET
def api_product(request, pk):
    return JsonResponse(_product_json(get_object_or_404(_products(), pk=pk)))


# Exempt so that plain clients (curl -F, benchmark tools) can post files
# without first fetching a CSRF cookie; the product form keeps CSRF on.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def upload(request):
    if request.method == "GET":
        return render(request, "shop/upload.html")
    upload = request.FILES.get("file")
    if upload is None:
        return HttpResponseBadRequest("missing multipart field 'file'\n", content_type="text/plain")
    digest = hashlib.sha256()
    size = 0
    for chunk in upload.chunks():  # large files are read from Django's temp file in chunks
        digest.update(chunk)
        size += len(chunk)
    return JsonResponse({
        "name": upload.name,
        "size": size,
        "sha256": digest.hexdigest(),
        "content_type": upload.content_type,
    })


@require_GET
def stream(request):
    try:
        n = int(request.GET.get("n", STREAM_DEFAULT_LINES))
    except ValueError:
        return HttpResponseBadRequest("n must be an integer\n", content_type="text/plain")
    n = max(0, min(n, STREAM_MAX_LINES))

    def lines():
        for i in range(n):
            if i:
                time.sleep(STREAM_LINE_DELAY)
            yield f"line {i + 1} of {n} t={time.monotonic():.3f}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain; charset=utf-8")


# /stream-db/: 64 KB pieces, 256 MB in all unless ?mb= says less.
STREAM_DB_PIECE = b"x" * 65536


@require_GET
def stream_db(request):
    """A sync view that reads the database, then streams a large body: what a client that leaves
    mid-response must not leak (the request's connection is closed by Django's request_finished).
    The generator's end (closed by response.close(), or run to its end) is noted in the
    DEMO_FINISHED_LOG file, with how many pieces it yielded."""
    count = Product.objects.count()
    pieces = max(1, min(int(request.GET.get("mb", "256")), 1024)) * 16

    def body():
        yielded = 0
        try:
            for _ in range(pieces):
                yield STREAM_DB_PIECE
                yielded += 1
        finally:
            signals.note("stream-db yielded=%d of=%d products=%d" % (yielded, pieces, count))

    return StreamingHttpResponse(body(), content_type="application/octet-stream")


async def async_ping(request):
    """An async view: runs on the event loop itself (under ASGI), no thread."""
    await asyncio.sleep(0)
    return JsonResponse({"async": True, "method": request.method})


@sync_to_async
def _product_names():
    return list(Product.objects.order_by("id").values_list("name", flat=True))


async def async_products(request):
    """An async view reading the database through sync_to_async (Django's ORM is sync-only)."""
    names = await _product_names()
    return JsonResponse({"count": len(names), "names": names})


def visits(request):
    """A session counter: the session (database-backed) survives across requests of one client."""
    request.session["visits"] = request.session.get("visits", 0) + 1
    return JsonResponse({"visits": request.session["visits"]})


def boom(request):
    raise RuntimeError("boom: deliberate failure from the demo's /boom/ view")


def ping(request):
    return HttpResponse("ok")


def categories_naive(request):
    """Each product's category name, fetched the naive way: one query for the products, then one
    per product for its category (no select_related). An N+1 on purpose, for `--timing full` to
    report: "db;desc=\"N+1 queries, N-1 repeated\"" in Server-Timing."""
    names = [product.category.name for product in Product.objects.order_by("id")]
    return JsonResponse({"count": len(names), "categories": names})


def _catalogue_page():
    """A ~35 KB HTML page, built once: the cache benchmark measures serving it, not rendering it."""
    rows = "".join(
        f'<tr><td class="sku">SKU-{i:05d}</td><td><a href="/products/{i}/">Product number {i}</a></td>'
        f'<td class="price">{(i * 37) % 1000 / 10:.2f}</td><td>{"in stock" if i % 3 else "back soon"}</td></tr>\n'
        for i in range(250)
    )
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>Catalogue</title>"
            "<link rel=\"stylesheet\" href=\"/static/shop/site.css\"></head><body><h1>Catalogue</h1>"
            f"<table>{rows}</table></body></html>\n").encode()


CATALOGUE_PAGE = _catalogue_page()


@require_GET
@cache_control(max_age=60, public=True)
def catalogue(request):
    """The same prebuilt page every time, declared cacheable for a minute."""
    return HttpResponse(CATALOGUE_PAGE, content_type="text/html; charset=utf-8")


@require_GET
def big_page_view(request):
    """A prebuilt ~40 KB HTML page (built once at import): what compression costs, without the
    cost of rendering it (bench/e2e/compress_compare.py)."""
    return HttpResponse(big_page.PAGE, content_type="text/html; charset=utf-8")

