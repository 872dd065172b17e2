"""lr_plugins.distributed: the process-group teardown that spawned DDP workers get."""

from __future__ import annotations

import inspect

import pytest
import torch.distributed as dist
from conftest import TinyModule, make_loader, make_trainer
from lightning.pytorch.strategies import DDPStrategy

from lr_plugins.distributed import CleanDistributedExit, is_spawn_strategy


@pytest.mark.parametrize(
    "strategy, expected",
    [("ddp_spawn", True), ("ddp_spawn_find_unused_parameters_true", True), ("ddp_fork", True), ("ddp_notebook", True),
     ("ddp", False), ("ddp_find_unused_parameters_true", False), ("auto", False), ("fsdp", False), (None, False),
     (DDPStrategy(start_method="spawn"), True), (DDPStrategy(), False)],
)
def test_is_spawn_strategy(strategy, expected):
    assert is_spawn_strategy(strategy) is expected


def test_outside_a_process_group_it_changes_nothing(tmp_path):
    model = TinyModule()
    trainer = make_trainer(tmp_path, [CleanDistributedExit()], max_steps=3)
    trainer.fit(model, make_loader())
    assert trainer.global_step == 3 and not dist.is_initialized()


def test_ddp_spawn_trainers_of_the_test_suite_get_it(tmp_path):
    trainer = make_trainer(tmp_path, [], strategy="ddp_spawn", devices=2)
    assert any(isinstance(c, CleanDistributedExit) for c in trainer.callbacks)


def test_lr_train_adds_it_for_spawned_workers_only(tmp_path, monkeypatch):
    import lightning.pytorch as L

    from lr_plugins.app import train as train_module

    seen = []

    class Stop(Exception):
        pass

    class RecordingTrainer(L.Trainer):
        def __init__(self, *args, callbacks=(), **kwargs):
            seen.append(any(isinstance(c, CleanDistributedExit) for c in callbacks))
            raise Stop

    # lr-train checks the config's keys against the real Trainer's signature.
    RecordingTrainer.__init__.__signature__ = inspect.signature(L.Trainer.__init__)
    monkeypatch.setattr(L, "Trainer", RecordingTrainer)
    from test_train import _compose

    for overrides, expected in ((["trainer=ddp"], True), ([], False)):
        with pytest.raises(Stop):
            train_module.train(_compose([*overrides, "data=digits", "model=mlp", "~logger", "trainer.enable_checkpointing=false"]), tmp_path)
    assert seen == [True, False]
