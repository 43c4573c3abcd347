"""The include checker (scripts/check_includes.py) on small made-up trees, and on gantry's own."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import check_includes  # noqa: E402

LAYERS = """
[folders]
"http" = []
"cache" = ["http"]
"embed" = ["http"]
"middleware" = ["cache", "http"]
"server" = ["middleware", "cache", "http"]
[files]
"server/worker.cpp" = ["embed"]
[system]
"Python.h" = ["embed"]
"""


def tree(tmp_path, files):
    (tmp_path / "layers.toml").write_text(LAYERS)
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return check_includes.main(["--root", str(tmp_path)])


def test_downward_includes_pass(tmp_path, capsys):
    rc = tree(tmp_path, {
        "http/request.hpp": "#pragma once\n",
        "cache/store.hpp": '#include "http/request.hpp"\n',
        "middleware/cache.cpp": '#include "cache/store.hpp"\n#include "http/request.hpp"\n#include <vector>\n',
        "server/session.cpp": '#include "middleware/cache.hpp"\n',
        "server/worker.cpp": '#include "embed/runtime.hpp"\n',
        "embed/runtime.cpp": "#include <Python.h>\n",
        "tests/server/anything_test.cpp": '#include "embed/runtime.hpp"\n#include <Python.h>\n',
    })
    assert rc == 0, capsys.readouterr().out


def test_one_upward_include_fails_and_is_named(tmp_path, capsys):
    rc = tree(tmp_path, {
        "http/request.hpp": "#pragma once\n",
        "cache/store.hpp": '#include "http/request.hpp"\n\n#include "server/config.hpp"\n',
        "server/config.hpp": "#pragma once\n",
    })
    out = capsys.readouterr().out
    assert rc == 1
    assert 'cache/store.hpp:3: cache/ may not include server/ ("server/config.hpp")' in out
    assert "1 include(s) against layers.toml" in out


def test_sideways_include_fails(tmp_path, capsys):
    rc = tree(tmp_path, {"embed/runtime.cpp": '#include "cache/store.hpp"\n', "cache/store.hpp": ""})
    assert rc == 1
    assert "embed/ may not include cache/" in capsys.readouterr().out


def test_a_file_rule_is_for_that_file_only(tmp_path, capsys):
    rc = tree(tmp_path, {"server/session.cpp": '#include "embed/runtime.hpp"\n', "embed/runtime.hpp": ""})
    assert rc == 1
    assert "server/session.cpp:1: server/ may not include embed/" in capsys.readouterr().out


def test_python_h_outside_embed_fails(tmp_path, capsys):
    rc = tree(tmp_path, {"middleware/x.cpp": "#define PY_SSIZE_T_CLEAN\n#include <Python.h>\n"})
    assert rc == 1
    assert "middleware/x.cpp:2: includes <Python.h>, which only embed/ may include" in capsys.readouterr().out


def test_an_include_into_no_folder_fails(tmp_path, capsys):
    rc = tree(tmp_path, {"http/x.hpp": '#include "util/strings.hpp"\n'})
    assert rc == 1
    assert "in no folder of layers.toml" in capsys.readouterr().out


def test_gantrys_own_tree_keeps_its_layers():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_includes.py")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
