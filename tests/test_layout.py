"""The shape of the library: a core that loads nothing built on it, short
functions, a docstring on everything public. (import-linter checks the
import rules themselves; see [tool.importlinter] in pyproject.toml.)"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import charrnn

PACKAGE = Path(charrnn.__file__).parent
MAX_FUNCTION_LINES = 60


def library_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def functions(tree: ast.AST):
    """``(qualified name, node, is public)`` of every function and method."""
    def walk(node, prefix: str, public: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                own_public = public and not child.name.startswith("_")
                if not isinstance(child, ast.ClassDef):
                    yield name, child, own_public
                yield from walk(child, name + ".", own_public and isinstance(child, ast.ClassDef))
    yield from walk(tree, "", True)


def test_import_charrnn_loads_only_the_core():
    code = "import sys, charrnn; print(' '.join(m for m in sys.modules if m.startswith('charrnn')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    outer = [m for m in loaded if m.split(".")[1:2] and m.split(".")[1] in ("viz", "scale", "course", "cli")]
    assert outer == [], f"import charrnn loaded {outer}"
    assert "charrnn.training" in loaded and "charrnn.sample" in loaded


def test_subpackage_names_are_reachable_from_the_top():
    assert charrnn.prepare_dataset.__module__ == "charrnn.scale.prepared"
    from charrnn.course import checks

    assert charrnn.course.checks is checks


def test_every_library_function_fits_on_a_screen():
    too_long = []
    for path in library_files():
        for name, node, _ in functions(ast.parse(path.read_text(encoding="utf-8"))):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                too_long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {name} ({lines} lines)")
    assert too_long == []


def test_every_public_function_has_a_docstring():
    missing = []
    for path in library_files():
        for name, node, public in functions(ast.parse(path.read_text(encoding="utf-8"))):
            dunder = node.name.startswith("__") and node.name.endswith("__")
            if public and not dunder and ast.get_docstring(node) is None:
                missing.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {name}")
    assert missing == []
