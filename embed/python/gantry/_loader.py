"""Loads the WSGI application named on the command line, with gunicorn's rules.

"module:callable", "module" (callable `application`), "module:factory()",
"module:factory('a', 2)" (literal arguments only) and "module:obj.attr".
"""
import ast
import sys


class AppImportError(Exception):
    pass


def _dotted_names(node, spec):
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise AppImportError(f"Failed to parse {spec!r} as an attribute name or function call.")
    names.append(node.id)
    return list(reversed(names))


def load(spec):
    module_name, sep, expression = spec.partition(":")
    if not sep:
        expression = "application"
    module_name = module_name.strip()
    expression = expression.strip()
    if not module_name or not expression:
        raise AppImportError(f"Application {spec!r} is not of the form 'module:callable'.")

    try:
        node = ast.parse(expression, mode="eval").body
    except SyntaxError:
        raise AppImportError(
            f"Failed to parse {expression!r} as an attribute name or function call.") from None

    args = kwargs = None
    if isinstance(node, ast.Call):
        try:
            args = [ast.literal_eval(arg) for arg in node.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
        except ValueError:
            raise AppImportError(
                f"Failed to parse arguments as literal values: {expression!r}.") from None
        node = node.func
    names = _dotted_names(node, expression)

    # Import errors propagate with their own traceback: that is what the user needs to see.
    # __import__ (not importlib.import_module) so that CPython drops importlib's own frames from it.
    __import__(module_name)
    obj = sys.modules[module_name]
    for i, name in enumerate(names):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            where = ".".join([module_name] + names[:i]) if i else module_name
            raise AppImportError(f"Failed to find attribute {name!r} in {where!r}.") from None

    if args is not None:
        if not callable(obj):
            raise AppImportError(f"{expression!r}: {'.'.join(names)!r} is not callable.")
        obj = obj(*args, **kwargs)
        if obj is None:
            raise AppImportError(f"Factory {'.'.join(names)!r} in {module_name!r} returned None.")

    if not callable(obj):
        raise AppImportError(
            f"Application object {spec!r} must be callable (got {type(obj).__name__}).")
    return obj


def import_django_urls():
    """Imports a Django app's URLconf, and with it the views it names, as runserver's system
    checks do at start: under --reload a view that no longer imports is shown at once. Nothing
    for an app that is not Django or whose settings are not configured."""
    if "django" not in sys.modules:
        return
    from django.apps import apps
    from django.conf import settings
    if not settings.configured or not apps.ready:
        return
    from django.urls import get_resolver
    get_resolver().url_patterns
