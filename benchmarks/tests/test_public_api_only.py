"""The lab uses only the package's public API (issue 14.1): no private module, no private name, no finder internals."""

from __future__ import annotations

import ast
from pathlib import Path

LAB = Path(__file__).resolve().parents[1]
ALLOWED = {"lr_plugins", "lr_plugins.files", "lr_plugins.finder", "lr_plugins.snapshot", "lr_plugins.app.data",
           "lr_plugins.app.models"}
# The finder's rules are read from a result, never imported; its public curve arithmetic may be reused.
FINDER = {"find_lr", "LRFinder", "LRFinderResult", "smooth", "slope", "start_level"}


def _package_imports(path: Path) -> list[str]:
    """Every ``lr_plugins`` module a file imports and every name it takes from one, as ``module:name``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "lr_plugins"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lr_plugins":
            found += [f"{node.module}:{a.name}" for a in node.names]
    return found


def test_the_lab_imports_only_public_modules_and_names():
    offenders = {}
    for path in LAB.rglob("*.py"):
        bad = [imp for imp in _package_imports(path)
               if imp.split(":")[0] not in ALLOWED or imp.partition(":")[2].startswith("_")
               or (imp.split(":")[0] == "lr_plugins.finder" and imp.partition(":")[2] not in FINDER)]
        if bad:
            offenders[str(path.relative_to(LAB))] = bad
    assert offenders == {}


def test_the_check_sees_a_private_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from lr_plugins.finder.suggest import smooth\nfrom lr_plugins import _atomic\nimport lr_plugins.callback\n")
    assert _package_imports(bad) == ["lr_plugins.finder.suggest:smooth", "lr_plugins:_atomic", "lr_plugins.callback"]


def test_the_lab_keeps_no_copy_of_the_products_code():
    """Issue 19.3: the lab writes files with ``lr_plugins.files`` and reads curves with the finder's public
    ``smooth`` / ``slope`` / ``start_level``; it defines none of them again (the copies drift silently)."""
    import benchmarks._common as common
    import benchmarks._rules as rules
    from lr_plugins import finder

    copies = {}
    for path in LAB.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        found = (defined & {"smooth", "slope", "start_level", "atomic_open", "write_atomic"}) | (
            calls & {"tempfile.mkstemp", "os.replace", "np.gradient", "np.lib.stride_tricks.sliding_window_view"})
        if found:
            copies[path.name] = sorted(found)
    assert copies == {}
    assert (rules.slope, rules.smooth, rules.start_level) == (finder.slope, finder.smooth, finder.start_level)
    assert {"smooth", "slope", "start_level"} <= set(finder.__all__)
    target = LAB / "tests" / ".probe-no-copy.txt"
    try:  # the lab's writer is the package's: same bytes, no temporary file left
        assert common.write_text(target, "a\nb").read_bytes() == b"a\nb"
        assert [p.name for p in target.parent.glob(".probe-no-copy.txt.*")] == []
    finally:
        target.unlink(missing_ok=True)
