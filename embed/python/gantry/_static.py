"""Where a Django app keeps its static files, read once by the server after the app is loaded.

describe() returns plain values the native side copies out: the server serves STATIC_URL itself
(from STATIC_ROOT, or in DEBUG from the staticfiles finders' directories, as runserver does).
"""
import os
import sys


def _finder_sources(notes):
    """(directory, url sub-prefix) of every staticfiles finder, in Django's search order."""
    from django.contrib.staticfiles import finders

    sources = []
    for finder in finders.get_finders():
        if isinstance(finder, finders.FileSystemFinder):
            # STATICFILES_DIRS: entries may be ("prefix", "/dir").
            for prefix, root in finder.locations:
                sources.append((os.fspath(root), prefix or ""))
        elif isinstance(finder, finders.AppDirectoriesFinder):
            for app in finder.apps:
                storage = finder.storages[app]
                sources.append((os.fspath(storage.location), getattr(storage, "prefix", None) or ""))
        else:
            notes.append("staticfiles finder %s.%s is not followed natively (only the file system and app "
                         "directories finders are)" % (type(finder).__module__, type(finder).__qualname__))
    return sources


def describe():
    """(found, debug, static_url, static_root, [(dir, sub_prefix)], [notes]), or None."""
    if "django" not in sys.modules:
        return None
    try:
        from django.conf import settings

        if not settings.configured:
            return None
        static_url = settings.STATIC_URL or ""
        static_root = os.fspath(settings.STATIC_ROOT) if settings.STATIC_ROOT else ""
        debug = bool(settings.DEBUG)
        installed = "django.contrib.staticfiles" in settings.INSTALLED_APPS
    except Exception as exc:  # settings that cannot be read: the app serves what it can
        return (False, False, "", "", [], ["cannot read Django's static settings: %r" % (exc,)])
    notes = []
    # Django may prefix a relative STATIC_URL with SCRIPT_NAME; one with a scheme or host is a CDN.
    if "://" in static_url or static_url.startswith("//"):
        static_url = ""
    elif static_url and not static_url.startswith("/"):
        static_url = "/" + static_url
    sources = []
    if debug and installed:
        try:
            sources = _finder_sources(notes)
        except Exception as exc:
            notes.append("cannot list Django's staticfiles finders: %r" % (exc,))
    return (True, debug and installed, static_url, static_root, sources, notes)
