"""``lr-train``: the Hydra app that trains a model with an lr-plugins schedule.

Config groups (``lr-train --help`` lists the options): ``schedule`` (warmup_cosine, sgdr, clr,
onecycle, step, exponential, inverse_time, constant), ``model`` (cnn, mlp), ``data`` (mnist1d,
digits), ``trainer`` (cpu, ddp, gpu, ddp_gpu), ``logger`` (tensorboard), ``lr_finder`` and
``snapshot`` (off by default), ``hparams_search`` (optuna). The primary config is the top-level
``conf/lr_train.yaml`` (shipped in the wheel as ``lr_plugins/app/_conf``).

A run: check the config (:func:`lr_plugins.app.validate.validate`, the same checks as
``lr-preview``: a bad value is refused here, before any training step, with one line and exit
status 2, and only what this invocation created is removed), build every object from it, fit,
test, print the final ``val/*`` and ``test/*`` metrics, and write ``result.json`` into the run
folder as the very last thing: a folder without it is not a finished run. In a multirun a job
that fails writes ``result.json`` with ``status: failed`` instead, so the other jobs run; the
:class:`lr_plugins.app.summary.SweepSummary` callback reads those files and exits with status 1
if any job failed.

Example:
    $ lr-train schedule=sgdr schedule.unit=epoch schedule.cycle_length=4 trainer.max_epochs=12
    $ lr-train -m schedule=warmup_cosine,sgdr schedule.max_lr=0.1,0.05
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from lr_plugins.app.checkpointing import checkpoint_dir
from lr_plugins.app.outcome import schedule_report
from lr_plugins.app.resume import AlreadyComplete
from lr_plugins.app.run_guard import remove_created
from lr_plugins.app.signals import Interrupted, Interruption, record_interrupted
from lr_plugins.app.summary import RESULT_FILE
from lr_plugins.app.validate import ConfigError, one_line, validate
from lr_plugins.files import write_json

__all__ = ["cli", "main", "train", "config_dir", "ConfigError", "RESULT_FILE", "instantiate_callbacks", "resolve_ckpt_path",
           "make_trainer", "fit"]

_HISTORY_FILE = "history.json"


def config_dir() -> str:
    """The primary config folder: ``conf/`` of a source checkout, else the wheel's copy."""
    here = Path(__file__).resolve().parent
    candidates = (here / "_conf", here.parents[1] / "conf")
    for candidate in candidates:
        if (candidate / "lr_train.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"lr_train.yaml not found in {' or '.join(map(str, candidates))}")


# ---------------------------------------------------------------------- building from the config
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


def _build(node: Any, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node)``; any failure becomes a :class:`ConfigError` naming ``key``."""
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
        raise ConfigError(msg) from e


def _fill_in_features(model_cfg: DictConfig, dm: Any) -> None:
    """``model.net.in_features: null`` means: the flattened input size of the data."""
    net = model_cfg.get("net")
    if isinstance(net, DictConfig) and "in_features" in net and net.in_features is None:
        net.in_features = int(math.prod(dm.input_shape))


def _check_trainer_keys(kwargs: dict[str, Any]) -> None:
    from lr_plugins.app.validate import check_trainer

    check_trainer(kwargs)


def _metrics(source: Any, prefixes: tuple[str, ...] = ("val/", "test/")) -> dict[str, float]:
    out = {}
    for k, v in dict(source).items():
        if k.startswith(prefixes):
            out[k] = float(v)
    return out


# ---------------------------------------------------------------------- callbacks, Trainer, fit
def instantiate_callbacks(callbacks_cfg: DictConfig | None, checkpointing: bool = True) -> list[Any]:
    """Build the ``callbacks`` dict group, in order, as lightning-hydra-template's loop does.

    Every entry that is a config with a ``_target_`` becomes a callback; ``null`` entries (e.g.
    ``schedule: ${schedule}`` while ``schedule=null``) and entries without ``_target_`` are
    skipped. A failure raises :class:`ConfigError` naming the entry (the group's own name for an
    interpolated entry: ``schedule``, not ``callbacks.schedule``). With ``checkpointing=False``
    (``trainer.enable_checkpointing=false``) ``ModelCheckpoint`` entries are left out.

    Example:
        >>> cfg = OmegaConf.create({"schedule": {"_target_": "lr_plugins.SGDR", "cycle_length": 2},
        ...                         "off": None})
        >>> [type(c).__name__ for c in instantiate_callbacks(cfg)]
        ['SGDR']
    """
    if not callbacks_cfg:
        return []
    if not isinstance(callbacks_cfg, DictConfig):
        raise ConfigError(f"callbacks={callbacks_cfg!r} is not allowed: it must be a dict of callback configs")
    out = []
    for name in callbacks_cfg:
        node = callbacks_cfg._get_node(name)
        key = _interpolated_key(node) or f"callbacks.{name!s}"
        conf = callbacks_cfg[name]
        if not isinstance(conf, DictConfig) or "_target_" not in conf:
            continue
        if not checkpointing and str(conf._target_).endswith(("ModelCheckpoint", "LastCheckpoint")):
            continue
        out.append(_build(conf, key))
    return out


def _interpolated_key(node: Any) -> str | None:
    """``schedule`` for an entry ``${schedule}`` or ``${oc.select:schedule,null}``, else None."""
    raw = node._value() if node._is_interpolation() else None
    match = re.fullmatch(r"\$\{(?:oc\.select:)?([\w.]+)(?:,[^}]*)?\}", raw.strip()) if isinstance(raw, str) else None
    return match.group(1) if match else None


def resolve_ckpt_path(value: Any, run_dir: Path, runs_root: str | os.PathLike = "outputs") -> str | None:
    """The checkpoint ``ckpt_path=`` resumes from; ``None`` for a fresh start (:func:`lr_plugins.app.resume.resolve`).

    Raises:
        ConfigError: no such file, or no ``last.ckpt`` where one was asked for.
    """
    from lr_plugins.app.resume import resolve

    try:
        found = resolve(value, run_dir, runs_root)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return None if found is None else str(found)


def make_trainer(trainer_kwargs: dict[str, Any], callbacks: list[Any], logger: Any, history_path: Path) -> Any:
    """The Trainer of an lr-train run: the config's callbacks plus the run's history recorder and,
    without a terminal, one progress line per epoch instead of a progress bar."""
    import lightning.pytorch as L

    from lr_plugins.app.history import RunHistory
    from lr_plugins.app.progress import EpochLines
    from lr_plugins.distributed import with_clean_exit

    log_once()
    kwargs = dict(trainer_kwargs)
    extra: list[Any] = [RunHistory(history_path)]
    if kwargs.get("enable_progress_bar", True) and not sys.stdout.isatty():
        kwargs["enable_progress_bar"] = False
        extra.append(EpochLines())
    callbacks = with_clean_exit([*callbacks, *extra], kwargs.get("strategy"))
    try:
        return L.Trainer(**kwargs, callbacks=callbacks, logger=logger)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"trainer: {type(e).__name__}: {e}") from e


def log_once() -> None:
    """Print Lightning's INFO lines once under Hydra.

    ``import lightning`` gives the ``lightning`` logger a console handler of its own (and
    ``lightning.pytorch`` one when the root logger has none yet); under Hydra the root logger
    already prints to the console and writes ``<run folder>/lr_train.log``, so each line came out
    twice. With root handlers present, Lightning's own console handlers are removed and its
    records propagate to the root: once on the console, once in the log file.
    """
    import logging

    if not logging.getLogger().handlers:
        return
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        lg = logging.getLogger(name)
        for handler in list(lg.handlers):
            if type(handler) is logging.StreamHandler:
                lg.removeHandler(handler)
        lg.propagate = True


def fit(trainer: Any, model: Any, datamodule: Any, ckpt_path: str | None = None) -> None:
    """``trainer.fit``; a refusal before the first step (e.g. warmup longer than training) is a
    :class:`ConfigError`."""
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except (TypeError, ValueError) as e:
        if trainer.global_step == 0 and ckpt_path is None:
            raise ConfigError(f"{type(e).__name__}: {e}") from e
        raise


# ---------------------------------------------------------------------- the app
def train(cfg: DictConfig, run_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Build everything from ``cfg``, fit, test, and return ``{"metrics", "run_dir", ...}``.

    Raises:
        ConfigError: a config value that cannot be used (before any training step).
    """
    import lightning.pytorch as L
    from lightning.pytorch.utilities.model_helpers import is_overridden

    start = time.perf_counter()
    run_dir = Path(run_dir if run_dir is not None else os.getcwd())
    run_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    # 1. Callbacks from the `callbacks` dict group (cheap; validate their values). lr_finder.stop=true
    # (print the pick and train nothing) is the one case that builds no training Trainer.
    finder_cfg, finder_exit = None, False
    if cfg.get("lr_finder") is not None:
        finder_cfg = OmegaConf.to_container(cfg.lr_finder, resolve=True)
        finder_exit = finder_cfg.get("stop") is True  # LRFinder(stop=...) validates any other value
        if finder_exit and cfg.get("optimized_metric"):
            raise ConfigError(
                f"lr_finder.stop=true trains nothing, so there is no {cfg.optimized_metric!r} for the "
                "hparams_search sweeper to optimise: drop lr_finder.stop=true or hparams_search."
            )
    callbacks = [] if finder_exit else instantiate_callbacks(
        cfg.get("callbacks"), checkpointing=cfg.trainer.get("enable_checkpointing", True) is not False)
    finder = next((c for c in callbacks if type(c).__name__ == "LRFinder"), None)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), run_dir)

    # 2. Data, model, logger, Trainer.
    dm = _build(cfg.data, "data")
    model_cfg = cfg.model.copy()
    _fill_in_features(model_cfg, dm)
    model = _build(model_cfg, "model")
    trainer_kwargs: dict[str, Any] = OmegaConf.to_container(cfg.trainer, resolve=True)
    _check_trainer_keys(trainer_kwargs)
    trainer_kwargs.setdefault("default_root_dir", str(run_dir))

    if finder_exit:
        from lr_plugins.finder import find_lr

        kwargs = {k: v for k, v in finder_cfg.items() if k != "_target_"}
        # auto resolves from the schedule that would follow the test
        schedule = _build(cfg.schedule, "schedule") if cfg.get("schedule") is not None else None
        result = find_lr(model, datamodule=dm, schedule=schedule, trainer_kwargs=trainer_kwargs, **kwargs)
        print(f"LR finder suggestion: {result.suggestion:.4g} ({result.how(digits=4)})")
        print(f"Train with it:  lr-train schedule.max_lr={result.suggestion:.4g}")
        # The picks as metrics: a sweep (-m ... lr_finder.stop=true) summarises them per job.
        picks = {"lr_finder/suggestion": result.suggestion, **{f"lr_finder/{k}": v for k, v in result.suggestions.items()}}
        return {"metrics": {k: float(v) for k, v in picks.items()}, "run_dir": str(run_dir),
                "suggestion": result.suggestion, "suggestions": dict(result.suggestions),
                "wall_s": time.perf_counter() - start}

    logger = _build(cfg.logger, "logger") if cfg.get("logger") is not None else False
    history_path = run_dir / _HISTORY_FILE
    ckpt_path = _plan_resume(ckpt_path, model, trainer_kwargs)
    stop = Interruption(checkpoint_dir(callbacks) or run_dir / "checkpoints")
    trainer = make_trainer(trainer_kwargs, [*callbacks, stop], logger, history_path)
    with stop.watching():  # SIGTERM/SIGINT: stop at a batch boundary, save that step, raise Interrupted
        fit(trainer, model, dm, ckpt_path)
        metrics = _metrics(trainer.callback_metrics)
        if finder is not None and finder.result is not None:  # None in the parent process of ddp_spawn
            metrics["lr_finder/suggestion"] = float(finder.result.suggestion)  # the LR trained with: a sweep tabulates it
        if cfg.get("test", True) and is_overridden("test_step", model):
            results = trainer.test(model, datamodule=dm, verbose=False)
            for r in results:
                metrics.update(_metrics(r, ("test/",)))
    history = json.loads(history_path.read_text()) if history_path.exists() else {}
    log_dir = getattr(logger, "log_dir", None) if logger else None
    return {
        "metrics": dict(sorted(metrics.items())),
        "run_dir": str(run_dir),
        "log_dir": os.path.normpath(log_dir) if log_dir else None,
        "history": history,
        "schedule": schedule_report(callbacks, trainer),
        "wall_s": time.perf_counter() - start,
    }


def _plan_resume(ckpt_path: str | None, model: Any, trainer_kwargs: dict[str, Any]) -> str | None:
    """Check the resumed checkpoint (a training checkpoint of this model, something left to train)
    and say which run it continues; see :func:`lr_plugins.app.resume.plan_resume`."""
    from lr_plugins.app.resume import plan_resume

    try:
        resume = plan_resume(Path(ckpt_path) if ckpt_path else None, model, trainer_kwargs)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if resume is not None:
        print(resume.line(), flush=True)
    return ckpt_path


def _overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task)


def _print_report(out: dict[str, Any]) -> None:
    from lr_plugins.app.summary import format_metric

    metrics = out["metrics"]
    if metrics:
        width = max(len(k) for k in metrics)
        print("\nFinal metrics:")
        for k, v in metrics.items():
            print(f"  {k:<{width}}  {format_metric(k, v)}")
    print(f"Run folder: {out['run_dir']}")
    if out.get("log_dir"):
        print(f"TensorBoard: tensorboard --logdir {out['log_dir']}")


def _finish(cfg: DictConfig, run_dir: Path, out: dict[str, Any]) -> float | None:
    _print_report(out)
    write_json(run_dir / RESULT_FILE, {"overrides": _overrides(), "status": "ok", **out})  # last: marks the run finished
    if "suggestion" in out:  # lr_finder.stop=true: nothing was trained, nothing to optimise
        return None
    key = OmegaConf.select(cfg, "optimized_metric", default=None)
    return out["metrics"].get(key) if key else None


def _failed_value(cfg: DictConfig) -> float | None:
    """What a job that trained nothing returns to a sweeper: see :mod:`lr_plugins.app.optuna_trials`."""
    from lr_plugins.app.optuna_trials import failed_trial_value

    return failed_trial_value(cfg)


def _sweep_job(cfg: DictConfig, run_dir: Path) -> float | None:
    """One job of a multirun. Its failure is recorded, not raised, so that the other jobs run.

    A refused config or an exception during training writes ``result.json`` with
    ``status: failed`` and the error line; :class:`~lr_plugins.app.summary.SweepSummary` lists it
    and makes the sweep exit non-zero. A sweeper that optimises (``optimized_metric``) gets the
    failed-trial value of :mod:`lr_plugins.app.optuna_trials`. A SIGTERM/SIGINT writes
    ``status: interrupted``, the summary of the jobs so far, and ends the sweep (exit 143/130).
    """
    from hydra.core.hydra_config import HydraConfig

    try:
        validate(cfg)
        out = train(cfg, run_dir)
    except Interrupted as e:  # SIGTERM/SIGINT: record, summarise what finished, launch nothing more
        sweep = Path(HydraConfig.get().sweep.dir)
        raise SystemExit(record_interrupted(run_dir, e, _overrides(), sweep)) from None
    except Exception as e:
        if isinstance(e, AlreadyComplete):
            print(str(e), file=sys.stderr)
            write_json(run_dir / RESULT_FILE, {"overrides": _overrides(), "status": "already_complete", "error": str(e),
                                               "metrics": {}, "run_dir": str(run_dir)})
            return _failed_value(cfg)
        if isinstance(e, ConfigError):
            error = f"invalid config, nothing was trained: {one_line(e)}"
        else:
            error = f"{type(e).__name__}: {one_line(e)}"
            logging.getLogger(__name__).exception("job %s failed", run_dir.name)
        print(f"lr-train: job {run_dir.name} failed: {error}", file=sys.stderr)
        write_json(run_dir / RESULT_FILE, {"overrides": _overrides(), "status": "failed", "error": error,
                                           "metrics": {}, "run_dir": str(run_dir)})
        return _failed_value(cfg)
    _stop_if_metric_missing(cfg, run_dir, out)
    return _finish(cfg, run_dir, out)


def _stop_if_metric_missing(cfg: DictConfig, run_dir: Path, out: dict[str, Any]) -> None:
    """A sweep that optimises a metric the job did not log stops at its first job, with one line."""
    from hydra.core.hydra_config import HydraConfig

    from lr_plugins.app.optuna_trials import check_metric_logged
    from lr_plugins.app.summary import summarize

    problem = None if "suggestion" in out else check_metric_logged(
        OmegaConf.select(cfg, "optimized_metric", default=None), out["metrics"])
    if problem is None:
        return
    write_json(run_dir / RESULT_FILE, {"overrides": _overrides(), "status": "failed", "error": problem,
                                       "metrics": out["metrics"], "run_dir": str(run_dir)})
    print(f"lr-train: the sweep stops: {problem}", file=sys.stderr)
    summarize(HydraConfig.get().sweep.dir)
    raise SystemExit(2)


@hydra.main(config_path=config_dir(), config_name="lr_train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """The ``lr-train`` entry point; returns ``cfg.optimized_metric`` for sweepers (Optuna).

    A single run refused by :func:`~lr_plugins.app.validate.validate` (or at fit start) prints one
    line, removes only what this invocation created (:mod:`lr_plugins.app.run_guard`) and exits
    with status 2. In a multirun every job's failure is recorded instead (:func:`_sweep_job`).
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return _sweep_job(cfg, run_dir)
    try:
        validate(cfg)
        out = train(cfg, run_dir)
    except ConfigError as e:
        print(f"lr-train: invalid config, nothing was trained: {one_line(e)}", file=sys.stderr)
        remove_created(run_dir)
        raise SystemExit(2) from None
    except AlreadyComplete as e:  # nothing to train: say so; the old run's result stays the result
        print(str(e), file=sys.stderr)
        remove_created(run_dir)
        raise SystemExit(0) from None
    except Interrupted as e:
        raise SystemExit(record_interrupted(run_dir, e, _overrides())) from None
    return _finish(cfg, run_dir, out)


def cli() -> None:
    """The ``lr-train`` command: :func:`main`, with the overrides of a single run composed first.

    Hydra reports an unknown option or key (``schedule=sgdrr``, ``schedule.max_lrr=1``) itself,
    on several lines and with exit status 1, before :func:`main` runs. A single run (no ``-m``,
    ``--help``, ``--cfg`` or other flag) is therefore composed here first, with the same compose
    call as ``lr-preview``: such an error is refused like any other bad value, in one line with
    exit status 2, and nothing is created. A multirun leaves it to Hydra, which composes each job.
    """
    args = sys.argv[1:]
    if args and not any(a.startswith("-") for a in args):
        from lr_plugins.app.preview import compose_config

        try:
            compose_config(args)
        except Exception as e:
            if not type(e).__module__.startswith(("hydra", "omegaconf")):
                raise
            message = one_line(e).split(" Config search path:")[0]
            print(f"lr-train: invalid config, nothing was trained: {message}", file=sys.stderr)
            raise SystemExit(2) from None
    main()


if __name__ == "__main__":
    cli()
