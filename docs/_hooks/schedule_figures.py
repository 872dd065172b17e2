"""mkdocs hook: draws one LR figure per schedule preset while the docs build, ``guide/img/<preset>.png``.

Nothing is committed: the figures come from the presets and ``preview`` of the code being
documented, so they cannot go stale. ``figures()`` is also what ``tests/test_schedules_guide.py``
checks (every figure the guide shows is drawn here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

import lr_plugins
from lr_plugins._figures import figure_png, new_figure

PRESETS = Path(lr_plugins.__file__).parent / "conf" / "schedule"
STEPS, SPE = 1000, 10  # 100 epochs of 10 optimizer steps


def build(preset: str, **override: Any) -> Any:
    """The preset's schedule with a peak of 1 (as ``instantiate`` would build it, without Hydra)."""
    cfg = yaml.safe_load((PRESETS / f"{preset}.yaml").read_text())
    cls = getattr(lr_plugins, cfg.pop("_target_").removeprefix("lr_plugins."))
    return cls(**{**cfg, "max_lr": 1.0, **override})


def plateau_curve() -> tuple[list[float], list[float]]:
    """The plateau preset fed a loss that stalls twice (one value per epoch): LR per step, loss per step."""
    s = build("plateau", patience=5)
    lrs, losses, loss = [], [], 2.0
    for epoch in range(STEPS // SPE):
        lrs += [s.lr_at(k, STEPS, SPE) for k in range(epoch * SPE, (epoch + 1) * SPE)]
        loss = loss * 0.97 if epoch < 30 or 45 < epoch < 70 else loss
        losses += [loss] * SPE
        if (epoch + 1) * SPE >= s.warmup * STEPS:
            s.observe(loss)
    return lrs, losses


def draw(preset: str) -> bytes:
    fig = new_figure(figsize=(6, 2.6), layout="constrained")
    ax = fig.subplots()
    x = [k / STEPS for k in range(STEPS)]
    if preset == "wsd":
        for shape in ("1-sqrt", "linear", "cosine"):
            ax.plot(x, build(preset, decay_shape=shape).preview(STEPS, SPE), label=f"decay_shape={shape}")
        ax.legend(fontsize=8)
    elif preset == "plateau":
        lrs, losses = plateau_curve()
        ax.plot(x, lrs, label="LR")
        twin = ax.twinx()
        twin.plot(x, losses, color="tab:gray", ls="--", label="val/loss (made up)")
        twin.set_ylabel("monitored metric")
        twin.legend(fontsize=8, loc="upper center")
    else:
        ax.plot(x, build(preset).preview(STEPS, SPE))
    ax.set(xlabel="fraction of training", ylabel="LR / peak", title=f"schedule={preset}", ylim=(-0.03, 1.05))
    return figure_png(fig, dpi=90)


def figures() -> dict[str, bytes]:
    """``{"guide/img/<preset>.png": png}`` for every shipped preset."""
    return {f"guide/img/{p.stem}.png": draw(p.stem) for p in sorted(PRESETS.glob("*.yaml"))}


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for path, png in figures().items():
        files.append(File.generated(config, path, content=png))
    return files
