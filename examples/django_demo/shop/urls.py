from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.product_list, name="product-list"),
    path("products/new/", views.product_create, name="product-create"),
    path("products/<int:pk>/", views.product_detail, name="product-detail"),
    path("api/products/", views.api_products, name="api-products"),
    path("api/products/<int:pk>/", views.api_product, name="api-product"),
    path("upload/", views.upload, name="upload"),
    path("stream/", views.stream, name="stream"),
    path("stream-db/", views.stream_db, name="stream-db"),
    path("async/ping/", views.async_ping, name="async-ping"),
    path("async/products/", views.async_products, name="async-products"),
    path("visits/", views.visits, name="visits"),
    path("boom/", views.boom, name="boom"),
    path("ping/", views.ping, name="ping"),
    path("catalogue/", views.catalogue, name="catalogue"),
    path("big-page/", views.big_page_view, name="big-page"),
    path("api/categories-naive/", views.categories_naive, name="categories-naive"),
]
