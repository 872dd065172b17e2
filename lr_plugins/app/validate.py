"""One validation path for ``lr-train`` and ``lr-preview``: refuse a bad config before any step.

:func:`validate` checks a composed ``lr-train`` config and raises :class:`ConfigError` with ONE
line that names the key, the value and what is allowed. Both commands call it before anything
else, so ``lr-preview`` refuses exactly what ``lr-train`` refuses. It checks:

* ``seed``: an integer in ``[0, 2**32 - 1]``; ``test``: ``true`` or ``false``;
* ``trainer.*``: only arguments of ``lightning.pytorch.Trainer``; each value against the type
  the Trainer declares (``bool``, ``int``), plus the ranges Lightning would only enforce later
  or not at all (``max_epochs >= -1``, ``devices >= 1`` or ``-1``, ``accumulate_grad_batches
  >= 1``, an accelerator that exists on this machine, ...);
* every folder a callback or the logger will write (``logger.save_dir``, ``snapshot.dirpath``,
  ``lr_finder.output_dir``, ``trainer.default_root_dir``): it can be created and written (a
  probe file is written into its nearest existing folder and removed; nothing is created);
* every callback node (``schedule``, ``snapshot``, ``lr_finder``, ``callbacks.*``), the data
  module and the model are built once, so the classes' own checks run (``lr_finder.stop`` must
  be a boolean);
* the schedule fits the planned training (e.g. a warmup longer than training), with the steps
  per epoch counted as ``lr-preview`` counts them, in the parent process, before DDP spawns.

Example:
    >>> from lr_plugins.app.preview import compose_config
    >>> validate(compose_config(["data=digits", "trainer.max_epochs=2"]))
    >>> try:
    ...     validate(compose_config(["trainer.max_epochs=-5"]))
    ... except ConfigError as e:
    ...     print(e)
    trainer.max_epochs=-5 is not allowed: trainer.max_epochs must be an integer >= -1 (-1: no limit) or null.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import typing
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lr_plugins.app.groups import check_unused_groups, hydra_spelling

__all__ = ["ConfigError", "validate", "check_writable_dir", "check_trainer", "one_line", "CALLBACK_GROUPS", "PATH_KEYS"]

#: Top-level groups whose node is a callback built from the config (``callbacks`` holds a dict of them).
CALLBACK_GROUPS = ("schedule", "snapshot", "lr_finder")
#: Keys of an instantiated node that name a folder the run writes into.
PATH_KEYS = ("save_dir", "dirpath", "output_dir", "default_root_dir")
_SEED_MAX = 2**32 - 1


class ConfigError(Exception):
    """A config value that cannot be used; raised before any training step."""


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


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


def _check_trainer_builds(trainer: dict[str, Any]) -> None:
    """Build a Trainer from the values (no logger, no callbacks): Lightning's own checks run."""
    import logging
    import warnings

    import lightning.pytorch as L

    quiet = logging.getLogger("lightning.pytorch")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # "GPU available: ..." is printed once, by the real Trainer
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            L.Trainer(**trainer, logger=False, callbacks=[])
    except Exception as e:
        raise ConfigError(f"trainer: {type(e).__name__}: {one_line(e)}") from e
    finally:
        quiet.setLevel(level)


# ---------------------------------------------------------------------- folders
def check_writable_dir(key: str, path: str | os.PathLike) -> None:
    """Raise :class:`ConfigError` unless ``path`` is, or can be created as, a writable folder.

    Creates nothing: it writes (and removes) a probe file in the nearest folder that exists.

    Example:
        >>> import tempfile
        >>> check_writable_dir("snapshot.dirpath", tempfile.mkdtemp() + "/new/folder")
    """
    target = Path(path).expanduser().absolute()
    allowed = "a folder that can be created and written"
    if target.exists() and not target.is_dir():
        _refuse(key, str(path), allowed, "it is a file, not a folder; ")
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        _refuse(key, str(path), allowed, f"{existing} is a file, not a folder; ")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".lr_plugins_probe_")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        _refuse(key, str(path), allowed, f"{existing} cannot be written ({e.strerror}); ")


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


# ---------------------------------------------------------------------- building
def _is_finder(key: str) -> bool:
    return key.rsplit(".", 1)[-1] == "lr_finder"  # lr_finder, or callbacks.lr_finder


def _build_callbacks(cfg: DictConfig) -> Any:
    """Build every callback node once (their own argument checks run); return the schedule."""
    from lr_plugins.app.train import _build

    schedule = None
    for key, node in _node_items(cfg):
        if key == "logger":
            continue
        built = _build(_outside_a_run(node), key)
        if hasattr(built, "check_total"):  # a schedule callback, wherever the config puts it
            schedule = built
    return schedule


def _outside_a_run(node: DictConfig) -> DictConfig:
    """``node`` with ``${hydra:runtime.output_dir}`` read as the current folder when no Hydra run
    is set up (``lr-preview`` composes without one): the run folder does not exist yet, and the
    callbacks built here only check their arguments (nothing is written)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return node
    raw = OmegaConf.to_yaml(node)
    if "${hydra:" not in raw:
        return node
    return typing.cast(DictConfig, OmegaConf.create(raw.replace("${hydra:runtime.output_dir}", os.getcwd())))


def _build_model(cfg: DictConfig) -> None:
    """Build the data module and the model once (their own argument checks run)."""
    from lr_plugins.app.train import _build, _fill_in_features

    if cfg.get("data") is None or cfg.get("model") is None:
        return
    dm = _build(cfg.data, "data")
    model_cfg = cfg.model.copy()
    _fill_in_features(model_cfg, dm)
    _build(model_cfg, "model")


def _finder_exits(cfg: DictConfig) -> bool:
    """Whether an LR finder ends the fit after its range test (``stop: true``): no training to plan."""
    return any(_is_finder(key) and node.get("stop") is True for key, node in _node_items(cfg))


def _checks_length(cfg: DictConfig, schedule: Any) -> bool:
    """Whether :func:`_check_length` applies: a schedule and a training to plan."""
    return schedule is not None and hasattr(schedule, "check_total") and not _finder_exits(cfg)


def _check_length(cfg: DictConfig, schedule: Any) -> None:
    """The schedule against the planned training length (what it checks again at fit start).

    It builds the run's data module, model and Trainer (``training_steps``), so their own checks
    run here too."""
    from lr_plugins.app.preview import training_steps

    spe, total = training_steps(cfg)
    try:
        schedule.check_total(total, spe)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"schedule: {e} Shorten schedule.warmup or train longer (trainer.max_epochs).") from e


def validate(cfg: DictConfig) -> None:
    """Refuse ``cfg`` with one :class:`ConfigError` line, or return ``None`` if it can be trained.

    Raises:
        ConfigError: the first problem found; its text is one line naming the key, the value
            and what is allowed.
    """
    try:
        _check_top(cfg)
        check_unused_groups(cfg, ConfigError)
        if isinstance(cfg.get("trainer"), DictConfig):
            trainer = typing.cast(dict[str, Any], OmegaConf.to_container(cfg.trainer, resolve=True))
            check_trainer(trainer)
            _check_trainer_builds(trainer)
        _check_paths(cfg)
        schedule = _build_callbacks(cfg)
        if _checks_length(cfg, schedule):
            _check_length(cfg, schedule)  # builds the data and the model once, as part of the plan
        else:
            _build_model(cfg)
    except ConfigError as e:
        raise ConfigError(hydra_spelling(one_line(e), cfg)) from e.__cause__
