"""Settings of the django_timing test project: Django's default middleware plus
three of ours (a slow class with a process_view hook, a plain function
middleware, and one that opts out with MiddlewareNotUsed)."""
SECRET_KEY = "djtiming-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "djt_app",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "djt_app.middleware.SlowMiddleware",
    "django.middleware.common.CommonMiddleware",
    "djt_app.middleware.NotUsedMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "djt_app.middleware.function_middleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "djt_app.urls"
# Shared-cache memory database: a second thread (its own connection) sees the same tables.
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "file:djtiming?mode=memory&cache=shared"},
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
# /boom/ logs a traceback by design; keep the test output readable.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django.request": {"handlers": [], "level": "CRITICAL", "propagate": False}},
}
