"""The result of an LR range test: the curve, the picks and what happened."""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lr_plugins.files import write_atomic

__all__ = ["LRFinderResult"]


@dataclass
class LRFinderResult:
    """The curve recorded by the range test and the LRs it suggests.

    Attributes:
        lrs: The LR of every recorded optimizer step (first param group of the first optimizer).
        losses: The raw loss of each step (mean over its accumulation window and over DDP ranks).
        smoothed: The zero-phase smoothed loss the picks are made on.
        ema: The causal bias-corrected EMA used only for the divergence stop.
        suggestion: The LR picked by ``rule``, times ``scale``: the LR applied and printed.
        suggestions: Every registered rule's LR (unscaled), by name: ``{"steepest": ..., "valley": ..., ...}``
            (the names of :data:`lr_plugins.finder.RULES`).
        rule: The rule behind ``suggestion`` (for ``suggestion="auto"``, the rule it resolved to).
        reason: Why that rule: ``"no schedule callback: constant LR"``, ``"WarmupCosine is annealed: ..."``
            or ``"suggestion='valley'"`` when it was chosen by name.
        scale: The multiplier of the rule's LR (``LRFinder(scale=...)``; 1 by default).
        stop_reason: ``"completed"``, ``"diverged"`` (smoothed loss above ``diverge_threshold`` x best)
            or ``"non-finite"`` (a NaN/inf loss; that step is not recorded). An exception or Ctrl+C
            during the test propagates after the state is restored, and ``result`` stays ``None``.
        warnings: Hints about a doubtful curve (no descent, minimum at an edge, too few points).
        diagnostics: Everything else: steps run, best smoothed loss, indices of the picks, seconds.

    Example:
        >>> r = LRFinderResult(lrs=[0.1], losses=[1.0], smoothed=[1.0], ema=[1.0], suggestion=0.1,
        ...                    suggestions={"steepest": 0.1}, rule="steepest")
        >>> r.override()
        'schedule.max_lr=0.1'
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    ema: list[float]
    suggestion: float
    suggestions: dict[str, float]
    rule: str = "steepest"
    reason: str = ""
    scale: float = 1.0
    stop_reason: str = "completed"
    warnings: list[str] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def override(self) -> str:
        """The Hydra override that reuses the pick: ``schedule.max_lr=<pick>`` (3 significant digits)."""
        return f"schedule.max_lr={float(f'{self.suggestion:.3g}'):g}"

    def how(self, digits: int = 3) -> str:
        """How ``suggestion`` was made: the rule, and with a scale the rule's LR times it (``"steepest 0.0746 x 2"``)."""
        return self.rule if self.scale == 1.0 else f"{self.rule} {self.suggestions[self.rule]:.{digits}g} x {self.scale:g}"

    def summary(self) -> str:
        """One line: the pick, the rule and why, the other rules and the override."""
        others = ", ".join(f"{k} {v:.3g}" for k, v in self.suggestions.items() if k != self.rule)
        why = f" [{self.reason}]" if self.reason else ""
        return (
            f"LRFinder: suggested lr {self.suggestion:.3g} ({self.how()}{why}; {others}; {len(self.lrs)} points, "
            f"{self.stop_reason}). Reuse it with: {self.override()}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values only (lists, floats, str, dicts): what a checkpoint stores.

        Example:
            >>> r = LRFinderResult(lrs=[0.1], losses=[1.0], smoothed=[1.0], ema=[1.0], suggestion=0.1,
            ...                    suggestions={"steepest": 0.1})
            >>> LRFinderResult.from_dict(r.to_dict()) == r
            True
        """
        return {
            "lrs": [float(v) for v in self.lrs], "losses": [float(v) for v in self.losses],
            "smoothed": [float(v) for v in self.smoothed], "ema": [float(v) for v in self.ema],
            "suggestion": float(self.suggestion), "suggestions": {str(k): float(v) for k, v in self.suggestions.items()},
            "rule": str(self.rule), "reason": str(self.reason), "scale": float(self.scale),
            "stop_reason": str(self.stop_reason), "warnings": [str(w) for w in self.warnings],
            "diagnostics": _plain(self.diagnostics),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> LRFinderResult:
        """The result :meth:`to_dict` saved, checked; ``ValueError`` naming the key that is missing or malformed.

        A resumed fit applies ``suggestion`` without a new test, so it must be what a range test
        can have picked: a real number (not a bool or a string), finite and ``> 0``, equal to
        ``scale * suggestions[rule]``, with the rule's LR no larger than the largest LR the test
        recorded. The one exception is a test that recorded no point: an empty curve with ``nan``
        picks (it applied nothing, and a resume applies nothing either).

        Example:
            >>> LRFinderResult.from_dict({"lrs": [0.1], "losses": [1.0], "smoothed": [1.0], "ema": [1.0],
            ...                           "suggestion": 1e300, "suggestions": {"steepest": 0.1}})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: checkpoint...['suggestion']=1e+300 is not allowed: it must be scale x suggestions['steepest'] = 0.1 (the LR the test picked, times scale).
        """
        if not isinstance(state, dict):
            raise ValueError(f"LRFinder checkpoint state is not allowed: {type(state).__name__}, expected a dict.")
        try:
            result = cls(**state)
        except TypeError as e:
            raise ValueError(f"LRFinder checkpoint state is malformed ({e}); it must come from LRFinderResult.to_dict().") from e
        _check_picks(result)
        return result

    def to_csv(self) -> str:
        """The curve as CSV text: ``step,lr,loss,smoothed,ema``."""
        out = io.StringIO()
        out.write("step,lr,loss,smoothed,ema\n")
        for i, row in enumerate(zip(self.lrs, self.losses, self.smoothed, self.ema)):
            out.write(f"{i}," + ",".join(repr(float(v)) for v in row) + "\n")
        return out.getvalue()

    def save_csv(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_csv` atomically to ``path``."""
        return write_atomic(path, self.to_csv().encode())

    def plot(self, ax: Any = None) -> Any:
        """Draw the curve (see :func:`lr_plugins.finder.plot.plot_result`); returns the figure."""
        from lr_plugins.finder.plot import plot_result

        return plot_result(self, ax=ax)

    @property
    def log10_suggestion(self) -> float:
        """``log10(suggestion)``."""
        return float(np.log10(self.suggestion))


_KEY = "checkpoint['callbacks'][LRFinder]['result']"


def _real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_picks(r: LRFinderResult) -> None:
    """Refuse (one line naming the key) a saved result whose pick no range test can have made."""

    def fail(key: str, value: Any, allowed: str) -> None:
        raise ValueError(f"{_KEY}[{key}]={value!r:.80} is not allowed: it must be {allowed}.")

    for name in ("lrs", "losses", "smoothed", "ema"):
        values = getattr(r, name)
        if not isinstance(values, list) or not all(_real(v) for v in values):
            fail(f"'{name}'", values, "a list of numbers")
    if not all(math.isfinite(v) and v > 0 for v in r.lrs):
        fail("'lrs'", r.lrs, "a list of finite LRs > 0")
    if not _real(r.scale) or not math.isfinite(r.scale) or r.scale <= 0:
        fail("'scale'", r.scale, "a finite number > 0")
    if not isinstance(r.suggestions, dict) or not all(isinstance(k, str) and _real(v) for k, v in r.suggestions.items()):
        fail("'suggestions'", r.suggestions, "a dict of rule name -> LR (a number)")
    if not isinstance(r.rule, str) or r.rule not in r.suggestions:
        fail("'rule'", r.rule, f"one of the rules in 'suggestions' ({', '.join(map(str, r.suggestions))})")
    if not _real(r.suggestion):
        fail("'suggestion'", r.suggestion, "a number (the LR the test picked)")
    picked, suggestion = float(r.suggestions[r.rule]), float(r.suggestion)
    if not r.lrs:  # no point recorded: nan picks, nothing applied
        if not (math.isnan(suggestion) and math.isnan(picked)):
            fail("'suggestion'", r.suggestion, "nan, as the test recorded no point ('lrs' is empty)")
        r.suggestion = suggestion
        return
    if not (math.isfinite(picked) and 0 < picked <= max(r.lrs)):
        fail(f"'suggestions']['{r.rule}'", r.suggestions[r.rule],
             f"a finite LR > 0 and at most the largest LR the test recorded ({max(r.lrs):.3g})")
    if not (math.isfinite(suggestion) and suggestion > 0 and math.isclose(suggestion, r.scale * picked, rel_tol=1e-9)):
        fail("'suggestion'", r.suggestion,
             f"scale x suggestions[{r.rule!r}] = {r.scale * picked:.3g} (the LR the test picked, times scale)")
    r.suggestion = suggestion


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and tuples turned into plain Python (safe for ``weights_only`` loads)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
