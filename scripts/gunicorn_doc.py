#!/usr/bin/env python3
"""Writes the settings table of docs/gunicorn.md from the code: `gantry --print-settings-table`
(server/gunicorn_settings.cpp is its single source). `--check` only compares, for the tests.

    /usr/bin/python3 scripts/gunicorn_doc.py [--check] [GANTRY_BIN]
"""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(REPO, "docs", "gunicorn.md")
BEGIN = "<!-- settings table: written by scripts/gunicorn_doc.py from gantry --print-settings-table -->\n"
END = "<!-- end of the settings table -->\n"


def table(gantry):
    return subprocess.run([gantry, "--print-settings-table"], check=True, capture_output=True, text=True).stdout


def replaced(text, new_table):
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END)
    return text[:start] + new_table + text[end:]


def main(argv):
    check = "--check" in argv
    rest = [a for a in argv if a != "--check"]
    gantry = rest[0] if rest else os.path.join(REPO, "build", "release", "gantry")
    with open(DOC) as f:
        text = f.read()
    wanted = replaced(text, table(gantry))
    if check:
        if wanted != text:
            print("docs/gunicorn.md is not what the code says: run scripts/gunicorn_doc.py", file=sys.stderr)
            return 1
        return 0
    with open(DOC, "w") as f:
        f.write(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
