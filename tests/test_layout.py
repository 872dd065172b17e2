"""The three wings stay apart: the library never imports the app (``lr_plugins.app``) or the lab
(``benchmarks``), and the product tests never import the lab."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "lr_plugins"
ALIAS = LIBRARY / "train.py"  # ``python -m lr_plugins.train``: the contract's alias of the app's entry point


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_the_library_imports_neither_the_app_nor_the_lab():
    offenders = {}
    for path in LIBRARY.rglob("*.py"):
        if LIBRARY / "app" in path.parents or path == ALIAS:
            continue
        bad = sorted(n for n in _imports(path) if n.startswith(("lr_plugins.app", "benchmarks")))
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


def test_product_tests_do_not_import_the_lab():
    offenders = {
        str(p.relative_to(ROOT)): sorted(n for n in _imports(p) if n.split(".")[0] == "benchmarks")
        for p in (ROOT / "tests").glob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_development_guide_layout_names_only_modules_that_exist():
    """docs/development.md's layout block lists files of lr_plugins/; a renamed one (``_atomic.py``) is caught."""
    import re

    text = (ROOT / "docs" / "development.md").read_text()
    block = text.split("## Layout", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    library = block.split("\nconf/", 1)[0]  # the lines under lr_plugins/, before the top-level folders
    named = set(re.findall(r"\b[\w]+\.py\b", library))
    assert named, "the layout block names no module"
    missing = sorted(n for n in named if not any(LIBRARY.rglob(n)))
    assert not missing, f"docs/development.md's layout names modules that do not exist: {missing}"
