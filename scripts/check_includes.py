#!/usr/bin/python3
"""Checks that every #include in gantry's sources points the way layers.toml allows.

  scripts/check_includes.py            check the tree; each include that breaks a rule is printed
                                       with its file and line, and the exit status is 1
  scripts/check_includes.py --graph    print the folders and the includes between them

A file belongs to the longest folder of layers.toml that holds it. A folder may include itself
and the folders its rule lists; [files] adds what one file may include beyond its folder's rule;
[system] names <headers> only some folders may include. Files outside every folder (tests/,
bench/, fuzz/, examples/) are not checked. The rules are read from the tree's own layers.toml.
"""
import argparse
import collections
import pathlib
import re
import sys
import tomllib

INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^">]+)[">]', re.MULTILINE)
SOURCE_SUFFIXES = {".cpp", ".hpp", ".h", ".cc"}


class Layers:
    def __init__(self, rules):
        self.folders = {name.strip("/"): set(allowed) for name, allowed in rules.get("folders", {}).items()}
        self.files = {name: set(allowed) for name, allowed in rules.get("files", {}).items()}
        self.system = {name: set(allowed) for name, allowed in rules.get("system", {}).items()}
        for name, allowed in list(self.folders.items()) + list(self.files.items()):
            unknown = allowed - set(self.folders)
            if unknown:
                raise ValueError(f"layers.toml: {name} lists unknown folder(s) {sorted(unknown)}")

    def folder_of(self, path):
        """The longest folder holding `path` ("server/worker.cpp" -> "server"), or None."""
        best = None
        for folder in self.folders:
            if (path == folder or path.startswith(folder + "/")) and (best is None or len(folder) > len(best)):
                best = folder
        return best

    def allowed(self, path):
        folder = self.folder_of(path)
        return {folder} | self.folders[folder] | self.files.get(path, set())


def sources(root):
    for path in sorted(root.rglob("*")):
        if path.suffix in SOURCE_SUFFIXES and path.is_file() and "build" not in path.relative_to(root).parts:
            yield path


def includes(root, layers):
    """(file, line, kind, target, target_folder) for every include of a layered file."""
    for path in sources(root):
        rel = path.relative_to(root).as_posix()
        if layers.folder_of(rel) is None:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in INCLUDE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            kind, target = m.group(1), m.group(2)
            yield rel, line, kind, target, layers.folder_of(target) if kind == '"' else None


def violations(root, layers):
    found = []
    for rel, line, kind, target, target_folder in includes(root, layers):
        folder = layers.folder_of(rel)
        if kind == "<":
            allowed = layers.system.get(target)
            if allowed is not None and folder not in allowed:
                found.append(f"{rel}:{line}: includes <{target}>, which only {', '.join(sorted(allowed))}/ may include")
            continue
        if target_folder is None:
            if not (root / target).exists() and not (root / rel).parent.joinpath(target).exists():
                found.append(f"{rel}:{line}: includes \"{target}\", which is in no folder of layers.toml")
            continue
        if target_folder not in layers.allowed(rel):
            found.append(f"{rel}:{line}: {folder}/ may not include {target_folder}/ (\"{target}\"); "
                         f"{folder}/ may include: {', '.join(sorted(layers.allowed(rel) - {folder})) or 'nothing'}")
    return found


def graph(root, layers):
    arrows = collections.Counter()
    for rel, _, kind, _, target_folder in includes(root, layers):
        folder = layers.folder_of(rel)
        if kind == '"' and target_folder and target_folder != folder:
            arrows[(folder, target_folder)] += 1
    lines = []
    for folder in sorted(layers.folders):
        out = [f"{t} ({n})" for (f, t), n in sorted(arrows.items()) if f == folder]
        lines.append(f"{folder + '/':<14} -> {', '.join(out) if out else '(nothing)'}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent.parent)
    parser.add_argument("--graph", action="store_true", help="print the folder graph instead of checking")
    args = parser.parse_args(argv)
    layers = Layers(tomllib.loads((args.root / "layers.toml").read_text()))
    if args.graph:
        print("\n".join(graph(args.root, layers)))
        return 0
    found = violations(args.root, layers)
    for v in found:
        print(v)
    if found:
        print(f"{len(found)} include(s) against layers.toml")
        return 1
    print("includes: every arrow points the way layers.toml allows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
