"""Fixture: a Django project whose static settings the server reads (DEBUG from the environment)."""
import os

import django
from django.conf import settings

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = os.path.join(HERE, "djangostatic_files")

settings.configure(
    DEBUG=os.environ.get("DJANGOSTATIC_DEBUG") == "1",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="gantry-tests",
    INSTALLED_APPS=["django.contrib.staticfiles", "django.contrib.admin", "django.contrib.auth",
                    "django.contrib.contenttypes"],
    DATABASES={},
    STATIC_URL=os.environ.get("DJANGOSTATIC_URL", "static/"),
    STATIC_ROOT="/srv/collected",
    STATICFILES_DIRS=[os.path.join(FILES, "assets"), ("vendor", os.path.join(FILES, "vendor"))],
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402

urlpatterns = []
application = get_wsgi_application()
