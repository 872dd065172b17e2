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


# ---------------------------------------------------------------------- one Run: checked, drawn and trained
def test_validation_returns_the_run_that_trains(tmp_path):
    """The schedule object that validation checked against the plan is the one the Trainer runs:
    its fit-start reading of the steps equals the plan's."""
    from lr_plugins.app.build import compose_config
    from lr_plugins.app.train import train
    from lr_plugins.app.validate import validate

    cfg = compose_config([*TINY, "trainer.limit_val_batches=1", "test=false", "~logger", "trainer.enable_checkpointing=false"])
    run = validate(cfg, tmp_path)
    assert (run.steps_per_epoch, run.total_steps) == (3.0, 3.0)
    schedule = run.schedule
    assert schedule in run.callbacks and isinstance(schedule, lr_plugins.Constant)
    out = train(run)
    assert run.schedule is schedule and (schedule.fit_steps_per_epoch, schedule.fit_total_steps) == (3.0, 3.0)
    assert out["history"]["step"] == [0, 1, 2] and out["run_dir"] == str(tmp_path)


class NamedFinder(lr_plugins.LRFinder):
    """An LR finder under another class name: found by isinstance, not by its name."""


def test_a_finder_subclass_is_found_by_isinstance(tmp_path, capsys):
    """The old app looked for ``type(c).__name__ == "LRFinder"``: a subclass's pick went missing from the metrics."""
    from lr_plugins.app.build import compose_config
    from lr_plugins.app.train import train

    cfg = compose_config([*TINY, "lr_finder=steepest", f"lr_finder._target_={__name__}.NamedFinder", "lr_finder.num_steps=20",
                          "test=false", "~logger", "trainer.enable_checkpointing=false"])
    out = train(cfg, tmp_path)
    capsys.readouterr()
    assert out["metrics"]["lr_finder/suggestion"] == pytest.approx(out["history"]["lr"][0], rel=1e-12)


@pytest.mark.parametrize("form", ["optimizer", "list", "tuple of lists", "dict", "list of dicts"])
def test_preview_peak_from_every_form_configure_optimizers_returns(form, monkeypatch):
    """``max_lr: null``: the peak is the first optimizer's LR, read through the public
    ``configure_optimizers`` whatever form it returns; the run's own schedule is left as it was."""
    import torch

    from lr_plugins.app.build import build_run, compose_config, planned_peak

    run = build_run(compose_config([*TINY, "schedule.max_lr=null"]))
    opt = torch.optim.SGD(run.model.parameters(), lr=0.37)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    out = {"optimizer": opt, "list": [opt], "tuple of lists": ([opt], [sched]), "dict": {"optimizer": opt, "lr_scheduler": sched},
           "list of dicts": [{"optimizer": opt}]}[form]
    monkeypatch.setattr(run.model, "configure_optimizers", lambda: out)
    planned = planned_peak(run)
    assert planned.max_lr == 0.37 and run.schedule.max_lr is None
    assert planned.preview(3, 3)[0] == pytest.approx(0.37)  # Constant: the peak at every step


def test_docstring_examples():
    import doctest
    import importlib

    for name in ("lr_plugins.app.build", "lr_plugins.app.validate"):
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, name
