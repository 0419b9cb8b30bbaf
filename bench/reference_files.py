#!/usr/bin/env python3
"""Lists the files of the authors' checkout that ``bench/reference_loader.py`` imports:
``src/dataset.py`` and every ``src.*`` module it pulls in, followed transitively.

The imports are read with ``ast`` (nothing is executed, so neither torch nor pandas is
needed here). ``make gpu-pack REF=DIR`` copies exactly these files, so the authors' code
travels to the GPU machine without ever entering this repository.

Usage: python3 bench/reference_files.py REPO      (prints one path per line, relative to REPO)
"""

import ast
import os
import sys

ENTRY = "src.dataset"  # what reference_loader.import_reference imports


def module_file(repo, module):
    """The file of a ``src.*`` module in ``repo``, or None when it is not there."""
    base = os.path.join(repo, *module.split("."))
    for cand in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(cand):
            return cand
    return None


def imported_modules(path):
    """The ``src``-package modules named by the import statements of one file."""
    tree = ast.parse(open(path, encoding="utf-8").read(), filename=path)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("src."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("src."):
                out.add(node.module)
            elif node.module == "src":
                out.update(f"src.{a.name}" for a in node.names)
    return out


def reference_files(repo):
    """Relative paths of every file the entry module needs, sorted; exits on a missing one."""
    todo, seen, files = [ENTRY], set(), []
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = module_file(repo, module)
        if path is None:
            if module == ENTRY:
                sys.exit(f"error: {repo}/src/dataset.py not found; is REF the authors' checkout?")
            continue  # `from src import name` may name a function, not a module
        files.append(os.path.relpath(path, repo))
        todo.extend(imported_modules(path))
    return sorted(files)


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    for f in reference_files(os.path.realpath(sys.argv[1])):
        print(f)


if __name__ == "__main__":
    main()
