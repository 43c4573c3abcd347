"""gantry._config: a gunicorn config file read as gunicorn reads it, each value checked and
turned into its flag's text."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "embed" / "python"))

from gantry import _config  # noqa: E402

FORMS = {"workers": "value", "bind": "repeated", "preload_app": "switch_on", "sendfile": "switch_off",
         "forwarded_allow_ips": "value", "post_fork": "hook", "wsgi_app": "file_only",
         "secure_scheme_headers": "file_only", "umask": "value", "raw_env": "repeated"}


def read(tmp_path, text, name="gunicorn.conf.py"):
    path = tmp_path / name
    path.write_text(text)
    return dict(_config.read(str(path), FORMS))


def test_values_become_flag_text(tmp_path):
    found = read(tmp_path, "\n".join([
        "import os",
        "workers = 2 * 2",
        "bind = '127.0.0.1:1'",
        "preload_app = True",
        "sendfile = False",
        "forwarded_allow_ips = ['10.0.0.1', '10.0.0.2']",
        "umask = 0o22",
        "raw_env = ('A=1', 'B=2')",
        "wsgi_app = 'demo.wsgi:application'",
        "secure_scheme_headers = {'X-PROTO': 'https'}",
        "def post_fork(server, worker): pass",
        "unknown_name = 1",
        "_private = 2",
    ]))
    assert found == {"workers": ["4"], "bind": ["127.0.0.1:1"], "preload_app": [], "sendfile": [],
                     "forwarded_allow_ips": ["10.0.0.1,10.0.0.2"], "umask": ["18"], "raw_env": ["A=1", "B=2"],
                     "wsgi_app": ["demo.wsgi:application"], "secure_scheme_headers": ["{'X-PROTO': 'https'}"],
                     "post_fork": []}
    assert sys.modules["__config__"].post_fork  # the module stays, for its hooks


def test_defaults_spelled_out_give_nothing(tmp_path):
    assert read(tmp_path, "preload_app = False\nsendfile = True\nworkers = None\n") == {}
    assert read(tmp_path, "preload_app = 'true'\n") == {"preload_app": []}  # validate_bool takes the string


@pytest.mark.parametrize("text, message", [
    ("preload_app = 'sometimes'", "Invalid value for preload_app"),
    ("workers = True", "Invalid value for workers"),
    ("bind = 8000", "Invalid value for bind"),
    ("post_fork = 'not callable'", "Invalid value for post_fork"),
])
def test_invalid_values(tmp_path, text, message):
    with pytest.raises(_config.ConfigFileError, match=message):
        read(tmp_path, text + "\n")


def test_missing_file_and_other_extensions(tmp_path):
    with pytest.raises(_config.ConfigFileError, match="doesn't exist"):
        _config.read(str(tmp_path / "nosuch.py"), FORMS)
    # gunicorn executes a file of any other name as Python too (it warns).
    assert read(tmp_path, "workers = 3\n", name="settings.conf") == {"workers": ["3"]}
    assert dict(_config.read("file:" + str(tmp_path / "settings.conf"), FORMS)) == {"workers": ["3"]}


def test_python_module(tmp_path, monkeypatch):
    (tmp_path / "deploy_conf_mod.py").write_text("workers = 5\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert dict(_config.read("python:deploy_conf_mod", FORMS)) == {"workers": ["5"]}
