"""The ground floor of the ``lr-train`` app: compose the config, build every object once, plan the fit.

``lr-train`` and ``lr-preview`` share one path: :func:`compose_config` composes the primary config
(``conf/lr_train.yaml``) with the command line's overrides, :func:`build_run` builds the run's
objects from it exactly once (the ``callbacks`` dict group, the data module, the model) into a
:class:`Run`, and :func:`plan_fit` counts the optimizer steps the fit will take. The other app
modules use that one :class:`Run`: :mod:`~lr_plugins.app.validate` checks it (and refuses a bad
config before any step), :mod:`~lr_plugins.app.preview` draws the schedule from it, and
:mod:`~lr_plugins.app.train` fits it: the schedule object that validation checked is the one the
Trainer runs. This module imports nothing from the other app modules.

A node that cannot be built (an unknown key, a bad value) is a :class:`ConfigError` with one line
naming the node, e.g. ``schedule: TypeError: ... got an unexpected keyword argument 'hlod';
allowed keys of schedule (lr_plugins.WarmupCosine): hold, max_lr, ...``.

Example:
    >>> run = build_run(compose_config(["data=digits", "model=mlp", "trainer.max_epochs=2"]))
    >>> type(run.schedule).__name__, type(run.datamodule).__name__
    ('WarmupCosine', 'DigitsDataModule')
    >>> plan_fit(run)  # ceil(1213 training images / 64 per batch) = 19 steps per epoch
    (19.0, 38.0)
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import os
import re
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lr_plugins.callback import ScheduleCallback
from lr_plugins.finder import LRFinder
from lr_plugins.training_length import steps_per_epoch, total_steps

__all__ = ["ConfigError", "one_line", "config_dir", "compose_config", "Run", "build_run", "build_node",
           "instantiate_callbacks", "fill_in_features", "plan_fit", "planned_peak", "CALLBACK_GROUPS"]

#: Top-level groups whose node is a callback (the ``callbacks`` dict group refers to them by
#: interpolation: ``schedule: ${oc.select:schedule,null}``).
CALLBACK_GROUPS = ("schedule", "snapshot", "lr_finder")
_RUN_FOLDER = "${hydra:runtime.output_dir}"


class ConfigError(Exception):
    """A config value that cannot be used; raised before any training step."""


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


# ---------------------------------------------------------------------- the config
def config_dir() -> str:
    """The primary config folder: ``conf/`` of a source checkout, else the wheel's copy."""
    here = Path(__file__).resolve().parent
    candidates = (here / "_conf", here.parents[1] / "conf")
    for candidate in candidates:
        if (candidate / "lr_train.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"lr_train.yaml not found in {' or '.join(map(str, candidates))}")


def compose_config(overrides: list[str]) -> DictConfig:
    """The ``lr-train`` config with ``overrides`` applied (Hydra's compose API)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3", job_name="lr_preview"):
        return compose(config_name="lr_train", overrides=overrides)


# ---------------------------------------------------------------------- one node
def _allowed_keys(target: Any) -> list[str]:
    names: list[str] = []
    for cls in getattr(target, "__mro__", [target]):
        init = vars(cls).get("__init__") if isinstance(cls, type) else cls
        if init is None or cls is object:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in names:
                names.append(p.name)
    return names


def build_node(node: Any, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node, **kwargs)``; any failure is a one-line :class:`ConfigError` naming ``key``.

    Example:
        >>> build_node(OmegaConf.create({"_target_": "lr_plugins.SGDR", "cycle_length": 2}), "schedule").cycle_length
        2.0
        >>> build_node(OmegaConf.create({"_target_": "lr_plugins.SGDR", "cycle_length": 2, "hlod": 1}), "schedule")
        Traceback (most recent call last):
        ...
        lr_plugins.app.build.ConfigError: schedule: TypeError: ... unexpected keyword argument 'hlod'; allowed keys of schedule (lr_plugins.SGDR): cycle_length, ...
    """
    from hydra.utils import get_object, instantiate

    try:
        return instantiate(node, **kwargs)
    except Exception as e:
        cause = e.__cause__ or e
        msg = f"{key}: {type(cause).__name__}: {cause}"
        target = node.get("_target_") if isinstance(node, DictConfig) else None
        if "unexpected keyword argument" in str(cause) and target:
            try:
                msg += f"; allowed keys of {key} ({target}): {', '.join(_allowed_keys(get_object(target)))}"
            except Exception:  # noqa: BLE001
                pass
        raise ConfigError(one_line(msg)) from e


def fill_in_features(model_cfg: DictConfig, datamodule: Any) -> None:
    """``model.net.in_features: null`` means: the flattened input size of the data."""
    net = model_cfg.get("net")
    if isinstance(net, DictConfig) and "in_features" in net and net.in_features is None:
        net.in_features = int(math.prod(datamodule.input_shape))


def _in_run_folder(node: DictConfig, run_dir: str | os.PathLike | None) -> DictConfig:
    """``node`` with ``${hydra:runtime.output_dir}`` read as ``run_dir`` (else the current folder)
    when no Hydra run is set up (``lr-preview`` and in-process callers compose without one).

    Only nodes that mention it are copied; building them writes nothing.
    """
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return node
    raw = OmegaConf.to_yaml(node)
    if _RUN_FOLDER not in raw:
        return node
    folder = str(run_dir) if run_dir is not None else os.getcwd()
    return typing.cast(DictConfig, OmegaConf.create(raw.replace(_RUN_FOLDER, folder)))


# ---------------------------------------------------------------------- the callbacks group
def _group_of(raw: Any) -> str | None:
    """``schedule`` for an entry written ``${schedule}`` or ``${oc.select:schedule,null}``, else None."""
    match = re.fullmatch(r"\$\{(?:oc\.select:)?([\w.]+)(?:,[^}]*)?\}", raw.strip()) if isinstance(raw, str) else None
    return match.group(1) if match else None


def _is_checkpoint(conf: DictConfig) -> bool:
    """Whether ``conf`` builds a Lightning checkpoint callback (left out with ``enable_checkpointing=false``)."""
    from hydra.utils import get_object
    from lightning.pytorch.callbacks import Checkpoint

    try:
        target = get_object(str(conf["_target_"]))
    except Exception:  # noqa: BLE001 - a bad target: building it reports the error
        return False
    return isinstance(target, type) and issubclass(target, Checkpoint)


def _callback_entries(callbacks_cfg: Any, checkpointing: bool = True) -> list[tuple[str, str | None, DictConfig]]:
    """``(key, group, node)`` per entry of the ``callbacks`` group that builds a callback.

    ``key`` names the entry in an error (the group's own name for an interpolated entry:
    ``schedule``, not ``callbacks.schedule``); ``group`` is the top-level group it refers to.
    """
    if not callbacks_cfg:
        return []
    if not isinstance(callbacks_cfg, DictConfig):
        raise ConfigError(f"callbacks={callbacks_cfg!r} is not allowed: it must be a dict of callback configs")
    raw = typing.cast(dict, OmegaConf.to_container(callbacks_cfg, resolve=False))  # entries as written
    out = []
    for name in callbacks_cfg:
        group = _group_of(raw.get(name))
        conf = callbacks_cfg[name]
        if not isinstance(conf, DictConfig) or "_target_" not in conf:
            continue  # null (schedule: ${schedule} with schedule=null) or no _target_: skipped
        if not checkpointing and _is_checkpoint(conf):
            continue
        out.append((group or f"callbacks.{name!s}", group, conf))
    return out


def instantiate_callbacks(callbacks_cfg: DictConfig | None, checkpointing: bool = True,
                          run_dir: str | os.PathLike | None = None) -> list[Any]:
    """Build the ``callbacks`` dict group, in order, as lightning-hydra-template's loop does.

    Every entry that is a config with a ``_target_`` becomes a callback; ``null`` entries (e.g.
    ``schedule: ${schedule}`` while ``schedule=null``) and entries without ``_target_`` are
    skipped. A failure raises :class:`ConfigError` naming the entry (the group's own name for an
    interpolated entry: ``schedule``, not ``callbacks.schedule``). With ``checkpointing=False``
    (``trainer.enable_checkpointing=false``) checkpoint callbacks (``ModelCheckpoint``) are left out.

    Example:
        >>> cfg = OmegaConf.create({"schedule": {"_target_": "lr_plugins.SGDR", "cycle_length": 2},
        ...                         "off": None})
        >>> [type(c).__name__ for c in instantiate_callbacks(cfg)]
        ['SGDR']
    """
    entries = _callback_entries(callbacks_cfg, checkpointing)
    return [build_node(_in_run_folder(conf, run_dir), key) for key, _, conf in entries]


# ---------------------------------------------------------------------- the run
@dataclass
class Run:
    """Everything one ``lr-train`` run is built from, each object built once by :func:`build_run`.

    Attributes:
        cfg: The composed config.
        run_dir: The run folder (``None`` for ``lr-preview``: no run folder).
        callbacks: The Trainer's callbacks: the ``callbacks`` dict group, in order.
        schedule: The schedule callback among them (``isinstance`` of
            :class:`~lr_plugins.callback.ScheduleCallback`), else the ``schedule`` group's object
            when no ``callbacks`` entry refers to it (checked and drawn, not trained), else None.
        finder: The :class:`~lr_plugins.finder.LRFinder` among them (or the ``lr_finder`` group's), else None.
        finder_stops: ``lr_finder.stop=true``: the range test is run, its pick printed, nothing trained.
        finder_args: The finder node's arguments (what ``lr_finder.stop=true`` runs ``find_lr`` with).
        datamodule: The data module.
        model: The LightningModule (``model.net.in_features: null`` filled in from the data).
        trainer_kwargs: The ``trainer`` group as keyword arguments (``default_root_dir`` set to ``run_dir``).
        unused: Top-level callback groups (``schedule``, ``snapshot``, ``lr_finder``) that no
            ``callbacks`` entry refers to: built once so that their own checks run; the Trainer
            does not get them.
        steps_per_epoch: Optimizer steps per epoch, once :func:`plan_fit` has planned the fit
            (``inf`` for an unsized train dataloader).
        total_steps: Optimizer steps of the fit, once planned (``inf`` for endless training).
        planner: The light Trainer (no callbacks, no logger) the steps were counted with.
    """

    cfg: DictConfig
    run_dir: Path | None
    callbacks: list[Any]
    schedule: ScheduleCallback | None
    finder: LRFinder | None
    finder_stops: bool
    datamodule: Any
    model: Any
    trainer_kwargs: dict[str, Any]
    unused: dict[str, Any] = field(default_factory=dict)
    finder_args: dict[str, Any] = field(default_factory=dict, repr=False)
    steps_per_epoch: float | None = None
    total_steps: float | None = None
    planner: Any = field(default=None, repr=False)


def _first(objects: list[Any], cls: type) -> Any:
    return next((o for o in objects if isinstance(o, cls)), None)


def _arguments(node: DictConfig, run_dir: str | os.PathLike | None) -> dict[str, Any]:
    """The resolved keyword arguments of ``node`` (its ``_target_`` left out)."""
    args = typing.cast(dict, OmegaConf.to_container(_in_run_folder(node, run_dir), resolve=True))
    return {k: v for k, v in args.items() if k != "_target_"}


def build_run(cfg: DictConfig, run_dir: str | os.PathLike | None = None) -> Run:
    """Seed, then build the run's objects from ``cfg``, each exactly once (their own checks run).

    Builds the ``callbacks`` dict group (and any top-level callback group it does not refer to,
    for its checks), the data module and the model; the Trainer and the logger are built by
    ``lr-train`` itself. Nothing is written.

    Raises:
        ConfigError: a node that cannot be built, or ``lr_finder.stop=true`` with an
            ``hparams_search`` (``optimized_metric``): one line naming the key.
    """
    import lightning.pytorch as L

    L.seed_everything(cfg.get("seed", 0), workers=True, verbose=False)
    trainer_cfg = cfg.get("trainer")
    checkpointing = not isinstance(trainer_cfg, DictConfig) or trainer_cfg.get("enable_checkpointing", True) is not False
    entries = _callback_entries(cfg.get("callbacks"), checkpointing)
    built = [(conf, build_node(_in_run_folder(conf, run_dir), key)) for key, _, conf in entries]
    referred = {group for _, group, _ in entries}
    alone = [g for g in CALLBACK_GROUPS if g not in referred and isinstance(cfg.get(g), DictConfig) and "_target_" in cfg[g]]
    unused = {g: build_node(_in_run_folder(cfg[g], run_dir), g) for g in alone}
    nodes = [*built, *((cfg[g], unused[g]) for g in alone)]
    objects = [obj for _, obj in nodes]
    finder = _first(objects, LRFinder)
    finder_args = _arguments(next(conf for conf, obj in nodes if obj is finder), run_dir) if finder else {}
    finder_stops = bool(finder is not None and finder.stop)
    if finder_stops and cfg.get("optimized_metric"):
        raise ConfigError(
            f"lr_finder.stop=true trains nothing, so there is no {cfg.optimized_metric!r} for the "
            "hparams_search sweeper to optimise: drop lr_finder.stop=true or hparams_search."
        )
    for group in ("data", "model"):
        if not isinstance(cfg.get(group), DictConfig):
            raise ConfigError(f"{group}={cfg.get(group)!r} is not allowed: lr-train needs a {group} config "
                              f"with a _target_ (choose an option of the {group} group)")
    datamodule = build_node(cfg.data, "data")
    model_cfg = cfg.model.copy()
    fill_in_features(model_cfg, datamodule)
    model = build_node(model_cfg, "model")
    trainer_kwargs = typing.cast(dict, OmegaConf.to_container(trainer_cfg, resolve=True)) if trainer_cfg else {}
    if run_dir is not None:
        trainer_kwargs.setdefault("default_root_dir", str(run_dir))
    return Run(
        cfg=cfg, run_dir=Path(run_dir) if run_dir is not None else None, callbacks=[obj for _, obj in built],
        schedule=_first(objects, ScheduleCallback), finder=finder, finder_stops=finder_stops,
        datamodule=datamodule, model=model, trainer_kwargs=trainer_kwargs, unused=unused, finder_args=finder_args,
    )


# ---------------------------------------------------------------------- the plan
def _attach_as_fit_does(trainer: Any, model: Any, datamodule: Any) -> None:
    """Attach ``model`` and ``datamodule`` to ``trainer`` the way ``Trainer.fit`` does, without fitting.

    Lightning has no public call for this: ``Trainer.fit`` attaches the data and then runs (with
    ``ddp_spawn`` it starts processes), and only then fills in ``max_epochs: null``.
    ``trainer._data_connector.attach_data`` is the private step of ``Trainer._fit_impl`` that
    links the data module; the app uses it here and nowhere else.
    """
    # Lightning internals (checked against Lightning 2.6; listed in tests/test_private_api.py):
    # Trainer._data_connector.attach_data has no public counterpart. tests/test_build.py plans fits
    # through this function, so a Lightning release that renames it fails those tests loudly.
    from lightning.pytorch.trainer.states import TrainerFn

    if trainer.fit_loop.max_epochs is None:  # Trainer._run's documented defaults: 1000 epochs, or -1 under max_steps
        trainer.fit_loop.max_epochs = 1000 if trainer.max_steps == -1 else -1
    trainer.strategy.connect(model)
    trainer.state.fn = TrainerFn.FITTING
    trainer.training = True
    trainer._data_connector.attach_data(model, datamodule=datamodule)
    datamodule.setup("fit")  # as Trainer._run's setup hook does


def plan_fit(run: Run) -> tuple[float, float]:
    """``(steps_per_epoch, total_steps)`` of the run's fit, counted once (later calls reuse them).

    The run's own data module and model are attached to a light Trainer built from the same
    ``trainer`` keyword arguments (no callbacks, no logger, no checkpoint), and the schedule
    callback's own :func:`~lr_plugins.training_length.steps_per_epoch` (``ceil(num_training_batches /
    accumulate_grad_batches)``) and :func:`~lr_plugins.training_length.total_steps` (every epoch's
    steps, capped by ``max_steps``) read it, so ``limit_train_batches``, ``max_steps``,
    ``fast_dev_run``, accumulation and the devices' data split count exactly as at fit start.
    Lightning's own checks of the Trainer's arguments run here too. The planning Trainer is not
    the one that fits: counting builds its train dataloader (with this process's sampler), which
    spawned DDP workers must not inherit, and ``lr-preview`` plans without any fit.

    Raises:
        ConfigError: the Trainer refuses its arguments (one line, ``trainer: ...``).
    """
    if run.steps_per_epoch is not None and run.total_steps is not None:
        return run.steps_per_epoch, run.total_steps
    import lightning.pytorch as L

    kwargs = {**run.trainer_kwargs, "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
              "enable_model_summary": False, "callbacks": []}
    quiet = logging.getLogger("lightning.pytorch")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # no "GPU available: ..." lines: the real Trainer prints them once
    try:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trainer = L.Trainer(**kwargs)
        except Exception as e:
            raise ConfigError(f"trainer: {type(e).__name__}: {one_line(e)}") from e
        _attach_as_fit_does(trainer, run.model, run.datamodule)
        try:  # Lightning refuses e.g. limit_train_batches=0.01 of 19 batches here
            run.steps_per_epoch = steps_per_epoch(trainer)
        except Exception as e:
            raise ConfigError(f"trainer: {type(e).__name__}: {one_line(e)}") from e
        run.total_steps = total_steps(trainer)
    finally:
        quiet.setLevel(level)
        _detach(run)
    run.planner = trainer
    return run.steps_per_epoch, run.total_steps


def _detach(run: Run) -> None:
    """Let go of the planning Trainer: the run's model and data module are fitted by another one.

    The planner holds the train loader it counted with (and its iterators); a module or data
    module that kept a reference to it could not be sent to ``ddp_spawn`` workers.
    """
    run.model.trainer = None
    if run.datamodule is not None:
        run.datamodule.trainer = None


def _first_optimizer(out: Any) -> Any:
    """The first optimizer in what ``configure_optimizers`` may return (an optimizer, a list or
    tuple of them, ``([optimizers], [schedulers])``, a dict with ``"optimizer"``, a list of dicts)."""
    import torch

    if isinstance(out, torch.optim.Optimizer):
        return out
    if isinstance(out, dict):
        return _first_optimizer(out.get("optimizer"))
    if isinstance(out, (list, tuple)) and out:
        return _first_optimizer(out[0])
    return None


def planned_peak(run: Run) -> ScheduleCallback | None:
    """The run's schedule with the peak the callback will use: ``max_lr``, or when it is null the
    LR of the first param group of the model's first optimizer (``model.configure_optimizers()``).

    A copy when the peak is filled in; the run's own schedule object is not changed.
    """
    schedule = run.schedule
    if schedule is None or schedule.max_lr is not None:
        return schedule
    plan_fit(run)
    run.model.trainer = run.planner  # a module may read its trainer in configure_optimizers
    try:
        optimizer = _first_optimizer(run.model.configure_optimizers())
    finally:
        _detach(run)
    if optimizer is None:
        return schedule
    planned = copy.deepcopy(schedule)
    planned.set_peak(float(optimizer.param_groups[0]["lr"]))
    return planned
