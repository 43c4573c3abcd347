"""Reads a gunicorn config file the way gunicorn does, for the master (server/config_sources.cpp).

The file is executed as the module ``__config__`` (kept in sys.modules, so its functions, the
server hooks, stay at hand); ``python:module.name`` imports a module instead. Its module-level
names that are gunicorn settings are read, the others ignored, as gunicorn ignores them. Each
value is checked as gunicorn's validators check it and turned into the text of its flag.
"""
import importlib
import importlib.machinery
import importlib.util
import os
import sys


class ConfigFileError(Exception):
    pass


def _module_names(location):
    if location.startswith("python:"):
        return vars(importlib.import_module(location[len("python:"):]))
    filename = location[len("file:"):] if location.startswith("file:") else location
    if not os.path.exists(filename):
        raise ConfigFileError("%r doesn't exist" % filename)
    name = "__config__"
    if os.path.splitext(filename)[1] in (".py", ".pyc"):
        spec = importlib.util.spec_from_file_location(name, filename)
    else:
        # gunicorn warns and executes it all the same.
        loader = importlib.machinery.SourceFileLoader(name, filename)
        spec = importlib.util.spec_from_file_location(name, filename, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return vars(module)


def _boolean(name, value):
    # gunicorn's validate_bool
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower().strip() in ("true", "false"):
        return value.lower().strip() == "true"
    raise ConfigFileError("Invalid value for %s: %r (not a boolean)" % (name, value))


def _text(name, value):
    if isinstance(value, bool):
        raise ConfigFileError("Invalid value for %s: %r" % (name, value))
    if isinstance(value, (list, tuple)):  # validate_string_to_list takes a list too
        return ",".join(str(v).strip() for v in value)
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ConfigFileError("Invalid value for %s: %r" % (name, value))


def read(location, forms):
    """[(name, [values])] for the gunicorn settings `location` sets; `forms` maps each setting
    name to its form: switch_on, switch_off, value, repeated, hook, file_only."""
    found = []
    for name, value in list(_module_names(location).items()):
        form = forms.get(name)
        if form is None or value is None:  # None: gunicorn's default
            continue
        if form == "switch_on":
            if _boolean(name, value):
                found.append((name, []))
        elif form == "switch_off":
            if not _boolean(name, value):
                found.append((name, []))
        elif form == "value":
            found.append((name, [_text(name, value)]))
        elif form == "repeated":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, (list, tuple)):
                raise ConfigFileError("Invalid value for %s: %r (not a list)" % (name, value))
            found.append((name, [_text(name, v) for v in value]))
        elif form == "hook":
            if not callable(value):
                raise ConfigFileError("Invalid value for %s: %r (not callable)" % (name, value))
            found.append((name, []))
        else:  # file_only
            found.append((name, [value if isinstance(value, str) else repr(value)]))
    return found
