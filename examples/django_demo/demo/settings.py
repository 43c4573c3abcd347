"""Settings for the gantry Django demo (Django 3.2).

Kept close to what `django-admin startproject` generates, so that serving
this project exercises the same code paths a real project does.
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Dev default only; set DJANGO_SECRET_KEY in any real deployment.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY",
    "dev-insecure-gantry-demo-0c6f1e2b7a9d4f3e8b5a1c2d3e4f5a6b",
)

DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"

# The demo is served on whatever address a test or benchmark binds
# (127.0.0.1, [::1], a unix socket, a container name), so any Host is
# accepted. A real deployment lists its own host names here.
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "shop",
    "chat",
]

# Exactly the list `startproject` generates: benchmarks of /ping/ measure
# a request through Django's default middleware stack.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# DJANGO_CACHE_MIDDLEWARE=1: Django's own page cache (UpdateCacheMiddleware first,
# FetchFromCacheMiddleware last), for the cache benchmark. Under gantry's "cache" middleware the
# responses it marks with max-age are then answered natively, without reaching Python.
if os.environ.get("DJANGO_CACHE_MIDDLEWARE") == "1":
    MIDDLEWARE = (["django.middleware.cache.UpdateCacheMiddleware"] + MIDDLEWARE
                  + ["django.middleware.cache.FetchFromCacheMiddleware"])
    CACHE_MIDDLEWARE_SECONDS = 60

# DJANGO_CACHE=gantry: Django's cache API on gantry's store, shared by all workers of the server
# (a process-local stand-in outside it); the default is Django's LocMemCache.
if os.environ.get("DJANGO_CACHE") == "gantry":
    CACHES = {"default": {"BACKEND": "gantry.django.cache.GantryCache"}}

# DJANGO_GZIP=1: Django compresses (its GZipMiddleware first, as its docs say), the peer gantry's
# compression middleware is compared with (bench/e2e/compress_compare.py).
if os.environ.get("DJANGO_GZIP", "") == "1":
    MIDDLEWARE.insert(0, "django.middleware.gzip.GZipMiddleware")

ROOT_URLCONF = "demo.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "demo.wsgi.application"
ASGI_APPLICATION = "demo.asgi_channels.application"  # Channels' (demo/asgi.py is plain Django)

# Django Channels' channel layer (the chat room's groups): in-memory by default, which only reaches
# the consumers of one worker process; DEMO_CHANNEL_LAYER=redis://host:port/db shares the groups
# between the workers (and servers) through Redis (channels_redis).
if os.environ.get("DEMO_CHANNEL_LAYER", "").startswith("redis://"):
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                  "CONFIG": {"hosts": [os.environ["DEMO_CHANNEL_LAYER"]]}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
        # Several prefork workers share one sqlite file: wait for the write
        # lock instead of failing at once with "database is locked".
        "OPTIONS": {"timeout": 20},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_L10N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Uploads above this size are spooled to a temp file, not held in memory
# (this is Django's default, stated here because /upload/ relies on it).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Django's default only logs request errors to the console when DEBUG is on
# (and mails admins otherwise); a server operator wants the traceback of
# /boom/ and any other 500 on stderr in every mode.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
    },
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
