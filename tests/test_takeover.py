"""A schedule callback takes over from the scheduler a module's configure_optimizers returns (opt-in).

Real Trainer fits with ReduceLROnPlateau, StepLR, OneCycleLR and LambdaLR returned as a dict or
as lists: refused by default with a message that names ``replace_schedulers``; with
``replace_schedulers=True`` a warning names the scheduler, the module's scheduler is never
stepped, and every optimizer step uses the schedule's LR (``preview``) from the LR the optimizer
was configured with.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import LRRecorder, TinyModule, make_loader, make_trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from lr_plugins import SGDR, OneCycle, WarmupCosine


class ModuleWithScheduler(TinyModule):
    """A module as users write them: optimizer and scheduler from ``configure_optimizers``.

    ``kind``: plateau | step | onecycle | lambda; ``form``: dict (``{"optimizer", "lr_scheduler"}``)
    or list (``[opt], [sched]``). Every scheduler is set to change the LR at every optimizer step,
    so a scheduler that is still stepped shows in the LR trace.
    """

    def __init__(self, kind: str, form: str, lr: float = 0.1):
        super().__init__(lr=lr)
        self.kind, self.form = kind, form
        self.scheduler = None

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        sched = {
            "plateau": lambda: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=10.0),
            "step": lambda: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
            "onecycle": lambda: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=100),
            "lambda": lambda: torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.1 / (k + 1)),
        }[self.kind]()
        self.scheduler = sched
        config = {"scheduler": sched, "interval": "step"}
        if self.kind == "plateau":
            config["monitor"] = "train_loss"
        if self.form == "dict":
            return {"optimizer": opt, "lr_scheduler": config}
        return [opt], [config if self.kind == "plateau" else sched]


# The LR the optimizer was configured with, which a max_lr=None schedule peaks at.
CONFIGURED = {"plateau": 0.1, "step": 0.1, "onecycle": 0.5, "lambda": 0.1}
CASES = [(k, f) for k in ("plateau", "step", "onecycle") for f in ("dict", "list")] + [("lambda", "dict")]


def fit(tmp_path, schedule, module, *, max_epochs=3, extra=(), ckpt_path=None, **kwargs):
    rec = LRRecorder()
    trainer = make_trainer(tmp_path, [schedule, rec, *extra], max_epochs=max_epochs, **kwargs)
    torch.manual_seed(0)
    trainer.fit(module, make_loader(), ckpt_path=ckpt_path)
    return trainer, rec


@pytest.mark.parametrize("kind,form", CASES)
def test_module_scheduler_refused_by_default_naming_the_option(tmp_path, kind, form):
    sched_name = {"plateau": "ReduceLROnPlateau", "step": "StepLR", "onecycle": "OneCycleLR", "lambda": "LambdaLR"}[kind]
    rec = LRRecorder()
    trainer = make_trainer(tmp_path, [SGDR(cycle_length=1), rec], max_epochs=1)
    with pytest.raises(ValueError) as info:
        trainer.fit(ModuleWithScheduler(kind, form), make_loader())
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("replace_schedulers=False is not allowed with a module scheduler")
    assert f"returns an LR scheduler ({sched_name})" in msg
    assert "SGDR(..., replace_schedulers=True)" in msg
    assert rec.lrs == []


@pytest.mark.parametrize("kind,form", CASES)
def test_replace_schedulers_takes_over(tmp_path, kind, form):
    schedule = WarmupCosine(min_lr=0.001, warmup=1, replace_schedulers=True)  # peak: the configured LR
    module = ModuleWithScheduler(kind, form)
    with pytest.warns(UserWarning) as caught:
        trainer, rec = fit(tmp_path, schedule, module)
    name = type(module.scheduler).__name__
    takeover = [str(w.message) for w in caught if "replaces the LR scheduler" in str(w.message)]
    assert len(takeover) == 1 and takeover[0].startswith(f"WarmupCosine replaces the LR scheduler {name} ")
    assert trainer.lr_scheduler_configs == []
    # The module's scheduler never ran: torch's schedulers count their steps in last_epoch.
    assert module.scheduler.last_epoch == 0
    # Every step uses the schedule's LR, peaking at the LR the module configured (not the LR the
    # scheduler's constructor left: OneCycleLR starts at max_lr / 25, LambdaLR at lr * 0.1).
    peak = CONFIGURED[kind]
    want = WarmupCosine(max_lr=peak, min_lr=0.001, warmup=1).preview(24, steps_per_epoch=8).tolist()
    assert [x[0] for x in rec.lrs] == want
    assert max(x[0] for x in rec.lrs) == pytest.approx(peak)


def test_max_lr_given_overrides_the_module_scheduler(tmp_path):
    schedule = OneCycle(max_lr=0.3, replace_schedulers=True)
    with pytest.warns(UserWarning, match="OneCycle replaces the LR scheduler StepLR"):
        _, rec = fit(tmp_path, schedule, ModuleWithScheduler("step", "list"))
    assert [x[0] for x in rec.lrs] == OneCycle(max_lr=0.3).preview(24, 8).tolist()
    assert rec.momenta == OneCycle(max_lr=0.3).preview_momentum(24, 8).tolist()


def test_no_warning_without_a_module_scheduler(tmp_path):
    schedule = SGDR(max_lr=0.2, cycle_length=1, replace_schedulers=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, rec = fit(tmp_path, schedule, TinyModule())
    assert not [w for w in caught if "replaces the LR scheduler" in str(w.message)]
    assert [x[0] for x in rec.lrs] == SGDR(max_lr=0.2, cycle_length=1).preview(24, 8).tolist()


@pytest.mark.parametrize("kind", ["onecycle", "plateau"])
def test_resume_after_takeover_is_bit_identical(tmp_path, kind):
    make = lambda: SGDR(cycle_length=1.5, warmup=0.5, replace_schedulers=True)  # noqa: E731
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{step}", every_n_train_steps=5, save_top_k=-1)
    with pytest.warns(UserWarning, match="replaces the LR scheduler"):
        _, full = fit(tmp_path / "full", make(), ModuleWithScheduler(kind, "dict"), extra=[ckpt],
                      enable_checkpointing=True)
    path = tmp_path / "ckpt" / "step=15.ckpt"
    assert torch.load(path, weights_only=True)["lr_schedulers"] == []  # nothing of the module's scheduler
    with pytest.warns(UserWarning, match="replaces the LR scheduler") as caught:
        _, resumed = fit(tmp_path / "r", make(), ModuleWithScheduler(kind, "dict"), ckpt_path=path)
    assert not [w for w in caught if "changed LR schedule" in str(w.message)]
    assert full.lrs[:15] + resumed.lrs == full.lrs
    assert full.momenta[:15] + resumed.momenta == full.momenta


def test_replace_schedulers_must_be_a_bool():
    with pytest.raises(TypeError, match=r"replace_schedulers='yes' is not allowed: replace_schedulers must be True or False"):
        SGDR(cycle_length=1, replace_schedulers="yes")
    with pytest.raises(TypeError, match=r"log_lr=1 is not allowed: log_lr must be True or False"):
        SGDR(cycle_length=1, log_lr=1)


@pytest.mark.parametrize("preset", ["sgdr", "warmup_cosine", "onecycle", "constant"])
def test_the_refusal_gives_a_hydra_spelling_that_composes_with_the_shipped_presets(tmp_path, preset):
    import re
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    trainer = make_trainer(tmp_path, [SGDR(cycle_length=1)], max_epochs=1)
    with pytest.raises(ValueError) as info:
        trainer.fit(ModuleWithScheduler("step", "dict"), make_loader())
    override = re.search(r"\(Hydra: (\S+)\)", str(info.value)).group(1)
    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        cfg = compose(config_name="lr_train", overrides=[f"schedule={preset}", override])
    assert instantiate(cfg.schedule).replace_schedulers is True
