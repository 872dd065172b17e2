"""One validation path for ``lr-train`` and ``lr-preview``: refuse a bad config before any step.

:func:`validate` checks a composed ``lr-train`` config, builds its :class:`~lr_plugins.app.build.Run`
(every object once, :func:`~lr_plugins.app.build.build_run`), plans its fit
(:func:`~lr_plugins.app.build.plan_fit`) and returns that Run, or raises :class:`ConfigError` with
ONE line that names the key, the value and what is allowed. Both commands call it before anything
else and go on with the Run it returns, so ``lr-preview`` refuses exactly what ``lr-train``
refuses, and ``lr-train`` trains the very objects that were checked. It checks:

* ``seed``: an integer in ``[0, 2**32 - 1]``; ``test``: ``true`` or ``false``;
* ``trainer.*``: only arguments of ``lightning.pytorch.Trainer``; each value against the type
  the Trainer declares (``bool``, ``int``), plus the ranges Lightning would only enforce later
  or not at all (``max_epochs >= -1``, ``devices >= 1`` or ``-1``, ``accumulate_grad_batches
  >= 1``, an accelerator that exists on this machine, ...); then Lightning's own checks, when the
  plan's Trainer is built;
* every folder a callback or the logger will write (``logger.save_dir``, ``snapshot.dirpath``,
  ``lr_finder.output_dir``, ``trainer.default_root_dir``): it can be created and written
  (:func:`lr_plugins.files.unwritable_reason`: a probe file in its nearest existing folder,
  removed; nothing is created);
* every callback node (``schedule``, ``snapshot``, ``lr_finder``, ``callbacks.*``), the data
  module and the model are built once, so the classes' own checks run (``lr_finder.stop`` must
  be a boolean);
* the schedule fits the planned training (e.g. a warmup longer than training), with the steps
  per epoch of the plan (what ``lr-preview`` draws), in the parent process, before DDP spawns.

Example:
    >>> from lr_plugins.app.build import compose_config
    >>> run = validate(compose_config(["data=digits", "model=mlp", "trainer.max_epochs=2"]))
    >>> run.steps_per_epoch, run.total_steps
    (19.0, 38.0)
    >>> try:
    ...     validate(compose_config(["trainer.max_epochs=-5"]))
    ... except ConfigError as e:
    ...     print(e)
    trainer.max_epochs=-5 is not allowed: trainer.max_epochs must be an integer >= -1 (-1: no limit) or null.
"""

from __future__ import annotations

import inspect
import math
import os
import typing
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lr_plugins.app.build import CALLBACK_GROUPS, ConfigError, Run, build_run, one_line, plan_fit
from lr_plugins.app.fit_checks import check_batches
from lr_plugins.app.groups import check_unused_groups, hydra_spelling
from lr_plugins.files import unwritable_reason

__all__ = ["ConfigError", "validate", "check_writable_dir", "check_trainer", "one_line", "CALLBACK_GROUPS", "PATH_KEYS"]

#: Keys of an instantiated node that name a folder the run writes into.
PATH_KEYS = ("save_dir", "dirpath", "output_dir", "default_root_dir")
_SEED_MAX = 2**32 - 1


def _refuse(key: str, value: Any, allowed: str, why: str = "") -> None:
    raise ConfigError(f"{key}={value!r} is not allowed: {why}{key} must be {allowed}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------------- top level
def _check_top(cfg: DictConfig) -> None:
    seed = cfg.get("seed", 0)
    if not _is_int(seed) or not 0 <= seed <= _SEED_MAX:
        _refuse("seed", seed, f"an integer in [0, {_SEED_MAX}]")
    test = cfg.get("test", True)
    if not isinstance(test, bool):
        _refuse("test", test, "true or false")


# ---------------------------------------------------------------------- trainer
def _trainer_parameters() -> dict[str, inspect.Parameter]:
    import lightning.pytorch as L

    params = dict(inspect.signature(L.Trainer.__init__).parameters)
    for name in ("self", "callbacks", "logger"):
        params.pop(name, None)
    return params


def _declared(annotation: Any) -> set[type]:
    """The plain types in a Trainer annotation: ``Optional[bool]`` -> ``{bool, NoneType}``."""
    args = typing.get_args(annotation)
    if not args:
        return {annotation} if isinstance(annotation, type) else {object}
    out: set[type] = set()
    for a in args:
        out |= {object} if typing.get_origin(a) is typing.Literal else _declared(a)
    return out


def _check_declared_type(key: str, value: Any, annotation: Any) -> None:
    types = _declared(annotation)
    if object in types or (value is None and type(None) in types):
        return
    if types <= {bool, type(None)}:
        if not isinstance(value, bool):
            _refuse(key, value, "true or false" + (" or null" if type(None) in types else ""))
    elif types <= {int, type(None)} and not _is_int(value):
        _refuse(key, value, "an integer" + (" or null" if type(None) in types else ""))


def _check_devices(value: Any) -> None:
    allowed = "a number of devices >= 1, -1 (all), 'auto', or a list of device indices like [0, 1]"
    if value == "auto" or (_is_int(value) and (value >= 1 or value == -1)):
        return
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if value.strip() == "-1" or (parts and all(p.isdigit() for p in parts) and value.strip() != "0"):
            return
    elif (OmegaConf.is_list(value) or isinstance(value, (list, tuple))) and (
        len(value) and all(_is_int(v) and v >= 0 for v in value)
    ):
        return
    _refuse("trainer.devices", value, allowed)


def _available(accelerator: Any) -> bool:
    try:
        return bool(accelerator.is_available())
    except Exception:  # noqa: BLE001 - e.g. XLA without torch_xla: not available
        return False


def _check_accelerator(value: Any) -> None:
    from lightning.pytorch.accelerators import AcceleratorRegistry

    known = sorted(AcceleratorRegistry.available_accelerators())
    usable = [n for n in known if _available(AcceleratorRegistry[n]["accelerator"])]
    if value == "auto" or value in usable or (value == "gpu" and {"cuda", "mps"} & set(usable)):
        return
    why = "it is not available on this machine; " if value in (*known, "gpu") else ""
    _refuse("trainer.accelerator", value, f"'auto' or one available here ({', '.join(usable)})", why)


def _check_limit(key: str, value: Any) -> None:
    if value is None or (_is_int(value) and value >= 0):
        return
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        return
    _refuse(key, value, "null, a number of batches >= 0, or a fraction in [0.0, 1.0]")


def check_trainer(trainer: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` for an unknown ``trainer.*`` key or a value the Trainer cannot use."""
    params = _trainer_parameters()
    unknown = sorted(set(trainer) - set(params))
    if unknown:
        raise ConfigError(
            f"trainer: unknown key(s) {', '.join('trainer.' + k for k in unknown)}; allowed keys are the "
            f"arguments of lightning.pytorch.Trainer: {', '.join(sorted(params))}."
        )
    for key, value in trainer.items():
        _check_declared_type(f"trainer.{key}", value, params[key].annotation)
    for key in ("max_epochs", "max_steps"):
        value = trainer.get(key)
        if value is not None and value < -1:
            _refuse(f"trainer.{key}", value, "an integer >= -1 (-1: no limit)" + (" or null" if key == "max_epochs" else ""))
    for key in ("min_epochs", "min_steps"):
        if trainer.get(key) is not None and trainer[key] < 0:
            _refuse(f"trainer.{key}", trainer[key], "an integer >= 0 or null")
    for key in ("num_nodes", "accumulate_grad_batches"):
        if key in trainer and trainer[key] < 1:
            _refuse(f"trainer.{key}", trainer[key], "an integer >= 1")
    if trainer.get("check_val_every_n_epoch") is not None and trainer["check_val_every_n_epoch"] < 1:
        _refuse("trainer.check_val_every_n_epoch", trainer["check_val_every_n_epoch"], "an integer >= 1 or null")
    clip = trainer.get("gradient_clip_val")
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip >= 0):
        _refuse("trainer.gradient_clip_val", clip, "null or a number >= 0")
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches"):
        if key in trainer:
            _check_limit(f"trainer.{key}", trainer[key])
    if "devices" in trainer:
        _check_devices(trainer["devices"])
    if "accelerator" in trainer:
        _check_accelerator(trainer["accelerator"])
    strategy = trainer.get("strategy", "auto")
    if isinstance(strategy, str):
        from lightning.pytorch.strategies import StrategyRegistry

        names = ["auto", *StrategyRegistry.available_strategies()]
        if strategy not in names:
            _refuse("trainer.strategy", strategy, f"one of {', '.join(names)}")


# ---------------------------------------------------------------------- folders
def check_writable_dir(key: str, path: str | os.PathLike) -> None:
    """Raise :class:`ConfigError` unless ``path`` is, or can be created as, a writable folder.

    The probe is :func:`lr_plugins.files.unwritable_reason`: it creates nothing.

    Example:
        >>> import tempfile
        >>> check_writable_dir("snapshot.dirpath", tempfile.mkdtemp() + "/new/folder")
    """
    reason = unwritable_reason(path)
    if reason is not None:
        _refuse(key, str(path), "a folder that can be created and written", f"{reason}; ")


def _node_items(cfg: DictConfig) -> list[tuple[str, DictConfig]]:
    """``(key, node)`` for every callback node and the logger: what the config will instantiate."""
    items = [(g, cfg[g]) for g in (*CALLBACK_GROUPS, "logger") if isinstance(cfg.get(g), DictConfig)]
    callbacks = cfg.get("callbacks")
    if isinstance(callbacks, DictConfig):
        items += [(f"callbacks.{k!s}", v) for k, v in callbacks.items() if isinstance(v, DictConfig)]
    return [(k, v) for k, v in items if "_target_" in v]


def _check_paths(cfg: DictConfig) -> None:
    nodes = [*_node_items(cfg)]
    if isinstance(cfg.get("trainer"), DictConfig):
        nodes.append(("trainer", cfg.trainer))
    for key, node in nodes:
        for name in PATH_KEYS:
            if name not in node:
                continue
            try:
                value = node[name]
            except Exception:  # noqa: BLE001 - ${hydra:runtime.output_dir} outside a Hydra run: the run folder
                continue
            if value is not None:
                check_writable_dir(f"{key}.{name}", value)


# ---------------------------------------------------------------------- the run
def _check_length(run: Run) -> None:
    """The schedule against the planned training length (what it checks again at fit start)."""
    if run.schedule is None or run.finder_stops:  # no schedule, or no training to plan
        return
    spe, total = plan_fit(run)
    try:
        run.schedule.check_total(total, spe if math.isfinite(spe) else 1.0)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"schedule: {e} Shorten schedule.warmup or train longer (trainer.max_epochs).") from e


def validate(cfg: DictConfig, run_dir: str | os.PathLike | None = None) -> Run:
    """Refuse ``cfg`` with one :class:`ConfigError` line, or return its planned :class:`~lr_plugins.app.build.Run`.

    Args:
        cfg: The composed ``lr-train`` config.
        run_dir: The run folder (``None`` for ``lr-preview``); see :func:`~lr_plugins.app.build.build_run`.

    Raises:
        ConfigError: the first problem found; its text is one line naming the key, the value
            and what is allowed.
    """
    try:
        _check_top(cfg)
        check_unused_groups(cfg, ConfigError)
        if isinstance(cfg.get("trainer"), DictConfig):
            check_trainer(typing.cast(dict[str, Any], OmegaConf.to_container(cfg.trainer, resolve=True)))
        _check_paths(cfg)
        run = build_run(cfg, run_dir)  # every object once: their own checks run
        plan_fit(run)  # Lightning's own checks of the trainer arguments, and the steps
        if not run.finder_stops and run.steps_per_epoch is not None:
            check_batches(run.trainer_kwargs, run.steps_per_epoch)  # 0 batches: nothing would train
        _check_length(run)
    except ConfigError as e:
        raise ConfigError(hydra_spelling(one_line(e), cfg)) from e.__cause__
    return run
