"""``lr-train``: the Hydra app that trains a model with an lr-plugins schedule.

Config groups (``lr-train --help`` lists the options): ``schedule`` (warmup_cosine, sgdr, clr,
onecycle, step, exponential, inverse_time, constant), ``model`` (cnn, mlp), ``data`` (mnist1d,
digits), ``trainer`` (cpu, ddp, gpu, ddp_gpu), ``logger`` (tensorboard), ``lr_finder`` and
``snapshot`` (off by default), ``hparams_search`` (optuna). The primary config is the top-level
``conf/lr_train.yaml`` (shipped in the wheel as ``lr_plugins/app/_conf``).

A run: check the config and build its objects once (:func:`lr_plugins.app.validate.validate`
returns the :class:`~lr_plugins.app.build.Run`, the same checks as ``lr-preview``: a bad value is
refused here, before any training step, with one line and exit status 2, and only what this
invocation created is removed), fit that Run's objects (the very schedule, data and model that
were checked), test, print the final ``val/*`` and ``test/*`` metrics, and write ``result.json``
into the run folder as the very last thing: a folder without it is not a finished run. In a multirun a job
that fails writes ``result.json`` with ``status: failed`` instead, so the other jobs run; the
:class:`lr_plugins.app.summary.SweepSummary` callback reads those files and exits with status 1
if any job failed.

Example:
    $ lr-train schedule=sgdr schedule.unit=epoch schedule.cycle_length=4 trainer.max_epochs=12
    $ lr-train -m schedule=warmup_cosine,sgdr schedule.max_lr=0.1,0.05
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from lr_plugins.app.build import (
    ConfigError,
    Run,
    build_node,
    build_run,
    compose_config,
    config_dir,
    instantiate_callbacks,
    one_line,
)
from lr_plugins.app.run_guard import remove_created
from lr_plugins.app.summary import RESULT_FILE, format_metric
from lr_plugins.app.validate import check_trainer, validate
from lr_plugins.files import write_json

__all__ = ["cli", "main", "train", "config_dir", "ConfigError", "RESULT_FILE", "instantiate_callbacks", "resolve_ckpt_path",
           "make_trainer", "fit"]

_HISTORY_FILE = "history.json"


def _metrics(source: Any, prefixes: tuple[str, ...] = ("val/", "test/")) -> dict[str, float]:
    out = {}
    for k, v in dict(source).items():
        if k.startswith(prefixes):
            out[k] = float(v)
    return out


# ---------------------------------------------------------------------- Trainer, fit
def resolve_ckpt_path(value: Any, run_dir: Path, runs_root: str | os.PathLike = "outputs") -> str | None:
    """The checkpoint ``ckpt_path=`` resumes from; ``None`` for a fresh start.

    - a file: that checkpoint (Lightning restores weights, optimizer, loops and callbacks);
    - a folder: the newest ``last.ckpt`` under it (a run folder, or a folder of runs);
    - ``last``: the newest ``last.ckpt`` under ``runs_root`` (``outputs/``, where lr-train's runs
      go), other than in this run's own folder: "continue the newest run".

    Raises:
        ConfigError: no such file, or no ``last.ckpt`` where one was asked for.
    """
    if value is None or value == "":
        return None
    text = str(value)
    folder = Path(runs_root) if text == "last" else Path(text)
    if text != "last" and folder.is_file():
        return str(folder)
    if folder.is_dir():
        here = run_dir.resolve()
        found = [p for p in folder.rglob("last.ckpt") if here not in p.resolve().parents]
        if found:
            return str(max(found, key=lambda p: p.stat().st_mtime))
    what = f"no last.ckpt under {folder}" if folder.is_dir() or text == "last" else "no such file or folder"
    raise ConfigError(
        f"ckpt_path={text!r} is not allowed: {what}; give a checkpoint file, a folder holding a last.ckpt "
        "(its newest is used), or `last` (the newest last.ckpt under outputs/)"
    )


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
    """``trainer.fit``; a refusal before this fit's first step is a :class:`ConfigError`: a warmup
    longer than training, or a resume with a length its schedule cannot take (a cooldown branch
    from a checkpoint past the new length's decay start)."""
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except (TypeError, ValueError) as e:
        if not _ran_a_batch(trainer, ckpt_path):
            raise ConfigError(f"{type(e).__name__}: {e}") from e
        raise


def _ran_a_batch(trainer: Any, ckpt_path: str | None) -> bool:
    """Whether this fit started a training batch: a resumed fit starts at the checkpoint's step,
    so its run history (which records every batch of this fit) tells, not the global step."""
    from lr_plugins.app.history import RunHistory

    if ckpt_path is None:
        return trainer.global_step > 0
    return any(isinstance(c, RunHistory) and c.steps for c in trainer.callbacks)


# ---------------------------------------------------------------------- the app
def _find_and_stop(run: Run, run_dir: Path, start: float) -> dict[str, Any]:
    """``lr_finder.stop=true``: run the range test on the run's model and data, print the pick, train nothing."""
    from lr_plugins.finder import find_lr

    # auto resolves from the schedule that would follow the test
    result = find_lr(run.model, datamodule=run.datamodule, schedule=run.schedule, trainer_kwargs=run.trainer_kwargs,
                     **run.finder_args)
    print(f"LR finder suggestion: {result.suggestion:.4g} ({result.how(digits=4)})")
    print(f"Train with it:  lr-train schedule.max_lr={result.suggestion:.4g}")
    # The picks as metrics: a sweep (-m ... lr_finder.stop=true) summarises them per job.
    picks = {"lr_finder/suggestion": result.suggestion, **{f"lr_finder/{k}": v for k, v in result.suggestions.items()}}
    return {"metrics": {k: float(v) for k, v in picks.items()}, "run_dir": str(run_dir),
            "suggestion": result.suggestion, "suggestions": dict(result.suggestions),
            "wall_s": time.perf_counter() - start}


def train(run: Run | DictConfig, run_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Fit ``run`` (a validated :class:`~lr_plugins.app.build.Run`, or a config, built here), test,
    and return ``{"metrics", "run_dir", ...}``.

    Raises:
        ConfigError: a config value that cannot be used (before any training step).
    """
    from lightning.pytorch.utilities.model_helpers import is_overridden

    start = time.perf_counter()
    if not isinstance(run, Run):
        if isinstance(run.get("trainer"), DictConfig):
            check_trainer(OmegaConf.to_container(run.trainer, resolve=True))  # unknown keys: name the allowed ones
        run = build_run(run, run_dir if run_dir is not None else os.getcwd())
    run_dir = run.run_dir or Path(os.getcwd())
    run_dir.mkdir(parents=True, exist_ok=True)
    if run.finder_stops:  # builds no training Trainer
        return _find_and_stop(run, run_dir, start)

    cfg, model, dm = run.cfg, run.model, run.datamodule
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), run_dir)
    logger = build_node(cfg.logger, "logger") if cfg.get("logger") is not None else False
    history_path = run_dir / _HISTORY_FILE
    trainer = make_trainer(run.trainer_kwargs, run.callbacks, logger, history_path)
    fit(trainer, model, dm, ckpt_path)
    metrics = _metrics(trainer.callback_metrics)
    if run.finder is not None and run.finder.result is not None:  # None in the parent process of ddp_spawn
        metrics["lr_finder/suggestion"] = float(run.finder.result.suggestion)  # the LR trained with: a sweep tabulates it
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
        "wall_s": time.perf_counter() - start,
    }


def _overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task)


def _print_report(out: dict[str, Any]) -> None:
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


def _sweep_job(cfg: DictConfig, run_dir: Path) -> float | None:
    """One job of a multirun. Its failure is recorded, not raised, so that the other jobs run.

    A refused config or an exception during training writes ``result.json`` with
    ``status: failed`` and the error line; :class:`~lr_plugins.app.summary.SweepSummary` lists it
    and makes the sweep exit non-zero. A sweeper that optimises (``optimized_metric``) gets NaN,
    which Optuna records as a failed trial.
    """
    try:
        out = train(validate(cfg, run_dir))
    except Exception as e:
        if isinstance(e, ConfigError):
            error = f"invalid config, nothing was trained: {one_line(e)}"
        else:
            error = f"{type(e).__name__}: {one_line(e)}"
            logging.getLogger(__name__).exception("job %s failed", run_dir.name)
        print(f"lr-train: job {run_dir.name} failed: {error}", file=sys.stderr)
        write_json(run_dir / RESULT_FILE, {"overrides": _overrides(), "status": "failed", "error": error,
                                           "metrics": {}, "run_dir": str(run_dir)})
        return math.nan if OmegaConf.select(cfg, "optimized_metric", default=None) else None
    return _finish(cfg, run_dir, out)


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
        out = train(validate(cfg, run_dir))  # checks, then fits the very objects it checked
    except ConfigError as e:
        print(f"lr-train: invalid config, nothing was trained: {one_line(e)}", file=sys.stderr)
        remove_created(run_dir)
        raise SystemExit(2) from None
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
