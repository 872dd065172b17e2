"""The library touches other libraries' private internals only where listed here, each with its reason.

An ``ast`` scan of ``lr_plugins/`` finds every

* attribute with a leading underscore read or written on an object other than ``self``/``cls``
  (``trainer._signal_connector``, ``cfg._get_node``);
* ``self._name`` where no class of the package defines ``_name``: a private member inherited
  from another library's class (``ModelCheckpoint._save_last_checkpoint``);
* ``getattr``/``setattr``/``hasattr``/``delattr`` of such a name given as a string;
* import of a private module or name of another package (``hydra._internal``, ``from x import _y``).

Each must be in :data:`ALLOWED` with the one function of its module that holds it and the reason
no public API does the job; a use anywhere else, or a listed one that is gone, fails. The canary
tests below then exercise every listed internal against the installed Lightning / torch /
torchmetrics, so an upgrade that moves one fails here by name instead of changing behaviour quietly.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
from conftest import TinyModule, make_loader, make_trainer

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "lr_plugins"

#: (module, private name) -> (the one function that uses it, why no public API does).
ALLOWED: dict[tuple[str, str], tuple[str, str]] = {
    ("lr_plugins/app/build.py", "_data_connector"): (
        "_attach_as_fit_does",
        "Lightning 2.6: Trainer._data_connector.attach_data is the step of Trainer.fit that links a data "
        "module; no public call attaches data without fitting (lr-preview and the fit plan need it)."),
    ("lr_plugins/app/signals.py", "_signal_connector"): (
        "_set_lightning_sigterm_flag",
        "Lightning 2.6: Trainer.received_sigterm is a read-only property over "
        "_signal_connector.received_sigterm; raising it is how SIGINT stops at a batch boundary."),
    ("lr_plugins/app/checkpointing.py", "_should_skip_saving_checkpoint"): (
        "_write_last_unless_saved",
        "Lightning 2.6: ModelCheckpoint has no public call that writes last.ckpt alone; these are the "
        "steps of its own on_train_epoch_end."),
    ("lr_plugins/app/checkpointing.py", "_save_last_checkpoint"): (
        "_write_last_unless_saved", "as _should_skip_saving_checkpoint (keeps last_model_path, link, versions)."),
    ("lr_plugins/app/checkpointing.py", "_monitor_candidates"): (
        "_write_last_unless_saved", "as _should_skip_saving_checkpoint (the names formatting last.ckpt)."),
    ("lr_plugins/lr_logging.py", "_logger_connector"): (
        "_monitor_clock",
        "Lightning 2.6: LearningRateMonitor itself asks trainer._logger_connector.should_update_logs; "
        "the same condition keeps the schedule's series identical to the monitor's."),
    ("lr_plugins/lr_logging.py", "_batches_that_stepped"): (
        "_monitor_clock",
        "Lightning 2.6: LearningRateMonitor itself logs at fit_loop.epoch_loop._batches_that_stepped "
        "(global_step counts every optimizer's steps, not the batches that stepped)."),
    ("lr_plugins/distributed.py", "_start_method"): (
        "is_spawn_strategy",
        "Lightning 2.6: a DDPStrategy instance keeps its start method only in _start_method "
        "(strategy.launcher exists only after a Trainer set it up)."),
    ("lr_plugins/finder/state.py", "_update_count"): (
        "_metric_counters",
        "torchmetrics 1.9: update_count is a read-only property; the range test's restore puts it back."),
    ("lr_plugins/finder/state.py", "_computed"): (
        "_metric_counters", "torchmetrics 1.9: the compute() cache has no public name; restored with the states."),
    ("lr_plugins/finder/apply.py", "_last_lr"): (
        "_scale_last_lr",
        "torch: LRScheduler.get_last_lr() returns _last_lr and has no setter; rescaled so it reports the pick."),
    ("lr_plugins/finder/api.py", "_planned"): (
        "find_lr",
        "lr_plugins' own LRFinder (finder/callback.py defines _planned): find_lr tells its finder the "
        "schedule it plans; no other library's internals."),
}


def _own_names() -> set[str]:
    """Every name the package itself defines (functions, classes, assigned attributes and variables)."""
    names: set[str] = set()
    for path in LIBRARY.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_self(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


class _Scan(ast.NodeVisitor):
    """``(private name, enclosing function, line)`` of every private use of another library in one module."""

    def __init__(self, own: set[str]) -> None:
        self.own, self.found, self.function = own, [], "<module>"

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        outer, self.function = self.function, node.name
        self.generic_visit(node)
        self.function = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    def _add(self, name: str, node: ast.AST) -> None:
        self.found.append((name, self.function, node.lineno))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _private(node.attr) and (not _is_self(node.value) or node.attr not in self.own):
            self._add(node.attr, node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if (isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str) and _private(node.args[1].value)
                and (not _is_self(node.args[0]) or node.args[1].value not in self.own)):
            self._add(node.args[1].value, node)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if any(_private(part) for part in alias.name.split(".")):
                self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module or node.module.split(".")[0] in ("lr_plugins", "__future__"):
            return
        if any(_private(part) for part in node.module.split(".")):
            self._add(node.module, node)
        for alias in node.names:
            if _private(alias.name):
                self._add(f"{node.module}.{alias.name}", node)


def private_uses() -> dict[tuple[str, str], list[tuple[str, int]]]:
    """``(module, private name) -> [(function, line), ...]`` over the whole package."""
    own = _own_names()
    uses: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for path in sorted(LIBRARY.rglob("*.py")):
        scan = _Scan(own)
        scan.visit(ast.parse(path.read_text(), str(path)))
        for name, function, line in scan.found:
            uses.setdefault((path.relative_to(ROOT).as_posix(), name), []).append((function, line))
    return uses


def test_the_scan_finds_each_kind_of_private_use(tmp_path):
    """The scanner itself: each kind it must catch is caught, and the package's own names are not."""
    code = (
        "from hydra._internal.utils import x\nimport torch._dynamo\nfrom omegaconf import _utils\n"
        "class C(Base):\n"
        "    def __init__(self):\n        self._mine = 1\n"
        "    def f(self, trainer, cfg):\n"
        "        cfg._get_node('a')\n        self._mine\n        self._inherited(trainer)\n"
        "        getattr(trainer, '_signal_connector')\n        trainer.__class__\n"
    )
    scan = _Scan({"C", "_mine", "f", "__init__"})
    scan.visit(ast.parse(code))
    assert {name for name, _, _ in scan.found} == {
        "hydra._internal.utils", "torch._dynamo", "omegaconf._utils", "_get_node", "_inherited", "_signal_connector"}


def test_private_internals_of_other_libraries_only_where_listed():
    uses = private_uses()
    unlisted = {f"{module}:{line} {name} (in {function})" for (module, name), where in uses.items()
                if (module, name) not in ALLOWED for function, line in where}
    assert not unlisted, ("private internals of another library used outside the allow-list of "
                          f"tests/test_private_api.py (use a public API, or list it with its reason): {sorted(unlisted)}")
    elsewhere = {f"{module}:{line} {name} (in {function}, listed for {ALLOWED[module, name][0]})"
                 for (module, name), where in uses.items() for function, line in where
                 if function != ALLOWED[module, name][0]}
    assert not elsewhere, f"a listed internal is used outside the one function that holds it: {sorted(elsewhere)}"
    stale = sorted(f"{module} {name}" for module, name in ALLOWED if (module, name) not in uses)
    assert not stale, f"allow-list entries no longer used (delete them): {stale}"


def test_each_module_keeps_its_internals_in_one_function():
    functions: dict[str, set[str]] = {}
    for (module, _), (function, reason) in ALLOWED.items():
        functions.setdefault(module, set()).add(function)
        assert reason.strip(), (module, function)
    assert {m: f for m, f in functions.items() if len(f) > 1} == {}


# ---------------------------------------------------------------------- canaries: each listed internal still works
def _trainer(tmp_path, **kwargs) -> L.Trainer:
    return make_trainer(tmp_path, [], **kwargs)


def test_canary_sigterm_flag_is_what_trainer_received_sigterm_reads(tmp_path):
    from lr_plugins.app.signals import _set_lightning_sigterm_flag

    trainer = _trainer(tmp_path)
    assert trainer.received_sigterm is False
    _set_lightning_sigterm_flag(trainer)
    assert trainer.received_sigterm is True


def test_canary_monitor_clock_matches_lightnings_logging_condition(tmp_path):
    """Over a fit: the logging condition and step read where LearningRateMonitor reads them."""
    from lr_plugins.lr_logging import _monitor_clock

    seen = []

    class Probe(L.Callback):
        def on_train_batch_start(self, trainer, *args):
            seen.append(_monitor_clock(trainer))

    make_trainer(tmp_path, [Probe()], max_epochs=1, log_every_n_steps=3).fit(TinyModule(), make_loader(n=64))
    # 8 optimizer steps; before step k (0-based) the step is k and logs are written when (k + 1) % 3 == 0.
    assert seen == [((k + 1) % 3 == 0, k) for k in range(8)]


def test_canary_data_connector_attaches_the_datamodule(tmp_path):
    from lr_plugins.app.build import _attach_as_fit_does

    class Data(L.LightningDataModule):
        def setup(self, stage):
            self.stage = stage

        def train_dataloader(self):
            return make_loader(n=32)

    trainer, model, data = _trainer(tmp_path, max_epochs=1), TinyModule(), Data()
    _attach_as_fit_does(trainer, model, data)
    assert trainer.datamodule is data and data.stage == "fit" and model.trainer is trainer


def test_canary_last_checkpoint_is_written_at_each_epoch_end(tmp_path):
    """Plain ModelCheckpoint(save_top_k=0, save_last=True) writes last.ckpt only at the end of the fit."""
    from lr_plugins.app.checkpointing import LastCheckpoint

    steps = []

    class AtEpochStart(L.Callback):
        def on_train_epoch_start(self, trainer, *args):
            last = tmp_path / "ckpt" / "last.ckpt"
            steps.append(torch.load(last, weights_only=True)["global_step"] if last.exists() else None)

    make_trainer(tmp_path, [LastCheckpoint(dirpath=tmp_path / "ckpt"), AtEpochStart()], enable_checkpointing=True,
                 max_epochs=3).fit(TinyModule(), make_loader(n=16))
    assert steps == [None, 2, 4]


def test_canary_is_spawn_strategy_reads_a_ddp_instance():
    from lightning.pytorch.strategies import DDPStrategy

    from lr_plugins.distributed import is_spawn_strategy

    assert is_spawn_strategy(DDPStrategy(start_method="spawn")) and not is_spawn_strategy(DDPStrategy())


def test_canary_metric_counters_restore_update_count_and_compute():
    import torchmetrics

    from lr_plugins.finder.state import TrainingState

    module = torch.nn.Module()
    module.mean = torchmetrics.MeanMetric()
    module.mean.update(torch.tensor([1.0, 3.0]))
    before = module.mean.compute()
    state = TrainingState(module, [])
    module.mean.update(torch.tensor([100.0]))
    module.mean.update(torch.tensor([200.0]))
    assert module.mean.update_count == 3
    state.restore()
    assert module.mean.update_count == 1
    assert module.mean.compute() == before == 2.0


def test_canary_last_lr_is_what_get_last_lr_reports():
    from lr_plugins.finder.apply import _scale_last_lr

    opt = torch.optim.SGD([{"params": [torch.zeros(1)]}, {"params": [torch.zeros(1)], "lr": 0.01}], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    _scale_last_lr(sched, [2.0, 3.0])
    assert sched.get_last_lr() == pytest.approx([0.2, 0.03])


def test_canary_find_lr_plans_through_its_finder():
    from lr_plugins.finder.callback import LRFinder

    assert LRFinder()._planned is None  # the attribute find_lr sets
