"""The slim install: the library works with its core dependencies only (issue 14.5).

The demo app's data sets (mnist1d, scikit-learn) and plotting (matplotlib, plotext) are extras
(``app``, ``plot``, ``terminal``). A child process that cannot import any of them, as on a
machine with ``pip install lr-plugins`` alone, imports every public name, trains with a
schedule and runs the LR finder with a TensorBoard logger: the finder writes its CSV and
scalars, warns once that the PNG needs the ``plot`` extra, and nothing else notices.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTRAS_ONLY = ["matplotlib", "mnist1d", "sklearn", "plotext", "jsonargparse", "optuna", "submitit"]

CHILD = textwrap.dedent(
    """
    import json, sys, warnings

    import importlib.metadata as md

    BLOCKED = sys.argv[1].split(",")
    for name in BLOCKED:  # as if not installed: import raises ImportError, find_spec returns None
        sys.modules[name] = None
    DISTS = {n.replace("sklearn", "scikit_learn") for n in BLOCKED}

    def _hide(real):  # and no distribution metadata either (RequirementCache reads it)
        def lookup(name):
            if name.lower().replace("-", "_") in DISTS:
                raise md.PackageNotFoundError(name)
            return real(name)
        return lookup

    md.distribution, md.version = _hide(md.distribution), _hide(md.version)

    import torch
    import lightning.pytorch as L
    from lightning.pytorch.loggers import TensorBoardLogger
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    import lr_plugins
    from lr_plugins import LRFinder, SGDR

    names = {name: type(getattr(lr_plugins, name)).__name__ for name in lr_plugins.__all__}
    from lr_plugins.finder import find_lr  # noqa: F401  the submodules import too
    import lr_plugins.conf, lr_plugins.schedules, lr_plugins.snapshot  # noqa: E401, F401

    class Net(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    x = torch.randn(256, 4)
    loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)
    finder = LRFinder(num_steps=20, verbose=False)
    logger = TensorBoardLogger(sys.argv[2], name="run")
    trainer = L.Trainer(max_epochs=2, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[finder, SGDR(cycle_length=1)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(Net(), loader)
    folder = finder.result.diagnostics["output_dir"]
    print(json.dumps({
        "names": names,
        "folder": folder,
        "steps": trainer.global_step,
        "loaded": sorted(m for m in BLOCKED if sys.modules.get(m) is not None),
        "warnings": [str(w.message) for w in caught if "lr_finder.png" in str(w.message)],
    }))
    """
)


def test_the_library_runs_without_the_app_and_plot_extras(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", CHILD, ",".join(EXTRAS_ONLY), str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert set(report["names"]) == {*__import__("lr_plugins").__all__}
    assert report["steps"] == 2 * 16  # the fit ran in full after the range test
    folder = Path(report["folder"])
    assert (folder / "lr_finder.csv").is_file()
    assert not (folder / "lr_finder.png").exists()
    assert len(report["warnings"]) == 1
    assert "pip install 'lr-plugins[plot]'" in report["warnings"][0]


def test_core_dependencies_leave_the_demo_and_plots_to_extras() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {dep.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip() for dep in project["dependencies"]}
    assert core == {"torch", "lightning", "numpy", "hydra-core", "omegaconf", "tensorboard"}
    extras = project["optional-dependencies"]
    assert any(dep.startswith("matplotlib") for dep in extras["plot"])
    assert {"mnist1d", "scikit-learn", "lr-plugins[plot]"} <= {dep.split(">")[0] for dep in extras["app"]}
    assert project["license"] == "Apache-2.0"
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert (ROOT / "lr_plugins" / "py.typed").is_file()
