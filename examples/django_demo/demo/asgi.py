"""ASGI entry point (Django 3.2 serves its sync views from a thread pool here)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

application = get_asgi_application()
