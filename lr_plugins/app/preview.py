"""``lr-preview``: draw the planned LR (and momentum) curve of an ``lr-train`` config, no training.

It composes the same config as ``lr-train`` (same groups and overrides) and runs the same
validation, which builds the same :class:`~lr_plugins.app.build.Run` (schedule, data, model) and
plans its fit: the optimizer steps per epoch and the length of training are read where the
schedule callback reads them at fit start (:func:`~lr_plugins.app.build.plan_fit`), so
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
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from lr_plugins._figures import figure_png, new_figure
from lr_plugins.app.build import ConfigError, Run, build_run, compose_config, one_line, plan_fit, planned_peak
from lr_plugins.app.validate import validate
from lr_plugins.files import write_atomic
from lr_plugins.length_change import planned_curve_steps

__all__ = ["main", "plan", "text_plot", "compose_config"]


def plan(run: Run | DictConfig) -> dict[str, Any]:
    """Steps per epoch, total steps, the schedule object and its LR (and momentum) per step.

    ``run``: a validated :class:`~lr_plugins.app.build.Run` (what ``lr-preview`` draws), or a
    composed config (built here, not validated).

    Example:
        >>> p = plan(compose_config(["data=digits", "model=mlp", "+trainer.limit_train_batches=10"]))
        >>> p["steps_per_epoch"], p["total_steps"]
        (10, 200)
    """
    if not isinstance(run, Run):
        run = build_run(run)
    spe, total = plan_fit(run)
    if not math.isfinite(total):
        raise ValueError("lr-preview needs a finite training length: set trainer.max_epochs or trainer.max_steps.")
    schedule = planned_peak(run)  # max_lr: null -> the optimizer's lr, as the callback does
    if schedule is None:
        raise ConfigError("schedule=null is not allowed: lr-preview draws the schedule callback and this config has "
                          "none; choose a schedule (e.g. schedule=warmup_cosine)")
    total_int, spe_int = int(total), int(spe) if math.isfinite(spe) else 1
    epochs = _accumulation_epochs(run)
    if epochs is not None:  # a GradientAccumulationScheduler: the fit re-plans at each epoch it changes
        peak = 1.0 if schedule.max_lr is None else schedule.max_lr
        steps = planned_curve_steps(schedule, epochs, _cap(run.planner.max_steps))
        momenta = [schedule.momentum(*at) for at in steps]
        return {
            "schedule": schedule,
            "steps_per_epoch": epochs[0],
            "total_steps": len(steps),
            "lr": np.array([schedule.lr(*at, peak) for at in steps], dtype=np.float64),
            "momentum": None if not schedule.cycles_momentum else np.array(momenta, dtype=np.float64),
        }
    return {
        "schedule": schedule,
        "steps_per_epoch": spe_int,
        "total_steps": total_int,
        "lr": schedule.preview(total_int, steps_per_epoch=spe_int),
        "momentum": schedule.preview_momentum(total_int, steps_per_epoch=spe_int),
    }


def _cap(max_steps: Any) -> float:
    return math.inf if max_steps is None or max_steps < 0 else float(max_steps)


def _accumulation_epochs(run: Run) -> list[int] | None:
    """Optimizer steps of each epoch under the run's ``GradientAccumulationScheduler`` (None: it has none)."""
    from lightning.pytorch.callbacks import GradientAccumulationScheduler

    gas = next((c for c in run.callbacks if isinstance(c, GradientAccumulationScheduler)), None)
    trainer = run.planner
    if gas is None or trainer is None or not math.isfinite(trainer.num_training_batches):
        return None
    epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
    if epochs is None:
        return None
    batches = trainer.num_training_batches
    return [math.ceil(batches / gas.get_accumulate_grad_batches(e)) for e in range(epochs)]


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
    try:
        cfg = compose_config(args.overrides)
        p = plan(validate(cfg))  # the same checks as lr-train, the same objects
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
    out = args.out or Path(f"lr_preview_{name.lower()}.png")
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
