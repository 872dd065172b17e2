"""The app's ground floor (``lr_plugins.app.build``): one lr-train run builds each object once,
and the app's modules import each other without a circle (issue 19.1)."""

from __future__ import annotations

import ast
import functools
import json
import logging
import sys
from collections import Counter
from pathlib import Path

import lightning.pytorch as L
import pytest

import lr_plugins
from lr_plugins.app.data import DigitsDataModule
from lr_plugins.app.models import Classifier

APP = Path(lr_plugins.__file__).parent / "app"
TINY = ["data=digits", "model=mlp", "model.net.hidden=16", "schedule=constant", "trainer.max_epochs=1",
        "+trainer.limit_train_batches=3", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
        "trainer.enable_progress_bar=false"]


@pytest.fixture
def keep_logging():
    """Hydra's job logging reconfigures the root logger in-process: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


def _count_inits(monkeypatch, classes: dict[str, type]) -> tuple[Counter, list]:
    """Count every ``__init__`` of ``classes`` (by name); keep the Trainers' ``callbacks`` argument."""
    counts: Counter = Counter()
    trainer_callbacks: list = []
    for name, cls in classes.items():
        original = cls.__init__

        @functools.wraps(original)  # the signature stays the class's own (lr-train checks trainer keys against it)
        def init(self, *args, _original=original, _name=name, _cls=cls, **kwargs):
            if type(self) is _cls:  # the object's own class, not a subclass calling super().__init__
                counts[_name] += 1
                if _name == "Trainer":
                    trainer_callbacks.append(list(kwargs.get("callbacks") or []))
            _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", init)
    return counts, trainer_callbacks


def test_one_lr_train_run_builds_each_object_once(tmp_path, monkeypatch, capsys, keep_logging):
    """A real in-process lr-train run (Hydra, validation, fit, test) on tiny settings.

    The old app built the schedule 3 times (validation built both ``schedule`` and
    ``callbacks.schedule``, then training), the data module and the model twice, and 3 Trainers
    (a check, a plan, the run). Now: one of each, plus one light planning Trainer (no callbacks,
    no logger) that validation counts the steps with before DDP could spawn.
    """
    from lr_plugins.app import train as app

    counts, trainer_callbacks = _count_inits(monkeypatch, {
        "schedule": lr_plugins.Constant, "datamodule": DigitsDataModule, "model": Classifier, "Trainer": L.Trainer})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lr-train", *TINY, "hydra.run.dir=run"])
    app.main()
    capsys.readouterr()
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "ok" and result["history"]["step"] == [0, 1, 2]  # it really trained
    assert (counts["schedule"], counts["datamodule"], counts["model"]) == (1, 1, 1), counts
    fit_trainers = [cbs for cbs in trainer_callbacks if any(isinstance(c, lr_plugins.Constant) for c in cbs)]
    assert len(fit_trainers) == 1, trainer_callbacks  # the Trainer that fits has the one schedule object
    assert counts["Trainer"] == 2 and trainer_callbacks.count([]) == 1, trainer_callbacks  # + the plan's


def _imports(path: Path) -> list[tuple[str, bool]]:
    """``(module, at module level)`` for every ``lr_plugins.app.*`` module that ``path`` imports."""
    tree = ast.parse(path.read_text(), str(path))
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] if node.module != "lr_plugins.app" else [f"lr_plugins.app.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        out += [(n, id(node) in top) for n in names if n.startswith("lr_plugins.app.")]
    return out


def test_the_app_modules_import_each_other_without_a_circle():
    graph = {f"lr_plugins.app.{p.stem}": {m.split(".")[2] for m, _ in _imports(p)} for p in APP.glob("*.py")}
    graph = {k.split(".")[2]: v for k, v in graph.items()}

    def reach(start: str, seen: set[str]) -> set[str]:
        for nxt in graph.get(start, set()) - seen:
            seen.add(nxt)
            reach(nxt, seen)
        return seen

    circles = sorted(m for m in graph if m in reach(m, set()))
    assert circles == [], {m: sorted(graph[m]) for m in circles}
    assert graph["build"] <= {"data", "models"}, graph["build"]  # the ground floor: nothing of validate/preview/train
    assert "validate" in graph["preview"] and "validate" in graph["train"] and "build" in graph["validate"]


def test_no_function_level_imports_of_private_names_between_app_modules():
    offenders = []
    for path in APP.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lr_plugins.app") and id(node) not in top:
                offenders += [f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    assert offenders == []
