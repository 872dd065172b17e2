"""``hparams_search=optuna``: a failed trial is a failed trial, and a bad search is refused before the first.

How hydra-optuna-sweeper 1.3 reads a job's return value: ``float(value)``, then
``study.tell(trial, COMPLETE, [value])``. A NaN makes Optuna refuse the COMPLETE, the sweeper then
tells FAIL *with* the values, which Optuna refuses too (``Values cannot be specified when state is
TrialState.FAIL``): the whole sweep died on one bad trial. A value that ``float()`` cannot read
(``None``) is told as FAIL without values: Optuna records the trial as failed and the sweep goes
on (``hparams_search/optuna.yaml`` sets ``max_failure_rate: 1.0`` so that no failure count stops it).
So a job that trained nothing returns :func:`failed_trial_value`, ``None``.

:class:`OptunaChecks` (a Hydra callback the ``optuna`` option lists) runs when the multirun
starts, before any trial, and refuses with one line and exit status 2:

* an ``optimized_metric`` that no lr-train job returns (lr-train returns the ``val/*`` and
  ``test/*`` metrics, and ``lr_finder/*`` picks); a ``val/*`` name the model does not log is
  caught by the first job, which stops the sweep (:func:`check_metric_logged`);
* a search-space interval whose start is above its end (``interval(0.5, 0.01)``).

Example:
    >>> failed_trial_value(None) is None
    True
"""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback

__all__ = ["failed_trial_value", "OptunaChecks", "check_search", "check_metric_logged", "METRIC_PREFIXES"]

#: What an lr-train job returns to a sweeper: metrics with these prefixes.
METRIC_PREFIXES = ("val/", "test/", "lr_finder/")


def failed_trial_value(cfg: Any) -> float | None:
    """The return value of a job that trained nothing: ``None`` (Optuna records a failed trial).

    Never NaN: Optuna refuses it as a value, then refuses the failed trial that carries it.
    """
    return None


def _intervals(params: dict[str, Any], prefix: str = "hydra.sweeper.params.") -> list[str]:
    """The one-line problems of the ``interval(...)`` entries of a search space."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import IntervalSweep

    parser = OverridesParser.create()
    problems = []
    for key, value in params.items():
        try:
            override = parser.parse_override(f"{key}={value}")
        except Exception as e:  # noqa: BLE001 - Hydra's own message, on one line
            problems.append(f"{prefix}{key}={value!r} cannot be parsed: {' '.join(str(e).split())}")
            continue
        sweep = override.value() if override.is_interval_sweep() else None
        if isinstance(sweep, IntervalSweep) and sweep.start is not None and sweep.end is not None:
            if sweep.start > sweep.end:
                problems.append(f"{prefix}{key}={value!r} is not allowed: the interval's start "
                                f"{sweep.start} is above its end {sweep.end}; write interval({sweep.end}, {sweep.start})")
            elif "log" in sweep.tags and sweep.start <= 0:
                problems.append(f"{prefix}{key}={value!r} is not allowed: a log interval needs a start > 0")
    return problems


def check_search(config: Any) -> str | None:
    """The first problem of an Optuna search config (one line), or ``None``."""
    from omegaconf import OmegaConf

    metric = OmegaConf.select(config, "optimized_metric", default=None)
    if metric is None:
        return "optimized_metric is not set: hparams_search=optuna needs the metric to optimise, e.g. optimized_metric=val/acc"
    if not isinstance(metric, str) or not metric.startswith(METRIC_PREFIXES):
        return (f"optimized_metric={metric!r} is not allowed: lr-train jobs return only val/*, test/* and lr_finder/* "
                "metrics (e.g. val/acc, val/loss, test/acc)")
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    task = [o for o in (OmegaConf.select(config, "hydra.overrides.task", default=None) or []) if "interval(" in str(o)]
    search = {str(k): str(v) for k, v in dict(params).items()}
    given = {str(o).split("=", 1)[0]: str(o).split("=", 1)[1] for o in task if "=" in str(o)}
    problems = _intervals(given, prefix="") + _intervals(search)
    return problems[0] if problems else None


def check_metric_logged(metric: str | None, metrics: dict[str, float]) -> str | None:
    """One line when a job did not log ``metric`` (the sweep cannot optimise it), else ``None``."""
    if not metric or metric in metrics:
        return None
    logged = ", ".join(sorted(metrics)) or "none"
    return f"optimized_metric={metric!r} is not allowed: this job logged no such metric (it logged: {logged})"


class OptunaChecks(Callback):
    """Hydra callback: :func:`check_search` when the multirun starts, before the first trial."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        problem = check_search(config)
        if problem:
            print(f"lr-train: invalid search, nothing was trained: {problem}", file=sys.stderr)
            raise SystemExit(2)
