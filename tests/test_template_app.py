"""The lightning-hydra-template recipe (issue 13.4), run on a template-shaped app built here.

The app mirrors ashleve/lightning-hydra-template: a `# @package _global_` primary config
(`configs/train.yaml`, `_self_` first), a `callbacks` dict group built by the template's
`instantiate_callbacks` loop, loggers by `instantiate_loggers`, a LightningModule whose
`configure_optimizers` builds optimizer and scheduler from `_partial_` configs (Adam, lr 0.001,
ReduceLROnPlateau, as the template's `configs/model/mnist.yaml`), and a datamodule (here the
bundled scikit-learn digits, no network). To it the test adds exactly the lines the guide
(docs/guide/your-project.md) tells a user to add: RECIPE_DEFAULTS, RECIPE_SEARCHPATH and
RECIPE_CALLBACKS, and then runs `schedule=sgdr`, `-m schedule=sgdr,clr`, `lr_finder=steepest`,
with the module's own scheduler switched off (`model.scheduler=null`) and on.
"""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guide" / "your-project.md"

# ---- the lines the guide tells a template user to add (asserted verbatim in the guide below)
RECIPE_DEFAULTS = """\
  - schedule: null    # lr-plugins: schedule=sgdr
  - lr_finder: null   # lr-plugins: lr_finder=steepest
  - snapshot: null    # lr-plugins: snapshot=ensemble
"""
RECIPE_SEARCHPATH = """\
hydra:
  searchpath: [pkg://lr_plugins.conf]
"""
RECIPE_CALLBACKS = """\
schedule: ${oc.select:schedule,null}
lr_finder: ${oc.select:lr_finder,null}
snapshot: ${oc.select:snapshot,null}
"""

TRAIN_YAML = f"""\
# @package _global_

defaults:
  - _self_
  - data: digits
  - model: mnist
  - callbacks: default
{RECIPE_DEFAULTS}  - logger: csv
  - trainer: default
  - paths: default
  - hydra: default
  - experiment: null

task_name: "train"
tags: ["dev"]
train: True
test: True
ckpt_path: null
seed: 12345

{RECIPE_SEARCHPATH}"""

FILES = {
    "configs/train.yaml": TRAIN_YAML,
    "configs/callbacks/default.yaml": f"""\
defaults:
  - model_checkpoint
  - model_summary
  - _self_

model_checkpoint:
  dirpath: ${{paths.output_dir}}/checkpoints
  filename: "epoch_{{epoch:03d}}"
  monitor: "val/acc"
  mode: "max"
  save_last: True
  auto_insert_metric_name: False

model_summary:
  max_depth: -1

{RECIPE_CALLBACKS}""",
    "configs/callbacks/model_checkpoint.yaml": """\
model_checkpoint:
  _target_: lightning.pytorch.callbacks.ModelCheckpoint
  dirpath: null
  filename: null
  monitor: null
  save_last: null
  save_top_k: 1
  mode: "min"
  auto_insert_metric_name: True
""",
    "configs/callbacks/model_summary.yaml": """\
model_summary:
  _target_: lightning.pytorch.callbacks.ModelSummary
  max_depth: 1
""",
    "configs/data/digits.yaml": """\
_target_: src.data.digits_datamodule.DigitsDataModule
batch_size: 64
""",
    "configs/model/mnist.yaml": """\
_target_: src.models.mnist_module.MNISTLitModule

optimizer:
  _target_: torch.optim.Adam
  _partial_: true
  lr: 0.001
  weight_decay: 0.0

scheduler:
  _target_: torch.optim.lr_scheduler.ReduceLROnPlateau
  _partial_: true
  mode: min
  factor: 0.1
  patience: 10

net:
  _target_: src.models.components.simple_dense_net.SimpleDenseNet
  input_size: 64
  lin1_size: 32
  lin2_size: 32
  output_size: 10
""",
    "configs/logger/csv.yaml": """\
csv:
  _target_: lightning.pytorch.loggers.csv_logs.CSVLogger
  save_dir: "${paths.output_dir}"
  name: "csv/"
  prefix: ""
""",
    "configs/trainer/default.yaml": """\
_target_: lightning.pytorch.trainer.Trainer
default_root_dir: ${paths.output_dir}
min_epochs: 1
max_epochs: 3
accelerator: cpu
devices: 1
check_val_every_n_epoch: 1
deterministic: False
enable_progress_bar: False
log_every_n_steps: 5
""",
    "configs/paths/default.yaml": """\
output_dir: ${hydra:runtime.output_dir}
work_dir: ${hydra:runtime.cwd}
""",
    "configs/hydra/default.yaml": """\
run:
  dir: logs/${task_name}/runs/${now:%Y-%m-%d}_${now:%H-%M-%S-%f}
sweep:
  dir: logs/${task_name}/multiruns/${now:%Y-%m-%d}_${now:%H-%M-%S-%f}
  subdir: ${hydra.job.num}
""",
    "src/__init__.py": "",
    "src/data/__init__.py": "",
    "src/models/__init__.py": "",
    "src/models/components/__init__.py": "",
    "src/utils/__init__.py": "",
    "src/data/digits_datamodule.py": '''\
import lightning as L
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset


class DigitsDataModule(L.LightningDataModule):
    def __init__(self, batch_size: int = 64):
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage=None):
        x, y = load_digits(return_X_y=True)
        x = torch.tensor(x / 16.0, dtype=torch.float32)
        y = torch.tensor(y)
        g = torch.Generator().manual_seed(0)
        idx = torch.randperm(len(y), generator=g)
        parts = idx[:1280], idx[1280:1536], idx[1536:]  # 20 steps per epoch at batch 64
        self.train, self.val, self.test = (TensorDataset(x[i], y[i]) for i in parts)

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.test, batch_size=self.batch_size)
''',
    "src/models/components/simple_dense_net.py": '''\
from torch import nn


class SimpleDenseNet(nn.Module):
    def __init__(self, input_size=64, lin1_size=32, lin2_size=32, output_size=10):
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(input_size, lin1_size), nn.ReLU(),
            nn.Linear(lin1_size, lin2_size), nn.ReLU(),
            nn.Linear(lin2_size, output_size),
        )

    def forward(self, x):
        return self.model(x.flatten(1))
''',
    # The template's MNISTLitModule, trimmed to what matters here: configure_optimizers unchanged.
    "src/models/mnist_module.py": '''\
from typing import Any, Dict

import torch
from lightning import LightningModule
from torchmetrics import MeanMetric
from torchmetrics.classification.accuracy import Accuracy


class MNISTLitModule(LightningModule):
    def __init__(self, net, optimizer, scheduler, compile: bool = False):
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["net"])
        self.net = net
        self.criterion = torch.nn.CrossEntropyLoss()
        self.val_acc = Accuracy(task="multiclass", num_classes=10)
        self.test_acc = Accuracy(task="multiclass", num_classes=10)
        self.val_loss = MeanMetric()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.criterion(self(x), y)
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.val_loss(self.criterion(logits, y))
        self.val_acc(logits.argmax(1), y)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True)

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.test_acc(self(x).argmax(1), y)
        self.log("test/acc", self.test_acc, on_step=False, on_epoch=True)

    def configure_optimizers(self) -> Dict[str, Any]:
        optimizer = self.hparams.optimizer(params=self.trainer.model.parameters())
        if self.hparams.scheduler is not None:
            scheduler = self.hparams.scheduler(optimizer=optimizer)
            return {
                "optimizer": optimizer,
                "lr_scheduler": {
                    "scheduler": scheduler,
                    "monitor": "val/loss",
                    "interval": "epoch",
                    "frequency": 1,
                },
            }
        return {"optimizer": optimizer}
''',
    # The template's instantiators (logging calls dropped).
    "src/utils/instantiators.py": '''\
from typing import List

import hydra
from lightning import Callback
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig


def instantiate_callbacks(callbacks_cfg: DictConfig) -> List[Callback]:
    callbacks: List[Callback] = []
    if not callbacks_cfg:
        return callbacks
    if not isinstance(callbacks_cfg, DictConfig):
        raise TypeError("Callbacks config must be a DictConfig!")
    for _, cb_conf in callbacks_cfg.items():
        if isinstance(cb_conf, DictConfig) and "_target_" in cb_conf:
            callbacks.append(hydra.utils.instantiate(cb_conf))
    return callbacks


def instantiate_loggers(logger_cfg: DictConfig) -> List[Logger]:
    logger: List[Logger] = []
    if not logger_cfg:
        return logger
    for _, lg_conf in logger_cfg.items():
        if isinstance(lg_conf, DictConfig) and "_target_" in lg_conf:
            logger.append(hydra.utils.instantiate(lg_conf))
    return logger
''',
    # The template's src/train.py, trimmed (no rootutils: PYTHONPATH is the app's root).
    "src/train.py": '''\
import hydra
import lightning as L
from omegaconf import DictConfig

from src.utils.instantiators import instantiate_callbacks, instantiate_loggers


def train(cfg: DictConfig):
    if cfg.get("seed"):
        L.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    logger = instantiate_loggers(cfg.get("logger"))
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=logger)
    if cfg.get("train"):
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    if cfg.get("test"):  # current weights: torch>=2.6 refuses the template's best-ckpt reload (_partial_ hparams)
        trainer.test(model=model, datamodule=datamodule)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


@hydra.main(version_base="1.3", config_path="../configs", config_name="train.yaml")
def main(cfg: DictConfig):
    print("METRICS", train(cfg))


if __name__ == "__main__":
    main()
''',
}

SPE = 20  # 1280 training images, batch 64
MODULE_LR = 0.001


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("template_app")
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def run(app: Path, *args: str, warnings: str = "ignore") -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(app), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS=warnings, PYTHONPATH=path)
    cmd = [sys.executable, "src/train.py", *args]
    return subprocess.run(cmd, cwd=app, env=env, capture_output=True, text=True, timeout=600)


def logged_lr(run_dir: Path, tag: str = "lr-Adam") -> dict[int, float]:
    (path,) = run_dir.glob("csv/version_*/metrics.csv")
    with path.open() as f:
        return {int(r["step"]): float(r[tag]) for r in csv.DictReader(f) if r.get(tag)}


def newest_run(app: Path) -> Path:
    return max((p.parent for p in app.glob("logs/train/runs/*/.hydra")), key=lambda p: p.stat().st_mtime)


def sgdr_reference(step: int, peak: float, cycle_epochs: float) -> float:
    """torch's CosineAnnealingWarmRestarts with T_0 = cycle_epochs epochs, eta_min 0, per step."""
    t_cur = (step / SPE) % cycle_epochs
    return peak * (1 + math.cos(math.pi * t_cur / cycle_epochs)) / 2


def _yaml_blocks(page: Path) -> list[str]:
    """The guide's ```yaml blocks, each without the indent of its fence (blocks in list items)."""
    out, lines, i = [], page.read_text().splitlines(), 0
    while i < len(lines):
        fence = lines[i].lstrip()
        if fence.startswith("```yaml"):
            indent = len(lines[i]) - len(fence)
            j = i + 1
            while not lines[j].lstrip().startswith("```"):
                j += 1
            out.append("".join(line[indent:] + "\n" for line in lines[i + 1:j]))
            i = j
        i += 1
    return out


def test_the_guide_shows_exactly_the_lines_the_test_adds():
    blocks = _yaml_blocks(GUIDE)
    for recipe in (RECIPE_DEFAULTS, RECIPE_SEARCHPATH, RECIPE_CALLBACKS):
        assert recipe in blocks, recipe


@pytest.mark.slow
def test_without_the_recipe_override_the_template_app_trains_unchanged(app):
    proc = run(app, "model.scheduler=null", "trainer.max_epochs=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (metrics,) = newest_run(app).glob("csv/version_*/metrics.csv")
    assert "lr-" not in metrics.read_text().splitlines()[0]  # no lr-plugins callback unless asked


def test_schedule_sgdr_without_the_modules_scheduler(app):
    proc = run(app, "schedule=sgdr", "schedule.cycle_length=2", "schedule.unit=epoch", "model.scheduler=null")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lrs = logged_lr(newest_run(app))
    assert len(lrs) >= 3 and max(lrs) >= 2 * SPE  # logged across the 3 epochs (every 5 steps or every step)
    for step, lr in lrs.items():
        assert lr == pytest.approx(sgdr_reference(step, MODULE_LR, 2.0), rel=1e-6, abs=1e-12), step


@pytest.mark.slow
def test_schedule_refuses_the_modules_scheduler_by_default(app):
    proc = run(app, "schedule=sgdr", "trainer.max_epochs=1")
    assert proc.returncode != 0
    assert "ReduceLROnPlateau" in proc.stderr


# Issue 13.5: the schedule callback's opt-in to take over from the module's scheduler.
@pytest.mark.slow
def test_schedule_sgdr_takes_over_from_the_modules_scheduler(app):
    proc = run(app, "schedule=sgdr", "schedule.cycle_length=2", "schedule.unit=epoch", "+schedule.replace_schedulers=true",
               warnings="default")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ReduceLROnPlateau" in proc.stderr  # the warning names the scheduler it replaced
    lrs = logged_lr(newest_run(app))
    for step, lr in lrs.items():
        assert lr == pytest.approx(sgdr_reference(step, MODULE_LR, 2.0), rel=1e-6, abs=1e-12), step


@pytest.mark.slow  # two trainings in one multirun
def test_multirun_sgdr_and_clr(app):
    proc = run(app, "-m", "schedule=sgdr,clr", "model.scheduler=null", "trainer.max_epochs=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = max(app.glob("logs/train/multiruns/*"), key=lambda p: p.stat().st_mtime)
    sgdr, clr = logged_lr(sweep / "0"), logged_lr(sweep / "1")
    assert sgdr and clr and sgdr != clr
    assert max(clr.values()) <= MODULE_LR * (1 + 1e-9) and min(clr.values()) < MODULE_LR  # CLR cycles below it
    assert max(sgdr.values()) <= MODULE_LR * (1 + 1e-9) and min(sgdr.values()) < MODULE_LR  # SGDR anneals from it


#: Every shipped schedule preset (the folder is the list).
PRESETS = sorted(p.stem for p in (Path(__import__("lr_plugins").__file__).parent / "conf" / "schedule").glob("*.yaml"))


@pytest.mark.slow  # one short training per preset, in one multirun
def test_multirun_every_schedule_preset(app):
    """Issue 18: every preset composes and trains in the template app as shipped (plateau watches the
    template's val/loss; schedule_free swaps its Adam for AdamWScheduleFree)."""
    proc = run(app, "-m", f"schedule={','.join(PRESETS)}", "model.scheduler=null", "trainer.max_epochs=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = max(app.glob("logs/train/multiruns/*"), key=lambda p: p.stat().st_mtime)
    for i, name in enumerate(PRESETS):
        tag = "lr-AdamWScheduleFree" if name == "schedule_free" else "lr-Adam"
        lrs = logged_lr(sweep / str(i), tag)
        assert len(lrs) >= 2 and max(lrs.values()) <= MODULE_LR * (1 + 1e-9), (name, lrs)


@pytest.mark.slow  # a range test and a training
def test_lr_finder_steepest_then_sgdr(app):
    proc = run(app, "lr_finder=steepest", "lr_finder.num_steps=30", "schedule=sgdr", "schedule.cycle_length=2", "schedule.unit=epoch",
               "model.scheduler=null", "trainer.max_epochs=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = newest_run(app)
    assert list(run_dir.rglob("lr_finder.csv"))  # the range test ran and wrote its curve
    lrs = logged_lr(run_dir)
    first = min(lrs)
    peak = lrs[first] / sgdr_reference(first, 1.0, 2.0)  # SGDR's peak: the finder's pick, not the module's lr
    assert peak != pytest.approx(MODULE_LR)
    for step, lr in lrs.items():
        assert lr == pytest.approx(sgdr_reference(step, peak, 2.0), rel=1e-6, abs=1e-12), step


# Issue 19.4: the template's own test stage (the best checkpoint) meets torch's weights_only
# default; the guide says so and gives the call that passes. Both run here, on this app.
TEMPLATE_TEST_STAGE = """\
        ckpt_path = trainer.checkpoint_callback.best_model_path
        trainer.test(model=model, datamodule=datamodule, ckpt_path=ckpt_path)"""


@pytest.mark.slow  # two trainings
def test_the_templates_best_checkpoint_test_stage_and_the_guides_way_past_it(app):
    import re

    guide = GUIDE.read_text()
    fixed = re.search(r"`(trainer\.test\(model=model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=False\))`", guide)
    assert fixed and 'pip install "setuptools<81"' in guide
    ours = "        trainer.test(model=model, datamodule=datamodule)"
    assert ours in FILES["src/train.py"]
    for name, stage in (("train_best.py", TEMPLATE_TEST_STAGE),
                        ("train_best_fixed.py", TEMPLATE_TEST_STAGE.replace(TEMPLATE_TEST_STAGE.splitlines()[1].strip(), fixed.group(1)))):
        (app / "src" / name).write_text(FILES["src/train.py"].replace(ours, stage))
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=os.pathsep.join([str(app), os.environ.get("PYTHONPATH", "")]))
    args = ("schedule=sgdr", "model.scheduler=null", "trainer.max_epochs=1")
    best = subprocess.run([sys.executable, "src/train_best.py", *args], cwd=app, env=env, capture_output=True, text=True, timeout=600)
    assert best.returncode != 0 and "Weights only load failed" in best.stderr, best.stderr[-3000:]
    assert "_DeferredTarget" in best.stderr  # what the guide quotes
    proc = subprocess.run([sys.executable, "src/train_best_fixed.py", *args], cwd=app, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "'test/acc'" in proc.stdout
