"""`manage.py seed`: create demo categories, tags and products.

Idempotent: rows are looked up by their unique names, so running it again
changes nothing.
"""
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction

from shop.models import Category, Product, Tag

CATEGORIES = {
    "books": "Books",
    "tools": "Tools",
    "coffee": "Coffee",
}

TAGS = ["new", "sale", "bestseller", "gift", "eco"]

PRODUCTS = [
    # name, category slug, price, tags, description
    ("The Pragmatic Programmer", "books", "39.90", ["bestseller"], "From journeyman to master."),
    ("Designing Data-Intensive Applications", "books", "45.00", ["bestseller", "gift"],
     "The big ideas behind reliable, scalable systems."),
    ("Structure and Interpretation of Computer Programs", "books", "52.50", ["gift"],
     "The wizard book."),
    ("Torque Wrench", "tools", "89.00", ["new"], "1/2 inch drive, 40-200 Nm."),
    ("Cordless Drill", "tools", "129.99", ["sale"], "18 V, two batteries."),
    ("Japanese Pull Saw", "tools", "34.20", ["eco", "gift"], "Cuts on the pull stroke."),
    ("Ethiopia Yirgacheffe 250g", "coffee", "11.50", ["new", "eco"], "Floral, citrus, bright."),
    ("Colombia Huila 1kg", "coffee", "32.00", ["sale"], "Caramel and red apple."),
    ("Espresso Blend 500g", "coffee", "17.80", ["bestseller", "eco"], "Chocolate, hazelnut."),
]


class Command(BaseCommand):
    help = "Create demo categories, tags and products (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        categories = {}
        for slug, name in CATEGORIES.items():
            categories[slug], _ = Category.objects.get_or_create(slug=slug, defaults={"name": name})
        tags = {name: Tag.objects.get_or_create(name=name)[0] for name in TAGS}

        created = 0
        for name, slug, price, tag_names, description in PRODUCTS:
            product, was_created = Product.objects.get_or_create(
                name=name,
                defaults={
                    "category": categories[slug],
                    "price": Decimal(price),
                    "description": description,
                },
            )
            if was_created:
                product.tags.set([tags[t] for t in tag_names])
                created += 1

        self.stdout.write(self.style.SUCCESS(
            f"seed: {created} products created; "
            f"{Category.objects.count()} categories, {Tag.objects.count()} tags, "
            f"{Product.objects.count()} products in total"
        ))
