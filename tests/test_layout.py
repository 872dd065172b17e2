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
