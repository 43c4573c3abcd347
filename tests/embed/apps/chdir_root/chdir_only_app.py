"""Fixture: importable only when --chdir puts its directory on sys.path."""
from pathapp import application  # noqa: F401  (pathapp comes through --pythonpath)
