"""``lr-preview``: draw the planned LR (and momentum) curve of an ``lr-train`` config, no training.

It composes the same config as ``lr-train`` (same groups and overrides), builds the same data,
model and Trainer, and takes the optimizer steps per epoch and the length of training from the
place the schedule callback reads them at fit start: :func:`lr_plugins.callback.steps_per_epoch`
(``ceil(num_training_batches / accumulate_grad_batches)``) and
:func:`lr_plugins.callback.total_steps` (``trainer.estimated_stepping_batches``), so
``limit_train_batches``, ``max_steps``, ``fast_dev_run``, accumulation and the devices' data
split count exactly as in training. The peak is the optimizer's LR from the model's own
``configure_optimizers`` when ``schedule.max_lr`` is null. It then evaluates the schedule's
closed form (``Curve.preview``) for every step. It writes a PNG and draws the curve in the terminal
(with ``plotext`` when installed: ``pip install "lr-plugins[terminal]"``, else a text plot).
No run folder is created.

Example:
    $ lr-preview schedule=sgdr trainer.max_epochs=50
    $ lr-preview schedule=onecycle schedule.max_lr=0.3 --out onecycle.png
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import Any, cast

import numpy as np
from omegaconf import DictConfig, OmegaConf

from lr_plugins._figures import figure_png, new_figure
from lr_plugins.files import write_atomic

__all__ = ["main", "plan", "training_steps", "fit_steps", "text_plot", "compose_config"]


def compose_config(overrides: list[str]) -> DictConfig:
    """The ``lr-train`` config with ``overrides`` applied (Hydra's compose API)."""
    from hydra import compose, initialize_config_dir

    from lr_plugins.app.train import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3", job_name="lr_preview"):
        return compose(config_name="lr_train", overrides=overrides)


def fit_steps(trainer: Any, model: Any, datamodule: Any) -> tuple[float, float]:
    """``(steps_per_epoch, total_steps)`` of ``trainer.fit(model, datamodule=datamodule)``, without fitting.

    The model and data are attached the way ``Trainer.fit`` attaches them (nothing runs, no
    process is started), then the callback's own :func:`~lr_plugins.callback.steps_per_epoch`
    and :func:`~lr_plugins.callback.total_steps` read the Trainer.
    """
    from lightning.pytorch.trainer.states import TrainerFn

    from lr_plugins.training_length import steps_per_epoch, total_steps

    trainer.strategy.connect(model)
    trainer.state.fn = TrainerFn.FITTING
    trainer.training = True
    trainer._data_connector.attach_data(model, datamodule=datamodule)
    datamodule.setup("fit")  # as Trainer._run's setup hook does
    return steps_per_epoch(trainer), total_steps(trainer)


def _optimizer_lr(trainer: Any, model: Any) -> float | None:
    """The first param group's LR of the model's first optimizer (what the callback calls the peak)."""
    from lightning.pytorch.core.optimizer import _init_optimizers_and_lr_schedulers

    model.trainer = trainer
    optimizers, _ = _init_optimizers_and_lr_schedulers(model)
    return float(optimizers[0].param_groups[0]["lr"]) if optimizers else None


def _planned_fit(cfg: DictConfig) -> tuple[Any, Any, float, float]:
    """The run's Trainer and model (built as lr-train builds them, nothing run), steps per epoch, total steps."""
    import lightning.pytorch as L

    from lr_plugins.app.train import _build, _check_trainer_keys, _fill_in_features

    dm = _build(cfg.data, "data")
    model_cfg = cfg.model.copy()
    _fill_in_features(model_cfg, dm)
    model = _build(model_cfg, "model")
    kwargs = cast(dict[str, Any], OmegaConf.to_container(cfg.trainer, resolve=True))
    _check_trainer_keys(kwargs)
    kwargs.update(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    quiet = logging.getLogger("lightning.pytorch")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # no "GPU available: ..." lines: nothing is trained here
    try:
        trainer = L.Trainer(**kwargs)
        spe, total = fit_steps(trainer, model, dm)
    finally:
        quiet.setLevel(level)
    return trainer, model, spe, total


def training_steps(cfg: DictConfig) -> tuple[int, float]:
    """``(steps_per_epoch, total_steps)`` that ``lr-train`` with ``cfg`` will take; ``total_steps``
    is ``inf`` for endless training. Read from the run's own Trainer, as the schedule callback
    reads them at fit start (see :func:`fit_steps`)."""
    _, _, spe, total = _planned_fit(cfg)
    return (int(spe) if math.isfinite(spe) else 1), total


def plan(cfg: DictConfig) -> dict[str, Any]:
    """Steps per epoch, total steps, the schedule object and its LR (and momentum) per step.

    Example:
        >>> p = plan(compose_config(["data=digits", "model=mlp", "+trainer.limit_train_batches=10"]))  # doctest: +SKIP
        >>> p["steps_per_epoch"], p["total_steps"]  # doctest: +SKIP
        (10, 200)
    """
    from lr_plugins.app.train import _build

    trainer, model, spe, total = _planned_fit(cfg)
    if not math.isfinite(total):
        raise ValueError("lr-preview needs a finite training length: set trainer.max_epochs or trainer.max_steps.")
    overrides = {}
    if cfg.schedule.get("max_lr") is None:
        lr = _optimizer_lr(trainer, model)
        if lr is not None:
            overrides["max_lr"] = lr  # what the callback uses: the optimizer's lr
    schedule = _build(cfg.schedule, "schedule", **overrides)
    total, spe_int = int(total), int(spe) if math.isfinite(spe) else 1
    return {
        "schedule": schedule,
        "steps_per_epoch": spe_int,
        "total_steps": total,
        "lr": schedule.preview(total, steps_per_epoch=spe_int),
        "momentum": schedule.preview_momentum(total, steps_per_epoch=spe_int),
    }


def text_plot(y: np.ndarray, width: int = 72, height: int = 16, title: str = "") -> str:
    """A plain-text line plot of ``y`` (no dependencies).

    Example:
        >>> print(text_plot(np.linspace(0, 1, 10), width=10, height=3).splitlines()[-2])
        ... # doctest: +SKIP
    """
    y = np.asarray(y, dtype=float)
    lo, hi = float(y.min()), float(y.max())
    span = hi - lo or 1.0
    cols = np.array_split(np.arange(len(y)), min(width, len(y)))
    grid = [[" "] * len(cols) for _ in range(height)]
    for c, idx in enumerate(cols):
        for v in (y[idx].min(), y[idx].max()):
            r = height - 1 - int(round((v - lo) / span * (height - 1)))
            grid[r][c] = "*"
    labels = [f"{hi:10.4g} |", *[" " * 10 + " |"] * (height - 2), f"{lo:10.4g} |"]
    lines = [title] if title else []
    lines += [lab + "".join(row) for lab, row in zip(labels, grid)]
    lines.append(" " * 11 + "+" + "-" * len(cols))
    lines.append(" " * 12 + f"step 0{' ' * max(1, len(cols) - 12 - len(str(len(y) - 1)))}step {len(y) - 1}")
    return "\n".join(lines)


def _plotext(lr: np.ndarray, title: str) -> bool:
    """Draw with plotext (5.x ``plt.plot`` API or 6.x ``figure.signal`` API); False if unavailable."""
    try:
        import plotext as plt
    except ImportError:
        return False
    x, y = list(range(len(lr))), lr.tolist()
    if hasattr(plt, "plot"):  # plotext 5
        plt.clf()
        plt.plotsize(100, 20)
        plt.plot(x, y, label="LR")
        plt.title(title)
        plt.xlabel("optimizer step")
        plt.show()
        return True
    fig = getattr(plt, "figure", None)
    if fig is None or not hasattr(fig, "signal"):
        return False
    fig.clear()
    fig.plot_size(100, 20)
    fig.title(title)
    fig.draw(fig.signal(x, y))
    fig.show()
    return True


def _terminal(p: dict[str, Any], title: str) -> None:
    try:
        if _plotext(p["lr"], title):
            return
    except Exception:  # noqa: BLE001 - a terminal plot is a nicety; fall back to text
        pass
    print(text_plot(p["lr"], title=title + " (LR)"))


def _png(p: dict[str, Any], path: Path, title: str) -> None:
    steps = np.arange(p["total_steps"])
    epochs = steps / p["steps_per_epoch"]
    has_m = p["momentum"] is not None
    fig = new_figure(figsize=(9, 5.5 if has_m else 3.5))
    axes = fig.subplots(2 if has_m else 1, 1, sharex=True, squeeze=False)
    axes[0, 0].plot(epochs, p["lr"])
    axes[0, 0].set(ylabel="LR", title=title)
    if has_m:
        axes[1, 0].plot(epochs, p["momentum"], color="tab:orange")
        axes[1, 0].set(ylabel="momentum")
    axes[-1, 0].set(xlabel="epoch")
    for ax in axes[:, 0]:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    write_atomic(path, figure_png(fig))


def main(argv: list[str] | None = None) -> int:
    """The ``lr-preview`` entry point: ``lr-preview [--out PNG] [--no-terminal] [override ...]``."""
    parser = argparse.ArgumentParser(prog="lr-preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="lr-train overrides, e.g. schedule=sgdr trainer.max_epochs=50")
    parser.add_argument("--out", type=Path, default=None, help="PNG path (default: lr_preview_<schedule>.png)")
    parser.add_argument("--no-terminal", action="store_true", help="do not draw in the terminal")
    args = parser.parse_args(argv)
    from lr_plugins.app.validate import ConfigError, one_line, validate

    try:
        cfg = compose_config(args.overrides)
        validate(cfg)  # the same checks as lr-train
        p = plan(cfg)
    except (ConfigError, ValueError, TypeError) as e:
        print(f"lr-preview: {one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        if type(e).__module__.startswith(("hydra", "omegaconf")):
            print(f"lr-preview: {one_line(e)}", file=sys.stderr)
            return 2
        raise
    name = type(p["schedule"]).__name__
    title = f"{name}: {p['total_steps']} steps, {p['steps_per_epoch']} steps/epoch"
    out = args.out or Path(f"lr_preview_{cfg.schedule._target_.rsplit('.', 1)[-1].lower()}.png")
    if not args.no_terminal:
        _terminal(p, title)
    _png(p, out, title)
    lr = p["lr"]
    print(f"{p['schedule']!r}")
    print(f"steps/epoch {p['steps_per_epoch']}, total steps {p['total_steps']}, "
          f"LR first {lr[0]:.4g}, max {lr.max():.4g}, last {lr[-1]:.4g}")
    print(f"Plot: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
